"""Several objectives: each trains only its own parameters with its own optimizer, alternating on every batch or as
stages; layers in no objective stay bitwise frozen; resume is bitwise mid-alternation (issue 9)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flax import nnx

import specc
from specc.backend.flax import build_module
from specc.train.loop import train_and_evaluate
from specc.train.spec import build_config

pytestmark = pytest.mark.slow

MODEL = """\
model Two {
  input x: f32[N, 64]
  input y: i32[N]
  h      = x -> dense(32) -> relu
  logits = h -> dense(10)
  output logits
}
train {
  data    = digits(split=0.8)
  batch   = 64
  epochs  = 2
  metrics = [accuracy(logits, y)]
}
"""

ALTERNATING = (
    MODEL
    + """
objective body {
  loss      = cross_entropy(logits, y)
  optimizer = sgd(lr=0.1)
  params    = h
}
objective head {
  loss      = cross_entropy(logits, y)
  optimizer = adam(lr=1e-3)
  params    = logits
  steps     = 2
}
"""
)

ELM = (
    MODEL
    + """
objective readout {
  loss      = cross_entropy(logits, y)
  optimizer = adam(lr=1e-2)
  params    = logits
}
"""
)

STAGES = (
    MODEL
    + """
objective first {
  loss      = cross_entropy(logits, y)
  optimizer = sgd(lr=0.1)
  params    = h
  epochs    = 2
}
objective second {
  loss      = cross_entropy(logits, y)
  optimizer = sgd(lr=0.1)
  params    = logits
  after     = first
  epochs    = 1
}
"""
)


def run(tmp_path: Path, text: str, name: str, **kw):
    path = tmp_path / f"{name}.net"
    path.write_text(text)
    spec = specc.load(path)
    graph = spec.graph()
    cfg = build_config(spec, graph)
    initial = nnx.state(build_module(graph, seed=cfg.seed), nnx.Param)
    result = train_and_evaluate(cfg, tmp_path / name, verbose=False, graph=graph, **kw)
    return flat(initial), flat(result.params), result


def flat(state) -> dict[str, np.ndarray]:
    return {
        "/".join(map(str, p)): np.asarray(v.get_value() if hasattr(v, "get_value") else v)
        for p, v in nnx.to_flat_state(state)
    }


def changed(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> set[str]:
    return {k.split("/")[1] for k in a if not np.array_equal(a[k], b[k])}


def test_elm_hidden_layer_is_bitwise_frozen(tmp_path: Path) -> None:
    before, after, result = run(tmp_path, ELM, "elm")
    assert changed(before, after) == {"logits"}
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_alternating_objectives_each_train_their_own_layers(tmp_path: Path) -> None:
    before, after, result = run(tmp_path, ALTERNATING, "alt")
    assert changed(before, after) == {"h_dense", "logits"}
    rec = result.history[-1]
    assert {"loss_body", "loss_head", "lr_body", "lr_head", "val_loss_body", "val_accuracy"} <= set(rec)
    assert result.history[-1]["loss_head"] < result.history[0]["loss_head"]


def test_specc_train_ends_with_each_objectives_figures(tmp_path: Path) -> None:
    """The closing line named no figure with several objectives ('done: 1 epoch(s), step 22'): it showed `val_*`
    only beside a `loss` key, which only one loss writes. Now the last epoch's validation figures, else its losses."""
    from click.testing import CliRunner

    from specc.cli import main

    (tmp_path / "alt.net").write_text(ALTERNATING)
    r = CliRunner().invoke(
        main, ["train", str(tmp_path / "alt.net"), "--epochs", "1", "--out", str(tmp_path / "r")]
    )
    assert r.exit_code == 0, r.output
    [done] = [line for line in r.stderr.splitlines() if line.startswith("done: ")]
    assert re.fullmatch(
        r"done: 1 epoch\(s\), step 22; val_loss_body \S+  val_loss_head \S+  val_accuracy \S+", done
    )
    r = CliRunner().invoke(
        main,
        [
            "train",
            str(tmp_path / "alt.net"),
            "--epochs",
            "1",
            "--set",
            "data=digits()",
            "--out",
            str(tmp_path / "n"),
        ],
    )
    [done] = [line for line in r.stderr.splitlines() if line.startswith("done: ")]
    assert re.fullmatch(r"done: 1 epoch\(s\), step 28; loss_body \S+  loss_head \S+", done), done


def test_stages_run_in_order_and_the_first_is_frozen_after_it(tmp_path: Path) -> None:
    _, _, result = run(tmp_path, STAGES, "stages")
    stages = [(h["stage"], "loss_first" in h, "loss_second" in h) for h in result.history]
    assert stages == [(1, True, False), (1, True, False), (2, False, True)]
    lines = [json.loads(x) for x in (tmp_path / "stages" / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2, 3]


BN_STAGES = STAGES.replace("h      = x -> dense(32) -> relu", "h      = x -> dense(32) -> batchnorm -> relu")


def batch_stats(result) -> dict[str, np.ndarray]:
    return flat(nnx.state(specc.load_run(result.workdir, "last").model, nnx.BatchStat))


def test_a_batch_norm_no_objective_of_the_stage_trains_keeps_its_statistics(tmp_path: Path) -> None:
    """A batch norm whose weights the running stage does not train (a finished teacher, a frozen body) runs in
    inference mode: its running statistics are the ones it was trained with. In training mode they followed the
    later stage's batches, although its weights were held bitwise still."""
    first_only = BN_STAGES.replace(
        "  after     = first\n  epochs    = 1", "  after     = first\n  epochs    = 0"
    )
    _, _, a = run(tmp_path, first_only, "first")
    _, _, b = run(tmp_path, BN_STAGES, "both")
    sa, sb = batch_stats(a), batch_stats(b)
    assert sa and sa.keys() == sb.keys()
    assert not np.array_equal(sa["layers/h_batchnorm/mean"], 0)  # the first stage trained them
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k], err_msg=k)
    # frozen from the start: the initial statistics, untouched
    frozen = BN_STAGES.split("objective first")[0].replace(
        "  metrics", "  loss = cross_entropy(logits, y)\n  freeze = [h]\n  metrics"
    )
    _, _, c = run(tmp_path, frozen, "frozen")
    sc = batch_stats(c)
    assert np.array_equal(sc["layers/h_batchnorm/mean"], np.zeros(32))
    assert np.array_equal(sc["layers/h_batchnorm/var"], np.ones(32))


FROZEN_DROPOUT = """\
block Teacher() {
  input v: [N, 64]
  z = v -> dense(32) -> relu -> dropout(0.5) -> dense(10)
  output z
}
model M {
  input x: f32[N, 64]
  input y: i32[N]
  T  = Teacher()
  t1 = x -> T
  t2 = x -> T
  s  = x -> dense(10)
  output s
}
train {
  data    = digits(split=0.8)
  batch   = 64
  epochs  = 1
  loss    = cross_entropy(s, y)
  metrics = [mse(t1, t2)]
  freeze  = [T]
}
"""


def test_a_dropout_of_an_instance_the_stage_holds_still_keeps_every_value(tmp_path: Path) -> None:
    """A frozen teacher's dropout dropped in training: two applications of it on the same batch differed (its soft
    targets were noisy). It keeps every value now, as the teacher's `.eval()` in PyTorch; the student's trains."""
    _, _, result = run(tmp_path, FROZEN_DROPOUT, "quiet")
    assert result.history[-1]["mse"] == 0.0
    _, _, trained = run(tmp_path, FROZEN_DROPOUT.replace("  freeze  = [T]\n", ""), "noisy")
    assert trained.history[-1]["mse"] > 0.0


def test_resume_mid_alternation_is_bitwise(tmp_path: Path) -> None:
    path = tmp_path / "alt.net"
    path.write_text(ALTERNATING)
    spec = specc.load(path)
    cfg = build_config(spec, spec.graph())
    straight = train_and_evaluate(cfg, tmp_path / "a", verbose=False)

    def interrupt(step: int) -> None:
        if step == 30:
            raise KeyboardInterrupt

    stopped = train_and_evaluate(cfg, tmp_path / "b", verbose=False, callbacks=[interrupt])
    assert stopped.status == "interrupted"
    again = train_and_evaluate(cfg, tmp_path / "b", verbose=False, resume=True)
    assert [h["loss_head"] for h in again.history] == [h["loss_head"] for h in straight.history]
    a, b = flat(straight.params), flat(again.params)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_resume_that_moves_a_stage_boundary_is_refused(tmp_path: Path) -> None:
    """A first stage that takes the train section's epochs grows with `--epochs` on resume: epoch 2, trained as the
    second stage, would fall in the first, which then trained again after the second (a teacher retrained after
    its student). Refused, naming the epoch and the stages' trained lengths; a longer last stage resumes."""
    from specc.errors import SpecError

    text = STAGES.replace("  params    = h\n  epochs    = 2\n", "  params    = h\n").replace(
        "  epochs  = 2\n", "  epochs  = 1\n"
    )
    path = tmp_path / "st.net"
    path.write_text(text)
    spec = specc.load(path)
    first = train_and_evaluate(build_config(spec, spec.graph()), tmp_path / "r", verbose=False)
    assert [h["stage"] for h in first.history] == [1, 2]
    record = {n: (tmp_path / "r" / n).read_bytes() for n in ("metrics.jsonl", "config.json", "run.json")}
    with pytest.raises(SpecError) as e:
        train_and_evaluate(
            build_config(spec, spec.graph(), ["epochs=3"]), tmp_path / "r", verbose=False, resume=True
        )
    d = e.value.diagnostics[0]
    assert (d.kind, d.message) == (
        "run error",
        "cannot resume: epoch 2 trained in stage 2 (second), and with these epochs it falls in stage 1; "
        "the stages' lengths moved",
    )
    assert d.hint.startswith("the run trained its stages for 1, 1 epoch(s): resume with the epochs")
    # the refused resume leaves the run's record as it was (config.json was rewritten with the new epochs)
    assert {n: (tmp_path / "r" / n).read_bytes() for n in record} == record

    longer_last = STAGES.replace("  after     = first\n  epochs    = 1\n", "  after     = first\n")
    path.write_text(longer_last)
    spec = specc.load(path)
    done = train_and_evaluate(build_config(spec, spec.graph()), tmp_path / "s", verbose=False)
    assert [h["stage"] for h in done.history] == [1, 1, 2, 2]
    more = train_and_evaluate(
        build_config(spec, spec.graph(), ["epochs=3"]), tmp_path / "s", verbose=False, resume=True
    )
    assert [h["stage"] for h in more.history] == [1, 1, 2, 2, 2]


@pytest.mark.parametrize(
    ("text", "freeze", "message"),
    [
        (
            MODEL,
            "[Two]",
            "the loss trains nothing: freeze holds every one of the 2 layer(s) with weights it would train",
        ),
        (
            MODEL,
            "[h, logits]",
            "the loss trains nothing: freeze holds every one of the 2 layer(s) with weights it would train",
        ),
        (
            ELM,
            "[logits]",
            "objective readout trains nothing: freeze holds every one of the 1 layer(s) with weights it would train",
        ),
    ],
)
def test_a_freeze_that_leaves_nothing_to_train_is_located(
    tmp_path: Path, text: str, freeze: str, message: str
) -> None:
    """`freeze = [Two]` (the model's name) trained nothing and reported a flat loss as a finished run; now an
    error at the freeze line, as an objective whose params own no weights already was — from `specc check` too,
    which said ok (exit 0) where `specc train` stopped at once."""
    from specc.cli import main
    from specc.errors import SpecError

    if text is MODEL:
        text = text.replace("  epochs  = 2\n", "  epochs  = 2\n  loss    = cross_entropy(logits, y)\n")
    text = text.replace("  epochs  = 2\n", f"  epochs  = 2\n  freeze  = {freeze}\n")
    path = tmp_path / "f.net"
    path.write_text(text)
    spec = specc.load(path)
    with pytest.raises(SpecError) as e:
        build_config(spec, spec.graph())
    d = e.value.diagnostics[0]
    assert d.span is not None
    assert (d.kind, d.message, d.span.line, d.span.col) == ("value error", message, 12, 3)
    assert d.hint == "freeze only the layers to keep (`freeze = [body]`), and leave some to train"
    for command in ("check", "train"):
        r = CliRunner().invoke(
            main, [command, str(path), "-o", str(tmp_path / "run")][: 2 if command == "check" else 4]
        )
        assert r.exit_code == 1 and f"{path}:12:3: value error: {message}" in r.output, r.output
    assert not (tmp_path / "run").exists()


def test_a_stage_of_zero_epochs_is_skipped(tmp_path: Path) -> None:
    """`epochs = 0` on an `after` stage (FitNets without its hint stage) ran that stage for the train section's
    epochs: 0 was read as 'not given'."""
    from specc.train.objectives import stages

    text = STAGES.replace("  after     = first\n  epochs    = 1\n", "  after     = first\n  epochs    = 0\n")
    text += "objective third {\n  loss = cross_entropy(logits, y)\n  params = logits\n  after = second\n}\n"
    path = tmp_path / "z.net"
    path.write_text(text)
    spec = specc.load(path)
    graph = spec.graph()
    cfg = build_config(spec, graph)
    assert [(s.objectives, s.epochs) for s in stages(cfg)] == [((0,), 2), ((1,), 0), ((2,), 2)]
    result = train_and_evaluate(cfg, tmp_path / "z", verbose=False, graph=graph)
    assert [(h["stage"], "loss_second" in h) for h in result.history] == [
        (1, False),
        (1, False),
        (3, False),
        (3, False),
    ]


def test_an_empty_params_list_is_named_as_written(tmp_path: Path) -> None:
    """`params = []` said 'objective readout:  own(s) no trainable parameters' (an empty name, two spaces)."""
    from specc.errors import SpecError
    from specc.train.objectives import plan_objectives

    spec = specc.load(tmp_path / "e.net", text=ELM.replace("  params    = logits\n", "  params    = []\n"))
    graph = spec.graph()
    with pytest.raises(SpecError) as e:
        plan_objectives(build_config(spec, graph), graph)
    d = e.value.diagnostics[0]
    assert d.span is not None
    assert (d.kind, d.message, d.span.line, d.span.col, d.span.end_col) == (
        "value error",
        "objective readout: params = [] names no layers to train",
        18,  # at the value, not the objective's line 15
        15,
        17,
    )


@pytest.mark.parametrize(("params", "col"), [("x", 15), ("[logits, x]", 24)])
def test_params_naming_a_value_without_weights_is_located_at_the_name(
    tmp_path: Path, params: str, col: int
) -> None:
    """`params = x` (an input) was reported at the objective's line 15; in a list it was accepted silently."""
    from specc.errors import SpecError
    from specc.train.objectives import plan_objectives

    spec = specc.load(tmp_path / "e.net", text=ELM.replace("params    = logits\n", f"params    = {params}\n"))
    graph = spec.graph()
    with pytest.raises(SpecError) as e:
        plan_objectives(build_config(spec, graph), graph)
    [d] = e.value.diagnostics
    assert d.span is not None
    assert (d.kind, d.message, d.span.line, d.span.col, d.span.end_col) == (
        "value error",
        "objective 'readout': params names x, which owns no trainable parameters",
        18,
        col,
        col + 1,
    )


GAN = (SPECS_DIR := Path(__file__).resolve().parent.parent / "specs") and (
    SPECS_DIR / "gan_digits.net"
).read_text()


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            GAN.replace(
                "loss      = binary_cross_entropy(d_fake, 1)", "loss      = binary_cross_entropy(d_real, 1)"
            ),
            41,
            "objective generator's loss depends on none of the layers it trains (G): their gradient is zero and "
            "they would never change",
        ),
        (
            MODEL.replace("  epochs  = 2\n", "  epochs  = 2\n  loss    = mse(x, 0)\n"),
            12,
            "the loss depends on none of the layers it trains: their gradient is zero and they would never change",
        ),
    ],
)
def test_a_loss_that_reads_none_of_the_trained_layers_is_located(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    """A generator's loss on d_real (the critic on real images), or a loss of the data alone, has a zero gradient
    for the layers it trains: they trained silently to nothing (the loss printed, flat, as a finished run)."""
    from specc.errors import SpecError
    from specc.train.objectives import plan_objectives

    spec = specc.load(tmp_path / "g.net", text=text)
    graph = spec.graph()
    with pytest.raises(SpecError) as e:
        plan_objectives(build_config(spec, graph), graph)
    d = e.value.diagnostics[0]
    assert d.span is not None
    assert (d.kind, d.message, d.span.line, d.span.col) == (
        "value error",
        message,
        line,
        1 if line == 41 else 3,
    )
    assert d.hint.startswith("compute the loss from values those layers produce")


def test_every_lecture_objective_reads_the_layers_it_trains() -> None:
    """No false alarm: each spec with a train section plans (l2 terms read every layer and are not checked)."""
    from specc.train.objectives import plan_objectives

    for path in sorted(SPECS_DIR.glob("*.net")):
        spec = specc.load(path)
        if "train {" not in path.read_text() or 'from "runs/' in path.read_text():
            continue
        graph = spec.graph()
        plan_objectives(cfg := build_config(spec, graph), graph, cfg.freeze)


MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-t10k"


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"the MNIST t10k files are not at {MNIST}")
def test_a_conv_gan_split_over_two_cpu_devices_finishes_its_evaluation(tmp_path: Path) -> None:
    """A DCGAN on MNIST, split over 2 CPU devices as `specc train` splits it by default, 9,000 validation images
    in 141 calls: XLA:CPU deadlocked at the evaluation's all-reduce and aborted the process (exit 134 after 60 s)
    in 4 runs of 5 with a cold compilation cache, until the evaluation waited for each call (`_Mesh.settle`)."""
    import os
    import subprocess
    import sys

    spec = Path(__file__).parent / "specs_train" / "dcgan_mnist.net"
    env = {**os.environ, "SPECC_CACHE_DIR": str(tmp_path / "cache")}  # cold: the hang needed it
    args = ["train", str(spec), "--out", str(tmp_path / "run"), "--devices", "2"]
    r = subprocess.run(
        [sys.executable, "-m", "specc", *args, "--data", f'mnist("{MNIST}", split=0.1)'],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "val_loss_discriminator" in r.stdout + r.stderr and "rendezvous" not in r.stderr


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        (
            "params    = D",
            "params    = []",
            "38:15",
            "objective discriminator: params = [] names no layers to train",
        ),
        (
            "params    = D",
            "params    = G",
            "41:1",
            "objectives discriminator and generator both train layer G_fake_dense1 in the same stage",
        ),
    ],
)
def test_check_reports_what_each_objective_trains(
    tmp_path: Path, old: str, new: str, where: str, message: str
) -> None:
    """`specc check` said ok (exit 0) for a GAN whose objectives trained nothing or the same layers; `specc train`
    then stopped at once with a located error. check now plans the objectives as train does, without JAX."""
    from specc.cli import main

    text = (Path(__file__).resolve().parents[1] / "specs" / "gan_digits.net").read_text()
    assert old in text
    path = tmp_path / "gan.net"
    path.write_text(text.replace(old, new, 1))
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 1 and r.output.startswith(f"{path}:{where}: value error: {message}"), r.output


def test_an_objectives_keys_are_set_by_its_name_and_epochs_that_changes_nothing_is_said(
    tmp_path: Path,
) -> None:
    """`specc train distillation.net --epochs 2` trained 40 epochs without a word (each stage sets its own 20), and
    `--set teacher.epochs=2` was an unknown train key: no option could shorten a stage."""
    from specc.cli import main

    spec = Path(__file__).resolve().parents[1] / "specs" / "distillation.net"
    loaded = specc.load(spec)
    cfg = build_config(loaded, loaded.graph(), ["teacher.epochs=1", "student.optimizer.lr=0.01"])
    assert [(o.name, o.epochs) for o in cfg.objectives] == [("teacher", 1), ("student", 20)]
    assert dict(cfg.objectives[1].optimizer.args)["lr"] == 0.01
    r = CliRunner().invoke(main, ["check", str(spec), "--set", "epochs=2"])
    assert r.stderr.count("warning:") == 1
    assert (
        r.exit_code == 0
        and "--set:1:1: warning: this sets the train section's epochs, which no objective" in (r.stderr)
    )
    assert "hint: set an objective's with --set teacher.epochs=N" in r.stderr
    r = CliRunner().invoke(main, ["check", str(spec), "--set", "teacher.epoch=2"])
    assert r.exit_code == 2 and r.stderr.startswith(
        "--set:1:1: name error: unknown key 'epoch' of objective teacher; did you mean 'epochs'?"
    )


def test_a_stage_cycle_made_by_set_is_located_in_the_option(tmp_path: Path) -> None:
    """`--set teacher.after=student` crashed (StopIteration, exit 3): the cycle check looked up the `after` line
    in the file's section, which has none."""
    from specc.cli import main

    spec = Path(__file__).resolve().parents[1] / "specs" / "distillation.net"
    r = CliRunner().invoke(main, ["check", str(spec), "--set", "teacher.after=student"])
    assert r.exit_code == 1 and "--set:1:15: value error: objective 'teacher' runs after itself" in r.stderr
    # an objective named like a train key the train section does not write is set by its name
    text = (
        spec.read_text()
        .replace("objective teacher", "objective optimizer")
        .replace("after     = teacher", "after     = optimizer")
    )
    (tmp_path / "o.net").write_text(text)
    cfg = build_config(
        specc.load(tmp_path / "o.net"), specc.load(tmp_path / "o.net").graph(), ["optimizer.epochs=1"]
    )
    assert [(o.name, o.epochs) for o in cfg.objectives] == [("optimizer", 1), ("student", 20)]
