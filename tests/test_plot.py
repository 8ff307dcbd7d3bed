"""`specc plot`: the numbers behind each figure (activation statistics, decision regions, learning rates, samples,
gradient norms, curves), the files written (format by suffix, never over a user's file) and the errors."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.ir.graph import Fn
from specc.plot import activations, boundary, curves, gradients, samples, schedule
from specc.plot.subject import Subject, build_models, open_spec, parse_init, with_init

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parents[1]
LOGS_GRADIENTS = any(p.name == "log_gradients" for p in main.commands["train"].params)
SPECS = ROOT / "specs"


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stdout, r.stderr


# ---- activations: the deep-initialisation experiment ---------------------------------------------------------


def small_copies(depth: int = 3, width: int = 64) -> dict[str, Subject]:
    """specs/deep_init_*.net at a test's size (their `let`s changed): the same initialisers and activations."""
    from specc.train.spec import build_config

    specs = {}
    for name in ("small", "large", "glorot"):
        path = SPECS / f"deep_init_{name}.net"
        text = path.read_text(encoding="utf-8")
        text = text.replace("let depth = 10", f"let depth = {depth}").replace(
            "let width = 500", f"let width = {width}"
        )
        specs[name] = specc.load(path, text=text)
    graphs = [s.graph() for s in specs.values()]
    models = build_models(graphs, 0)
    return {
        name: Subject(name, g, m, build_config(s, g), False, None, s)
        for (name, s), g, m in zip(specs.items(), graphs, models, strict=True)
    }


@pytest.fixture(scope="module")
def deep_stds() -> dict[str, list[activations.LayerActivations]]:
    return {k: activations.layer_activations(s, batch=100) for k, s in small_copies().items()}


def test_small_init_collapses(deep_stds: dict[str, list[activations.LayerActivations]]) -> None:
    stds = [a.std for a in deep_stds["small"]]
    assert len(stds) == 3 and [a.op for a in deep_stds["small"]] == ["tanh"] * 3
    # N(0, 0.01) on 64 units scales the spread by about 0.01·√64 = 0.08 per layer
    assert all(b < 0.15 * a for a, b in itertools.pairwise(stds)), stds
    assert stds[-1] < 1e-3


def test_large_init_saturates(deep_stds: dict[str, list[activations.LayerActivations]]) -> None:
    for a in deep_stds["large"][1:]:
        assert a.saturated() > 0.6, (a.name, a.saturated())  # |tanh| ≥ 0.99 for most units
        assert a.std > 0.85


def test_glorot_init_stays_spread(deep_stds: dict[str, list[activations.LayerActivations]]) -> None:
    stds = [a.std for a in deep_stds["glorot"]]
    assert all(0.15 < s < 0.8 for s in stds), stds
    assert stds[-1] > 0.4 * stds[0]
    assert all(a.saturated() < 0.02 for a in deep_stds["glorot"])


def test_layer_statistics_are_the_values_own() -> None:
    x = np.array([-1.0, 0.995, 0.0, 0.5], np.float32)
    a = activations.LayerActivations("h", "tanh", x)
    assert a.mean == pytest.approx(0.12375) and a.std == pytest.approx(float(np.std(x)))
    assert a.saturated() == 0.5


def test_init_option_replaces_every_weight_initialiser() -> None:
    assert parse_init("normal(0.01)") == Fn("normal", (0.01,))
    graph = with_init(specc.load(SPECS / "deep_init_small.net").graph(), parse_init("glorot_normal"))
    inits = {str(n.attr["init"]) for n in graph if "init" in n.attr}
    assert inits == {"glorot_normal()"}
    with pytest.raises(SpecError) as e:
        parse_init("normel(1)")
    assert "--init" in e.value.render() and "normal" in e.value.render()


def test_activations_command_of_a_spec_without_train_section(tmp_path: Path) -> None:
    spec = tmp_path / "one.net"
    spec.write_text("model M {\n  input x: f32[N, 4]\n  h = x -> dense(3) -> tanh\n  output h\n}\n")
    out = tmp_path / "a.png"
    code, _, err = invoke("plot", "activations", str(spec), "-o", str(out))
    assert code == 1 and "no train section to take data from" in err and "--data" in err
    # blobs: centres in [-10, 10]^4, so N(0, 1) weights saturate most of tanh's outputs
    code, stdout, err = invoke(
        "plot", "activations", str(spec), "--data", "blobs(dim=4)", "--init", "normal(1.0)", "-o", str(out)
    )
    assert code == 0, err
    row = re.search(r"│ h\s+│ tanh │\s+(\S+) │\s+(\S+) │\s+(\S+)% │", stdout)
    assert row is not None, stdout
    assert float(row.group(2)) > 0.5 and float(row.group(3)) > 30
    assert "M at initialisation (normal(1.0))" in stdout and out.read_bytes()[:4] == b"\x89PNG"


# ---- schedule: the trainer's own schedule, step by step ------------------------------------------------------


def test_schedule_values_are_the_trainers() -> None:
    curves_, per_epoch = schedule.learning_rates(
        SPECS / "mlp.net", lrs=("step(0.1, 0.5, 5)", "cosine(0.1, 20)", "0.05")
    )
    # digits(split=0.8): 1,437 training images, batch 64, the last partial batch dropped
    assert per_epoch == 1437 // 64 == 22
    step, cosine, constant = (c.rates for c in curves_)
    assert len(step) == 20 * 22
    assert step[0] == pytest.approx(0.1) and step[5 * 22 - 1] == pytest.approx(0.1)
    assert step[5 * 22] == pytest.approx(0.05) and step[15 * 22] == pytest.approx(0.0125)
    assert cosine[10 * 22] == pytest.approx(0.05, rel=1e-5)  # half way: (1 + cos(π/2)) / 2
    assert np.all(constant == np.float32(0.05))
    # the rate Optax applies: plain SGD moves a weight of gradient 1 by exactly -lr each step
    import jax
    import jax.numpy as jnp

    from specc.train.optim import make_optimizer
    from specc.train.spec import CallSpec

    lr = CallSpec("step", (("lr0", 0.1), ("factor", 0.5), ("every", 5), ("per", "epoch")))
    sgd = make_optimizer(
        CallSpec(
            "sgd", (("lr", lr), ("momentum", 0.0), ("nesterov", False), ("clip", None), ("weight_decay", 0.0))
        ),
        22,
    )

    def one_step(state: object, _: object) -> tuple[object, object]:
        u, state = sgd.update(jnp.ones(()), state)
        return state, -u

    _, applied = jax.lax.scan(one_step, sgd.init(jnp.zeros(())), None, length=120)
    np.testing.assert_allclose(np.asarray(applied), step[:120], rtol=1e-6)


def test_a_piecewise_schedule_plots() -> None:
    """`specc plot schedule` of a piecewise rate failed with exit 3 (the schedule compared a whole array of steps
    with its boundaries: "ge got incompatible shapes")."""
    (curve,), per_epoch = schedule.learning_rates(
        SPECS / "mlp.net", lrs=("piecewise([2, 4], [0.1, 0.01, 0.001])",)
    )
    rates = curve.rates
    assert rates[0] == pytest.approx(0.1) and rates[2 * per_epoch - 1] == pytest.approx(0.1)
    assert rates[2 * per_epoch] == pytest.approx(0.01) and rates[4 * per_epoch] == pytest.approx(0.001)


def test_schedule_command(tmp_path: Path) -> None:
    out = tmp_path / "lr.svg"
    code, stdout, err = invoke(
        "plot",
        "schedule",
        str(SPECS / "mlp.net"),
        "--lr",
        "exponential(0.1, 0.5)",
        "--steps",
        "50",
        "-o",
        str(out),
    )
    assert code == 0, err
    # exp(-0.5 · floor(49 / 22)) = exp(-1)
    assert f"step 49 {0.1 * np.exp(-1.0):.4g}" in stdout
    assert out.read_bytes().lstrip().startswith((b"<?xml", b"<svg"))


# ---- boundary: a trained 2-D classifier ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "toy2"
    flags = ["--log-gradients"] if LOGS_GRADIENTS else []
    code, _, err = invoke("train", str(SPECS / "toy_2class.net"), "--epochs", "20", "--out", str(out), *flags)
    assert code == 0, err
    return out


def test_decision_regions_agree_with_predict(toy_run: Path) -> None:
    run = specc.load_run(toy_run)
    from specc.plot.subject import open_run

    r = boundary.decision_regions(open_run(toy_run), resolution=50)
    assert (r.input, r.score, r.label) == ("x", "logits", "y")
    assert r.classes.shape == (50, 50) and set(np.unique(r.classes)) == {0, 1}
    assert len(r.points) == 120  # moons(n=150, split=0.8)
    predicted = np.argmax(run.predict(x=r.points)["logits"], axis=1)
    np.testing.assert_array_equal(r.predicted, predicted)
    assert r.accuracy == pytest.approx(float(np.mean(predicted == r.labels)))
    assert r.accuracy > 0.8
    # the grid spans the data with a margin of a tenth of its range on each side
    assert r.xs[0] < r.points[:, 0].min() and r.xs[-1] > r.points[:, 0].max()


def test_boundary_command_writes_into_the_run_and_never_over_a_file(toy_run: Path) -> None:
    code, stdout, err = invoke("plot", "boundary", str(toy_run), "--resolution", "30")
    assert code == 0, err
    assert re.search(r"training accuracy 0\.\d{4} \(120 points\)", stdout)
    png = toy_run / "boundary.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = png.stat().st_mtime_ns
    code, _, err = invoke("plot", "boundary", str(toy_run))
    assert code == 2 and "exists; give --force" in err
    assert png.stat().st_mtime_ns == before
    pdf = toy_run / "b.pdf"
    code, _, err = invoke("plot", "boundary", str(toy_run), "--resolution", "20", "-o", str(pdf))
    assert code == 0, err
    assert pdf.read_bytes()[:5] == b"%PDF-"
    code, _, err = invoke("plot", "boundary", str(toy_run), "-o", str(toy_run / "b.jpg"))
    assert code == 2 and ".png, .svg, .pdf" in err


def test_boundary_of_a_model_without_2d_input_is_a_located_error() -> None:
    spec = specc.load(SPECS / "mlp.net")
    subject = Subject("mlp", spec.graph(), None, None, False, None, spec)
    with pytest.raises(SpecError) as e:
        boundary.plane_input(subject)
    text = e.value.render()
    assert re.match(r"\S*specs/mlp\.net:3:3: plot error: a decision boundary is drawn over a 2-D input", text)
    assert "x: f32[N, 64]" in text and "^" in text


# ---- samples: a VAE's decoder from the prior, a GAN's generator from its noise -------------------------------


def test_vae_samples_are_the_decoder_of_prior_draws() -> None:
    s = open_spec(SPECS / "vae.net", seed=3)
    out = samples.generate(s, 16, seed=5)
    assert (out.output, out.latent) == ("recon", ("z",))
    assert out.images.shape == (16, 8, 8)
    # the same numbers by hand: z ~ N(0, 1) from the same seed through dense → relu → dense → sigmoid
    z = np.random.default_rng(5).standard_normal((16, 2)).astype(np.float32)
    dense = [n for n in s.graph if n.op == "dense"][-2:]  # the decoder's two layers
    from flax import nnx

    from specc.backend.flax import layer_keys

    keys = layer_keys(s.graph)
    (w1, b1), (w2, b2) = (
        (np.asarray(s.model.layers[keys[n.id]].kernel[...]), np.asarray(s.model.layers[keys[n.id]].bias[...]))
        for n in dense
    )
    want = 1 / (1 + np.exp(-(np.maximum(z @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(out.images.reshape(16, 64), want, rtol=1e-4, atol=1e-5)
    assert nnx is not None


def test_gan_samples_default_to_the_drawn_noise_and_the_output_made_from_it() -> None:
    graph = specc.load(SPECS / "gan_digits.net").graph()
    assert [n.name for n in samples.latents(graph, None)] == ["z"]
    assert [n.op for n in samples.latents(specc.load(SPECS / "vae.net").graph(), None)] == ["sample_normal"]
    assert samples.image_shape((64,)) == (8, 8) and samples.image_shape((28, 28, 1)) == (28, 28, 1)
    assert samples.image_shape((10,)) is None and samples.image_shape((4, 4, 5)) is None
    with pytest.raises(SpecError, match="no value named 'nope'"):
        samples.latents(graph, "nope")
    # --manifold: the 2-D latent plane at N(0, 1) quantiles, row by row from the top left
    grid = samples.manifold_grid(3)
    np.testing.assert_allclose(grid[:3], [[-1.6449, 1.6449], [0.0, 1.6449], [1.6449, 1.6449]], atol=1e-4)
    np.testing.assert_allclose(grid[-1], [1.6449, -1.6449], atol=1e-4)
    gan = Subject("gan", graph, None, None, True)
    with pytest.raises(SpecError, match=r"--manifold walks one 2-D latent; z is f32\[N, 16\]"):
        samples.generate(gan, 9, manifold=True)


CGAN = """model CGAN {
  input x: f32[N, 64]
  input y: i32[N]
  input z: f32[N, 16] = normal()
  c = y -> one_hot(10)
  fake = concat(z, c, axis=-1) -> dense(32) -> relu -> dense(64) -> sigmoid
  d = concat(x, c, axis=-1) -> dense(1)
  output fake
}
"""


def test_conditional_gan_samples_take_their_labels_from_input(tmp_path: Path) -> None:
    """A conditional GAN could not be drawn ("fake needs the input(s) y", and a hint to name another value, which
    cannot help): `--input y=0..9` now gives each example its label, the values in equal runs, one row each."""
    from specc.plot.subject import model_values

    path = tmp_path / "cgan.net"
    path.write_text(CGAN)
    s = open_spec(path, seed=0)
    with pytest.raises(SpecError) as e:
        samples.generate(s, 20, seed=1)
    d = e.value.diagnostics[0]
    assert "fake needs the input(s) y" in d.message and d.hint.startswith(
        "give a conditional generator's other"
    )
    out = samples.generate(s, 20, seed=1, fixed={"y": tuple(range(10))})
    assert out.cols == 2 and out.images.shape == (20, 8, 8)
    z = np.random.default_rng(1).standard_normal((20, 16)).astype(np.float32)
    labels = np.repeat(np.arange(10, dtype=np.int32), 2)
    want = model_values(s.model, {"z": z, "y": labels}, ["fake"], {})["fake"]
    np.testing.assert_allclose(out.images.reshape(20, 64), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert samples.parse_values("0..3, 7") == (0, 1, 2, 3, 7.0)
    for bad, message in (({"x": (1.0,)}, "x is f32[N, 64]"), ({"y": (0.5,)}, "its values whole numbers")):
        with pytest.raises(SpecError, match=re.escape(message)):
            samples.generate(s, 4, fixed=bad)
    with pytest.raises(SpecError, match="no input 'q' to give"):
        samples.generate(s, 4, fixed={"q": (1.0,)})


# ---- gradients: the trainer's gradients.jsonl --------------------------------------------------------------


def write_gradients(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    rows = [
        {"epoch": e, "objective": "main", "layers": {f"h.{i}/h.dense": 10.0 ** (i - 7) * e for i in range(8)}}
        for e in (1, 2, 3)
    ]
    (run / "gradients.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_gradient_log_is_read_per_layer_and_epoch(tmp_path: Path) -> None:
    write_gradients(tmp_path / "r")
    (log,) = gradients.read_gradients(tmp_path / "r")
    assert log.objective == "main" and log.epochs == (1, 2, 3)
    assert next(iter(log.norms)) == "h.0/h.dense" and log.norms["h.0/h.dense"] == pytest.approx(
        (1e-7, 2e-7, 3e-7)
    )
    code, stdout, err = invoke("plot", "gradients", str(tmp_path / "r"))
    assert code == 0, err
    assert re.search(r"h\.0/h\.dense\s+1e-07 →\s+3e-07", stdout)
    assert (tmp_path / "r" / "gradients.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.skipif(not LOGS_GRADIENTS, reason="specc train has no --log-gradients yet")
def test_gradients_of_a_trained_run(toy_run: Path) -> None:
    (log,) = gradients.read_gradients(toy_run)
    graph = specc.load(SPECS / "toy_2class.net").graph()
    assert log.objective == "main" and log.epochs == tuple(range(1, 21))
    assert len(log.norms) == sum(1 for n in graph if n.params)  # one per layer with weights: the three dense
    assert all(0 < v < 1e3 for norms in log.norms.values() for v in norms)
    code, stdout, err = invoke("plot", "gradients", str(toy_run), "-o", str(toy_run / "g.svg"))
    assert code == 0, err
    assert stdout.startswith("main: gradient L2 norm per layer, epoch 1 → 20")
    assert (toy_run / "g.svg").is_file()


def test_gradients_of_a_run_without_the_log(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    code, _, err = invoke("plot", "gradients", str(tmp_path / "r"))
    assert code == 1
    assert "this run was trained without --log-gradients; retrain with it" in err and "Traceback" not in err


# ---- curves: several runs on one figure ------------------------------------------------------------------------


def test_curves_of_several_runs(tmp_path: Path) -> None:
    for width, losses in ((16, (1.0, 0.8)), (64, (0.9, 0.5))):
        run = tmp_path / f"w{width}"
        run.mkdir()
        (run / "metrics.jsonl").write_text(
            "".join(json.dumps({"epoch": e + 1, "val_loss": v}) + "\n" for e, v in enumerate(losses))
        )
    (tmp_path / "w64" / "run.json").write_text(json.dumps({"overrides": {"width": 64}}))
    found = curves.read_curves([tmp_path / "w16", tmp_path / "w64"], "val_loss")
    assert [(c.label, c.epochs, c.values) for c in found] == [
        ("w16", (1, 2), (1.0, 0.8)),
        ("width=64", (1, 2), (0.9, 0.5)),
    ]
    out = tmp_path / "sweep.png"
    code, stdout, err = invoke("plot", "curves", str(tmp_path / "w16"), str(tmp_path / "w64"), "-o", str(out))
    assert code == 0, err
    assert "width=64: val_loss 0.5 at epoch 2" in stdout and out.is_file()
    code, _, err = invoke(
        "plot", "curves", str(tmp_path / "w16"), "--metric", "accuracy", "-o", str(tmp_path / "a.png")
    )
    assert code == 1 and "no 'accuracy'" in err and "it has: val_loss" in err


def test_curves_of_a_run_with_no_finished_epoch_say_so(tmp_path: Path) -> None:
    # a run stopped before its first epoch ended (or --epochs 0): the hint was "it has: no epochs yet; give
    # --metric", which no --metric can help
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text("")
    code, _, err = invoke("plot", "curves", str(tmp_path / "r"), "-o", str(tmp_path / "c.png"))
    assert code == 1 and not (tmp_path / "c.png").exists()
    assert f"{tmp_path / 'r'}: no epoch has finished yet (metrics.jsonl is empty)" in err
    assert "give --metric" not in err and "train it for an epoch or more" in err


def test_curves_of_a_sweeps_folder_point_to_its_runs(tmp_path: Path) -> None:
    # `specc sweep -o sw` then `specc plot curves sw` said "give the --out folders of `specc train`"
    (tmp_path / "sw").mkdir()
    (tmp_path / "sw" / "sweep.json").write_text("{}")
    code, _, err = invoke("plot", "curves", str(tmp_path / "sw"), "-o", str(tmp_path / "c.png"))
    assert code == 1
    assert f"{tmp_path / 'sw'} is a sweep, not a run" in err
    assert f"give its points' folders: specc plot curves {tmp_path / 'sw'}/*/" in err
