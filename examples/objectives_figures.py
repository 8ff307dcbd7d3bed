"""The lecture figures of several objectives, measured (docs/training.md quotes them).

    python examples/objectives_figures.py [OUT]      (default OUT: figures/objectives)

- the GAN on the digits: 2,000 alternating steps; the discriminator's accuracy on real and on fake per epoch, and a
  4×4 grid of generated digits (gan_samples.png);
- distillation on a small split (300 training digits): the distilled student against the same student trained on
  the labels alone, over three seeds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np

import specc
from specc.backend.flax import build_module
from specc.train.loop import train_and_evaluate
from specc.train.spec import build_config

SPECS = Path(__file__).resolve().parent.parent / "specs"


def run(text: str, name: str, out: Path, *overrides: str):
    path = SPECS / name
    spec = specc.load(path, text=text)
    graph = spec.graph()
    cfg = build_config(spec, graph, list(overrides))
    return graph, cfg, train_and_evaluate(cfg, out, verbose=False, graph=graph, force=True)


def gan(out: Path) -> dict:
    text = (SPECS / "gan_digits.net").read_text()
    graph, cfg, result = run(text, "gan_digits.net", out / "gan_run")
    from flax import nnx

    model = build_module(graph, seed=cfg.seed)
    nnx.update(model, result.params)
    model.eval()
    z = np.random.default_rng(1).normal(size=(16, 16)).astype("f4")
    images = np.asarray(model.values({"z": z}, ["fake"])["fake"]).reshape(4, 4, 8, 8)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 4, figsize=(4, 4))
    for i in range(4):
        for j in range(4):
            axes[i, j].imshow(images[i, j], cmap="gray_r", vmin=0, vmax=1)
            axes[i, j].axis("off")
    fig.suptitle("GAN samples after 2,000 steps")
    fig.savefig(out / "gan_samples.png", dpi=120)
    plt.close(fig)
    hist = result.history
    d_acc = [(h["accuracy_d_real"] + h["accuracy_d_fake"]) / 2 for h in hist]
    return {
        "steps": result.step,
        "d_accuracy_first_last": [round(d_acc[0], 3), round(d_acc[-1], 3)],
        "d_accuracy_min_max_after_epoch_5": [round(min(d_acc[5:]), 3), round(max(d_acc[5:]), 3)],
        "last": {k: round(v, 4) for k, v in hist[-1].items() if k != "time"},
    }


def distillation(out: Path) -> dict:
    text = (SPECS / "distillation.net").read_text().replace("digits(split=0.8)", "digits(split=0.167)")
    labels_only = re.sub(
        r"loss      = 16 \* kl_div\(s_hot, t_soft\) \+ cross_entropy\(s_logits, y\)",
        "loss      = cross_entropy(s_logits, y)",
        text,
    )
    assert labels_only != text
    res: dict[str, list[float]] = {"distilled": [], "labels_only": []}
    for seed in (0, 1, 2):
        for key, t in (("distilled", text), ("labels_only", labels_only)):
            _, _, r = run(t, "distillation.net", out / f"distill_{key}_{seed}", f"seed={seed}")
            res[key].append(round(r.history[-1]["val_accuracy"], 4))
    return res


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("figures/objectives")
    out.mkdir(parents=True, exist_ok=True)
    figures = {"gan": gan(out), "distillation": distillation(out)}
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
