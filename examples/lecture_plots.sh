#!/usr/bin/env bash
# The lectures' figures made with `specc plot` (docs/plot.md): trains the small toy runs (a few minutes on a laptop
# CPU) into OUT/runs and writes the figures into OUT (default: figures/). Reruns replace what they wrote.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-figures}
runs="$out/runs"
mkdir -p "$out" "$runs"
specc=${SPECC:-.venv/bin/specc}
train() { "$specc" train "$@" --force > /dev/null; }

# weight initialisation (CS231n): 10 tanh layers of 500 — N(0, 0.01) collapses, N(0, 1) saturates, Glorot spreads
for init in small large glorot; do
  "$specc" plot activations "specs/deep_init_$init.net" -o "$out/deep_init_$init.png" --force
done

# vanishing gradients: 8 sigmoid layers; the first layers' gradients are orders of magnitude below the last's
train specs/deep_sigmoid.net --log-gradients --out "$runs/deep_sigmoid"
"$specc" plot gradients "$runs/deep_sigmoid" -o "$out/deep_sigmoid_gradients.png" --force

# decision boundaries of the 2- and 4-class toy nets trained to the end, without and with an L2 penalty
for toy in toy_2class toy_4class; do
  train "specs/$toy.net" --out "$runs/$toy"
  train "specs/$toy.net" --set 'loss=cross_entropy(logits, y) + l2(0.001)' --out "$runs/${toy}_l2"
  "$specc" plot boundary "$runs/$toy" --checkpoint last -o "$out/${toy}_boundary.png" --force
  "$specc" plot boundary "$runs/${toy}_l2" --checkpoint last -o "$out/${toy}_l2_boundary.png" --force
done

# three learning-rate schedules over the MLP's 20 epochs of 22 steps
"$specc" plot schedule specs/mlp.net --lr 'step(0.1, 0.5, 5)' --lr 'exponential(0.1, 0.2)' --lr 'cosine(0.1, 20)' \
  -o "$out/schedules.png" --force

# samples of the VAE decoder from the prior N(0, I) and of the GAN's generator
train specs/vae.net --out "$runs/vae"
"$specc" plot samples "$runs/vae" --n 64 -o "$out/vae_samples.png" --force
"$specc" plot samples "$runs/vae" --n 144 --manifold -o "$out/vae_manifold.png" --force
train specs/gan_digits.net --out "$runs/gan"
"$specc" plot samples "$runs/gan" --n 64 --checkpoint last -o "$out/gan_samples.png" --force  # no val_loss: no best

# a sweep on one figure: the toy nets' validation loss with and without L2
"$specc" plot curves "$runs/toy_2class" "$runs/toy_2class_l2" "$runs/toy_4class" "$runs/toy_4class_l2" \
  --metric val_loss -o "$out/toy_val_loss.png" --force
echo "figures in $out/"
