#!/usr/bin/env bash
# Render lecture figures from the specs (needs graphviz's `dot`): python examples are not needed for pictures.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-figures}
mkdir -p "$out"
specc=${SPECC:-.venv/bin/specc}
"$specc" dot specs/mnist_convnet.net -o "$out/mnist_convnet.svg"
"$specc" dot specs/lenet5.net -o "$out/lenet5.png"
"$specc" dot specs/resnet18.net --rankdir LR -o "$out/resnet18.svg"
"$specc" dot specs/lstm_classifier.net -o "$out/lstm_classifier.svg"
# the backprop lecture: forward values and reverse-mode gradients of z = sin(x1) + x1*x2 at (2, 3)
"$specc" dot specs/autodiff.net --values x1=2,x2=3 --grad z -o "$out/autodiff.svg"
echo "figures in $out/"
