"""Warnings: a valid spec that almost surely does not mean what it says — a loss that normalises its scores given
a value the model already normalised (`binary_cross_entropy` of a sigmoid's output stalls near ln 2; a softmax
before `cross_entropy` makes training crawl), and `batch = 1` before a batchnorm over [N, F]. Exit 0, the place,
the source line, a caret and a hint, on `specc check` (and in its JSON), before `specc train`'s banner and
`specc sweep`'s first run, and in the editor (tests/test_lsp.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.train.spec import build_config

ROOT = Path(__file__).resolve().parents[1]

AUTOENCODER = """\
model AE {
  input x: f32[N, 64]
  h = x -> dense(16) -> relu
  out = h -> dense(64) -> sigmoid
  output out
}
train {
  data = digits(split=0.8)
  loss = binary_cross_entropy(out, x)
  optimizer = adam(lr=1e-3)
  epochs = 1
}
"""


def _write(tmp_path: Path, text: str, name: str = "m.net") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _warnings(path: Path, *sets: str) -> list[dict]:
    r = CliRunner().invoke(main, ["check", str(path), "--json", *[a for s in sets for a in ("--set", s)]])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)["warnings"]


def test_a_sigmoid_before_binary_cross_entropy_is_a_located_warning(tmp_path: Path) -> None:
    path = _write(tmp_path, AUTOENCODER)
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 0  # valid: a warning, not an error
    # the report on stdout, warnings on stderr
    assert "model AE: ok" in r.stdout and "warning" not in r.stdout
    col = AUTOENCODER.splitlines()[8].index("out, x") + 1
    assert f"{path}:9:{col}: warning: binary_cross_entropy takes logits" in r.stderr
    assert "'out' has already been through sigmoid (line 4)" in r.stderr
    assert "  loss = binary_cross_entropy(out, x)" in r.stderr and "^^^" in r.stderr
    assert "hint: give binary_cross_entropy the value before the sigmoid" in r.stderr
    (w,) = _warnings(path)
    assert (w["kind"], w["line"], w["col"], w["end_col"]) == ("warning", 9, col, col + 3)


@pytest.mark.parametrize(
    ("model_line", "loss", "warned"),
    [
        ("p = x -> dense(10) -> softmax", "cross_entropy(p, y)", "cross_entropy takes logits"),
        ("p = x -> dense(10) -> softmax", "kl_div(p, t)", "kl_div takes logits"),
        ("p = x -> dense(10) -> softmax", "nll(p, y)", "nll takes log-probabilities"),
        ("p = x -> dense(10)", "cross_entropy(p, y)", None),  # logits: what it takes
        (
            "p = x -> dense(10) -> log_softmax",
            "cross_entropy(p, y)",
            None,
        ),  # softmax(log_softmax(z)) = softmax(z)
        ("p = x -> dense(10) -> log_softmax", "nll(p, y)", None),  # log-probabilities: what it takes
        ("p = x -> dense(10) -> softmax", "mse(p, t)", None),  # probabilities against targets: fine
        # through ops that keep the values' meaning: still probabilities
        (
            "p = x -> dense(10) -> softmax -> dropout(0.2)",
            "cross_entropy(p, y)",
            "cross_entropy takes logits",
        ),
        ("p = x -> dense(10) -> sigmoid -> flatten", "binary_cross_entropy(p, t)", "binary_cross_entropy"),
        ("p = x -> dense(10) -> hard_sigmoid", "binary_cross_entropy(p, t)", "binary_cross_entropy"),
        ("p = x -> dense(10) -> softmax -> dense(10)", "cross_entropy(p, y)", None),  # a layer after: logits
    ],
)
def test_which_losses_warn(tmp_path: Path, model_line: str, loss: str, warned: str | None) -> None:
    text = (
        "model M {\n  input x: f32[N, 64]\n  input y: i32[N]\n  input t: f32[N, 10]\n"
        f"  {model_line}\n  output p\n}}\n"
        f'train {{\n  data = npz("d.npz")\n  loss = {loss}\n  optimizer = sgd(lr=0.1)\n}}\n'
    )
    # (npz: its fields are the file's; digits has no t) the loss reads y or t; the other input is read by nothing, which is a warning of its own
    got = [w for w in _warnings(_write(tmp_path, text)) if "is read by nothing" not in w["message"]]
    assert len(got) == (1 if warned else 0) and all(w["message"].startswith(str(warned)) for w in got)


def test_a_block_ending_in_a_sigmoid_warns_in_every_objective(tmp_path: Path) -> None:
    """The GAN written as many slides draw it: the discriminator's last layer a sigmoid, then the BCE loss."""
    text = (ROOT / "specs" / "gan_digits.net").read_text()
    start = text.index("block Discriminator")
    end = text.index("}", start)
    body = text[start:end]
    last = body.rstrip().splitlines()[-1]  # `output ...`
    name = last.split()[-1]
    patched = (
        text[:start] + body.replace(last, f"  {name}s = {name} -> sigmoid\n  output {name}s") + text[end:]
    )
    ws = _warnings(_write(tmp_path, patched, "gan.net"))
    assert len(ws) >= 2 and all("has already been through sigmoid" in w["message"] for w in ws)
    assert {w["message"].split("'")[1] for w in ws} <= {"d_real", "d_fake"}


def test_the_zoo_has_no_warnings() -> None:
    """Every lecture spec gives its losses what they take, and its ops what they mean (a warning here would be a
    bug in a spec or a rule)."""
    for path in sorted((ROOT / "specs").glob("*.net")):
        spec = specc.load(path)
        assert spec.graph().warnings == (), path.name
        if spec.program.trains or spec.program.objectives:
            assert build_config(spec, spec.graph()).warnings == (), path.name


PYTORCH_ORDER = """block Stem() {
  input x: [N, H, W, C]
  y = x -> conv(3, 64, 3) -> relu
  output y
}
model M {
  input x: f32[N, 224, 224, 3]
  a = x -> Stem()
  c = x -> Stem()
  b = x -> conv(64, 3, padding=1) -> conv(64, 3) -> conv(64, 11, stride=4)
  output a, b, c
}
"""


def test_a_conv_written_in_pytorchs_argument_order_is_a_located_warning(tmp_path: Path) -> None:
    """`conv(3, 64, 3)` on an RGB image (PyTorch's Conv2d(in, out, kernel)) is valid, as 3 features from a 64×64
    kernel with stride 3, and was silent; it is warned about at the kernel, once for the two copies of the block
    that write it, and never for the convs a lecture writes (64 → 64 with 3×3, AlexNet's 11×11)."""
    path = _write(tmp_path, PYTORCH_ORDER)
    [w] = _warnings(path)
    col = PYTORCH_ORDER.splitlines()[2].index("64, 3)") + 1
    assert (w["line"], w["col"]) == (3, col), w
    assert "conv(3, 64, 3) is 3 features from a 64×64 kernel with stride 3" in w["message"]
    assert "PyTorch's Conv2d(3, 64, 3) is conv(64, 3)" in w["hint"]
    r = CliRunner().invoke(main, ["check", str(path)])  # a model without a train section says it too
    assert r.exit_code == 0 and f"{path}:3:{col}: warning: conv(3, 64, 3)" in r.stderr, r.output


BN_MOMENTUM = """\
model M {
  input x: f32[N, 64]
  h = x -> dense(32) -> batchnorm(momentum=0.1) -> relu -> dense(8) -> batchnorm -> batchnorm(momentum=0.5)
  output h
}
"""


def test_a_batchnorm_momentum_in_pytorchs_sense_is_a_located_warning(tmp_path: Path) -> None:
    """`batchnorm(momentum=0.1)` copied from PyTorch (whose momentum weights the new batch) kept 10% of the running
    statistics here (Flax's momentum weights the old ones) and was silent; 0.9 (the default) and 0.5 are not
    warned about."""
    path = _write(tmp_path, BN_MOMENTUM)
    [w] = _warnings(path)
    col = BN_MOMENTUM.splitlines()[2].index("momentum=0.1") + 1
    assert (w["line"], w["col"]) == (3, col), w
    assert "batchnorm(momentum=0.1) keeps 10% of the running statistics" in w["message"]
    assert "its momentum=0.1 is momentum=0.9 here" in w["hint"]


def test_a_softmax_over_the_batch_axis_is_a_located_warning(tmp_path: Path) -> None:
    """`softmax(axis=0)` on [N, C] (PyTorch's `dim=0` slip) normalised each class over the batch, silently; the
    default axis and a softmax over a known first axis (a parameter's [3, 4]) are not warned about."""
    text = (
        "model M {\n  input x: f32[N, 4]\n  param w: [3, 4] = normal(0.1)\n"
        "  p = x -> dense(3) -> softmax(axis=0)\n  q = x -> dense(3) -> softmax\n  r = w -> softmax(axis=0)\n"
        "  output p, q, r\n}\n"
    )
    [w] = _warnings(_write(tmp_path, text))
    assert (w["line"], w["col"]) == (4, 32), w
    assert w["message"].startswith("softmax(axis=0) normalises over axis 0, the batch (N) of f32[N, 3]")


def test_a_loss_set_on_the_command_line_is_warned_about_there(tmp_path: Path) -> None:
    path = _write(tmp_path, AUTOENCODER.replace("binary_cross_entropy(out, x)", "mse(out, x)"))
    assert _warnings(path) == []
    r = CliRunner().invoke(main, ["check", str(path), "--set", "loss=binary_cross_entropy(out, x)"])
    assert r.exit_code == 0
    assert "--set:1:27: warning: binary_cross_entropy takes logits" in r.stderr
    assert " 1 | loss=binary_cross_entropy(out, x)" in r.stderr  # the line as typed, with its caret


@pytest.mark.slow
def test_train_says_it_before_the_banner_and_trains_as_written(tmp_path: Path) -> None:
    path = _write(tmp_path, AUTOENCODER)
    r = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    assert r.stderr.index("warning: binary_cross_entropy") < r.stderr.index("training AE")
    # what the warning predicts: the twice-squashed reconstruction cannot go below ln 2 on the blank pixels
    loss = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["val_loss"]
    assert loss > 0.6 and math.isfinite(loss)


BN_MLP = """\
block Layer(units) {
  input x: [N, F]
  y = x -> dense(units, bias=false) -> batchnorm -> relu
  output y
}
model M {
  input x: f32[N, 64]
  input y: i32[N]
  logits = x -> Layer(32) -> Layer(32) -> dense(10)
  output logits
}
train {
  data = digits()
  loss = cross_entropy(logits, y)
  batch = 1
}
"""


def test_a_batch_of_one_before_a_flat_batchnorm_warns_at_the_batch(tmp_path: Path) -> None:
    (w,) = _warnings(_write(tmp_path, BN_MLP))
    assert (w["line"], w["col"]) == (15, 3)
    assert w["message"].startswith("batch = 1, but batchnorm (line 3) normalises each feature over the batch")
    path = _write(tmp_path, BN_MLP.replace("  batch = 1\n", ""), "default.net")
    assert _warnings(path) == []  # the default batch, 32
    (w,) = _warnings(path, "batch=1")  # also from the command line
    assert (w["file"], w["line"], w["col"]) == ("--set", 1, 7)


def test_a_batch_of_one_before_a_conv_batchnorm_is_fine(tmp_path: Path) -> None:
    """Over N, H and W a channel still has H·W values with one example: nothing to warn about."""
    text = (
        "model C {\n  input x: f32[N, 8, 8, 1]\n  input y: i32[N]\n"
        "  logits = x -> conv(4, 3) -> batchnorm -> relu -> flatten -> dense(10)\n  output logits\n}\n"
        "train {\n  data = digits(image=true)\n  loss = cross_entropy(logits, y)\n  batch = 1\n}\n"
    )
    assert _warnings(_write(tmp_path, text)) == []


@pytest.mark.slow
def test_a_sweep_says_each_warning_once_before_it_trains(tmp_path: Path) -> None:
    path = _write(tmp_path, BN_MLP.replace("  batch = 1\n", "  epochs = 1\n"))
    r = CliRunner().invoke(
        main, ["sweep", str(path), "--set", "batch=1,32", "--set", "seed=0,1", "--out", str(tmp_path / "sw")]
    )
    assert r.exit_code == 0, r.output
    assert (
        r.stderr.count("warning: batch = 1, but batchnorm (line 3)") == 1
    )  # two points with batch 1, one text
    assert r.stderr.index("warning:") < r.stderr.index("[1/4]")


def test_a_learning_rate_of_zero_is_a_located_warning(tmp_path: Path) -> None:
    """lr = 0 is valid (PyTorch takes it) but trains nothing: said at the number, in the file or in --set; a
    schedule that starts at 0 (a warm-up) is not warned about."""
    text = AUTOENCODER.replace("binary_cross_entropy(out, x)", "mse(out, x)")
    path = _write(tmp_path, text.replace("adam(lr=1e-3)", "adam(lr=0)"))
    [w] = _warnings(path)
    assert (w["line"], w["col"], w["message"]) == (
        10,
        text.splitlines()[9].index("1e-3") + 1,
        "adam: lr = 0 changes no weight, so the run would train nothing",
    )
    path = _write(tmp_path, text, "n.net")
    [w] = _warnings(path, "optimizer.lr=0.0")
    assert (w["file"], w["col"]) == ("--set", 14)
    assert _warnings(path, "optimizer.lr=cosine(1e-3, 100, warmup=5)") == []
    # a rate float32 cannot hold is 0 where the weights are updated: the run trained nothing, silently
    [w] = _warnings(path, "optimizer.lr=1e-300")
    assert w["message"].startswith(
        "adam: lr = 1e-300 is 0 in float32, the weights' precision, so it changes no"
    )
    assert _warnings(path, "optimizer.lr=1e-40") == []  # a float32 subnormal, small but not 0
    assert _warnings(path, "optimizer.lr=1e300") == []  # beyond float32: not this warning's concern


DISTILL = """\
block Teacher() {
  input v: [N, 64]
  logits = v -> dense(64) -> relu -> dense(10)
  output logits
}
model Distill {
  input x: f32[N, 64]
  input y: i32[N]
  T = Teacher() from "runs/Teacher"
  t_logits = x -> T
  s_logits = x -> dense(16) -> relu -> dense(10)
  t_soft = t_logits / 4 -> softmax
  s_hot = s_logits / 4
  output s_logits
}
train {
  data = digits(split=0.8)
  loss = 16 * kl_div(s_hot, t_soft) + cross_entropy(s_logits, y)
}
"""


def test_a_loaded_teacher_the_distillation_loss_trains_is_a_located_warning(tmp_path: Path) -> None:
    """A teacher from an earlier run that no freeze holds: the loss reads it only as kl_div's target, and its
    gradient moves the teacher toward the student. Valid (documented), but almost never meant: said at the `from`."""
    path = _write(tmp_path, DISTILL)
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 0, r.output
    col = DISTILL.splitlines()[8].index('"runs/Teacher"') + 1
    assert (
        f"{path}:9:{col}: warning: T starts from runs/Teacher's trained weights, and the loss trains it"
        in r.stderr
    )
    assert "kl_div's target t_soft (line 18) is computed by T" in r.stderr
    assert "hint: add `freeze = [T]` to the train section" in r.stderr
    (w,) = _warnings(path)
    assert (w["line"], w["col"], w["end_col"]) == (9, col, col + len('"runs/Teacher"'))
    # the fix the hint gives, and a teacher mimicked by mse (its logits the target) warns too
    assert (
        _warnings(
            _write(
                tmp_path,
                DISTILL.replace(
                    "cross_entropy(s_logits, y)\n", "cross_entropy(s_logits, y)\n  freeze = [T]\n"
                ),
                "f.net",
            )
        )
        == []
    )
    w, unread = _warnings(
        _write(
            tmp_path,
            DISTILL.replace(
                "16 * kl_div(s_hot, t_soft) + cross_entropy(s_logits, y)", "mse(s_logits, t_logits)"
            ),
            "mimic.net",
        )
    )
    assert "mse's target t_logits (line 18) is computed by T" in w["message"]
    assert unread["message"].startswith("input y is read by nothing")  # mimicking needs no labels


def test_a_loaded_body_fine_tuned_and_loaded_teachers_of_objectives_are_not_warned_about(
    tmp_path: Path,
) -> None:
    """A pretrained body on the prediction's side is fine-tuning, not a teacher; a teacher no objective trains (the
    lecture specs' stages, with their teachers loaded instead) is frozen; one an objective's params name is not."""
    finetune = (ROOT / "specs" / "finetune.net").read_text().replace("  freeze    = [B]\n", "")
    assert "freeze" not in finetune and _warnings(_write(tmp_path, finetune, "finetune.net")) == []
    for name, teacher in (
        ("distillation", "T = Teacher()"),
        ("mimic", "T = Deep()"),
        ("fitnets", "TL = WideLow()"),
    ):
        text = (ROOT / "specs" / f"{name}.net").read_text()
        assert teacher + "\n" in text
        loaded = text.replace(teacher + "\n", f'{teacher} from "runs/Teacher"\n')
        assert _warnings(_write(tmp_path, loaded, f"{name}.net")) == [], name
    text = (
        (ROOT / "specs" / "distillation.net")
        .read_text()
        .replace("T = Teacher()\n", 'T = Teacher() from "runs/T"\n')
    )
    (w,) = _warnings(_write(tmp_path, text.replace("params    = S\n", "params    = [S, T]\n"), "both.net"))
    assert w["message"].startswith(
        "T starts from runs/T's trained weights, and objective student's loss trains it"
    )


def test_an_input_nothing_reads_is_a_located_warning(tmp_path: Path) -> None:
    """A denoising autoencoder whose layers read `x` where the declared `noisy` was meant trained as a plain
    autoencoder, silently: an input no layer takes and no loss or metric names is now a warning at its
    declaration (a drawn one's too, without the data clause). Labels a loss reads are used; without a train
    section nothing is said (the zoo's ImageNet specs declare `y` for later)."""
    text = AUTOENCODER.replace(
        "  input x: f32[N, 64]\n",
        "  input x: f32[N, 64]\n  input noisy: f32[N, 64]\n  input eps: f32[N, 64] = normal()\n",
    ).replace("data = digits(split=0.8)", "data = digits(split=0.8) as {x: x, noisy: x}")
    text = text.replace("-> sigmoid", "")
    found = _warnings(_write(tmp_path, text))
    assert [(w["line"], w["col"], w["message"]) for w in found] == [
        (
            3,
            3,
            "input noisy is read by nothing: no layer takes it and no loss or metric names it, yet training "
            "asks the data for it",
        ),
        (4, 3, "input eps is read by nothing: no layer takes it and no loss or metric names it"),
    ]
    assert (
        found[0]["hint"]
        == "use noisy where it was meant (is another name in its place?), or remove the input"
    )
    used = text.replace("h = x -> dense(16)", "h = noisy + 0.1 * eps -> dense(16)")
    assert _warnings(_write(tmp_path, used)) == []
    no_train = text.split("train {")[0]
    assert _warnings(_write(tmp_path, no_train)) == []


def test_an_f64_input_without_jaxs_64_bit_mode_is_a_located_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`input x: f64[N, 64]` checked, and reported f64 all through, while JAX (64-bit mode off, its default) ran the
    model in f32, silently. An i64 input (PyTorch's LongTensor labels) fits in i32 and is left alone; with
    JAX_ENABLE_X64=1 the model does run in f64 and nothing is said."""
    text = "model M {\n  input x: f64[N, 64]\n  input y: i64[N]\n  p = x -> dense(3)\n  output p, y\n}\n"
    monkeypatch.delenv("JAX_ENABLE_X64", raising=False)
    [w] = _warnings(_write(tmp_path, text))
    assert (w["line"], w["col"]) == (2, 12), w
    assert w["message"].startswith(
        "input x is declared f64, but JAX computes f64 as f32 unless its 64-bit mode"
    )
    monkeypatch.setenv("JAX_ENABLE_X64", "1")
    assert _warnings(_write(tmp_path, text)) == []
