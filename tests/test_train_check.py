"""The train section is type-checked like the model: losses and metrics over tensor types, objectives, one report.

The fuzz target draws train sections over random-typed model values: `specc check` exits 0 or 1, never crashes,
and whatever it accepts really computes with JAX, on zeros of those shapes, to a finite scalar.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.ir.types import JNP_NAMES
from specc.train.losses import LOSSES, term_value
from specc.train.metrics import METRICS, metric_value
from specc.train.spec import build_config, check_spec

ROOT = Path(__file__).resolve().parent.parent


def _spec(model: str, train: str, name: str = "t.net") -> specc.Spec:
    return specc.load(name, text=f"{model}\n{train}\n")


def _errors(model: str, train: str) -> list[tuple[str, int, int, str]]:
    """(kind, line, col, message | hint) of each problem `specc check` reports; [] when the spec checks."""
    spec = _spec(model, train)
    try:
        check_spec(spec)
    except SpecError as e:
        out = []
        for d in e.diagnostics:
            line, col = (d.span.line, d.span.col) if d.span else (0, 0)
            out.append((d.kind, line, col, f"{d.message} | hint: {d.hint}"))
        return out
    return []


BINARY = """model B {
  input x: f32[N, 2]
  input y: i32[N]
  input t: f32[N, 1]
  z = x -> dense(1)
  k = x -> dense(3)
  output z, k
}"""


@pytest.mark.parametrize(
    ("train", "col", "words"),
    [
        ("loss = binary_cross_entropy(z, y)", 34, ["[N, N]", "squeeze"]),
        ("loss = mse(z, y)", 17, ["same shape", "z[:, 0]"]),
        ("loss = binary_cross_entropy(y, z)", 31, ["swapped"]),
        ("loss = cross_entropy(y, k)", 24, ["swapped", "labels come second"]),
        ("loss = cross_entropy(k, t)", 27, ["int class indices of shape [N]"]),
        ("loss = cross_entropy(z, y)", 24, ["class axis of size 1"]),
        ("loss = nll(k, t)", 17, ["int class indices"]),
        ("loss = kl_normal(z, y)", 23, ["logvar must be float"]),
        ("loss = huber(z, t, delta=0)", 28, ["delta must be > 0"]),
        ("loss = cross_entropy(k, y, label_smoothing=2)", 46, ["label_smoothing"]),
        ("loss = cross_entropy(k, 1)", 27, ["must be the name of a model value"]),
        ("loss = y", 10, ["must be float"]),
        ("loss = mse(z, t)\n  metrics = [top_k_accuracy(k, y, k=4)]", 37, ["k=4", "3"]),
        ("loss = mse(z, t)\n  metrics = [accuracy(k, 1)]", 26, ["a number only for one logit"]),
    ],
)
def test_type_errors_are_located_at_the_argument(train: str, col: int, words: list[str]) -> None:
    errs = _errors(BINARY, f"train {{\n  data = moons\n  {train}\n}}")
    assert len(errs) == 1, errs
    kind, line, c, msg = errs[0]
    assert kind.endswith("error") and line in (11, 12) and c == col, errs[0]
    for w in words:
        assert w in msg, (w, msg)


@pytest.mark.parametrize(
    ("loss", "col"),
    [("cross_entropy(k, f)", 27), ("nll(k, f)", 17), ("hinge(k, f)", 19), ("cross_entropy(k, b)", 27)],
)
def test_float_labels_of_the_class_indices_shape_are_a_type_error_with_the_declaration(
    loss: str, col: int
) -> None:
    """`input y: f32[N]` for cross_entropy's labels was a shape error hinting to reshape, which cannot help: the
    shape is right, the dtype is not."""
    model = BINARY.replace(
        "  input t: f32[N, 1]\n", "  input t: f32[N, 1]\n  input f: f32[N]\n  input b: bool[N]\n"
    )
    errs = _errors(model, f"train {{\n  data = moons as {{f: t, b: y}}\n  loss = {loss}\n}}")
    name = loss.split("(")[1][3]
    dtype = {"f": "f32", "b": "bool"}[name]
    assert errs == [
        (
            "type error",
            13,
            col,
            f"{loss.split('(')[0]}: labels of the shape [N] are class indices, which must be integers; got labels "
            f"'{name}' ({dtype}[N]) | hint: declare them as integers, `input {name}: i32[N]`, or convert: "
            f"`{name} -> cast(i32)`",
        )
    ]
    # one logit per example takes float labels of its own shape: the squeeze hint stays
    assert (
        "squeeze" in _errors(model, "train {\n  data = moons as {f: t, b: y}\n  loss = hinge(z, f)\n}")[0][3]
    )


@pytest.mark.parametrize(
    "train",
    [
        "loss = binary_cross_entropy(z, t)\n  metrics = [accuracy(z, t), accuracy(z, 1), mse(z, t)]",
        "loss = binary_cross_entropy(z, 1) + binary_cross_entropy(z, 0.0) + mse(k, 0) + l2(1e-4)",
        "loss = cross_entropy(k, y, label_smoothing=0.1) + hinge(k, y) + nll(k, y) + hinge(z, t) + hinge(z, 1)",
        "loss = kl_div(k, k) + kl_normal(k, k) + huber(k, k, delta=0.5) + mae(z, t) + z\n"
        "  metrics = [top_k_accuracy(k, y, k=3)]",
    ],
)
def test_well_typed_sections_check(train: str) -> None:
    assert _errors(BINARY, f"train {{\n  data = moons\n  {train}\n}}") == []


def test_a_number_target_is_a_constant_of_the_predictions_shape() -> None:
    spec = _spec(BINARY, "train {\n  data = moons\n  loss = binary_cross_entropy(z, 1) + mse(z, 0.5)\n}")
    cfg = build_config(spec, spec.graph())
    (_, bce), (_, mse) = cfg.objectives[0].terms
    assert bce["targets"] == 1 and mse["target"] == 0.5
    assert cfg.value_names == ("z",)  # numbers are not values the model must produce
    z = jnp.asarray([[0.3], [-2.0], [1.5]], jnp.float32)
    got = term_value(bce, {"z": z}, None)
    want = np.mean(np.log1p(np.exp(-np.asarray(z))))
    assert np.isclose(float(got), want, rtol=1e-6)
    assert np.isclose(float(term_value(mse, {"z": z}, None)), np.mean((np.asarray(z) - 0.5) ** 2), rtol=1e-6)
    acc = _spec(BINARY, "train {\n  data = moons\n  loss = mse(z, t)\n  metrics = [accuracy(z, 1)]\n}")
    m = build_config(acc, acc.graph()).metrics[0].call
    assert float(metric_value(m, {"z": z})) == pytest.approx(2 / 3)


GAN = """model GAN {
  input x: f32[N, 64]
  input z: f32[N, 16] = normal()
  fake = z -> dense(64) -> sigmoid
  d_real = x -> dense(1)
  d_fake = fake -> dense(1)
  output fake, d_real, d_fake
}
train {
  data = digits(split=0.9)
  batch = 64
  optimizer = adam(lr=2e-4, b1=0.5)
}
objective discriminator {
  loss = binary_cross_entropy(d_real, 1) + binary_cross_entropy(d_fake, 0)
  params = [d_real, d_fake]
  steps = 2
}
objective generator {
  loss = binary_cross_entropy(d_fake, 1)
  optimizer = sgd(lr=0.1)
  params = fake
  after = discriminator
  epochs = 3
}"""


def test_objective_sections_give_one_objective_each() -> None:
    spec = specc.load("gan.net", text=GAN)
    cfg = build_config(spec, spec.graph())
    d, g = cfg.objectives
    assert (d.name, d.params, d.steps, d.optimizer.name, d.optimizer["b1"]) == (
        "discriminator",
        ("d_real", "d_fake"),
        2,
        "adam",
        0.5,
    )
    assert [t.name for _, t in d.terms] == ["binary_cross_entropy"] * 2
    assert (g.name, g.params, g.after, g.epochs, g.optimizer.name) == (
        "generator",
        ("fake",),
        "discriminator",
        3,
        "sgd",
    )


def test_specc_check_reports_the_objectives(tmp_path: Path) -> None:
    f = tmp_path / "gan.net"
    f.write_text(GAN)
    result = CliRunner().invoke(main, ["check", str(f)])
    assert result.exit_code == 0, result.output
    assert (
        "train:   discriminator: binary_cross_entropy + binary_cross_entropy by adam over d_real, d_fake"
        in (result.stdout)
    )
    assert "train:   generator: binary_cross_entropy by sgd over fake" in result.stdout


@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [
        ("after = discriminator", (23, 11), "names no other objective"),
        ("steps = 2", (17, 11), "at least 1"),
        ("params = fake", (22, 12), "'fak' is no instance"),
        ("epochs = 3", (24, 3), "unknown objective key 'epoch'; did you mean 'epochs'"),
    ],
)
def test_objective_mistakes_are_located(edit: str, where: tuple[int, int], words: str) -> None:
    bad = {
        "after = discriminator": "after = generator",
        "steps = 2": "steps = 0",
        "params = fake": "params = fak",
        "epochs = 3": "epoch = 3",
    }[edit]
    text = GAN.replace(edit, bad)
    with pytest.raises(SpecError) as e:
        spec = specc.load("gan.net", text=text)
        build_config(spec, spec.graph())
    d = e.value.diagnostics[0]
    assert d.span is not None and (d.span.line, d.span.col) == where and words in d.message, e.value.render()


FREEZE = """\
block Pool {
  input x: f32[N, 32]
  h = x -> relu
  output h
}
model M {
  input x: f32[N, 64]
  input y: i32[N]
  h1 = x -> dense(32)
  a1 = h1 -> relu
  b = a1 -> Pool()
  logits = b -> dense(10)
  output logits
}
train {
  data = digits(split=0.8)
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr=0.1)
  freeze = [h1, FROZEN]
}
"""


@pytest.mark.parametrize(("name", "col"), [("a1", 17), ("Pool", 17), ("b", 17), ("x", 17)])
def test_freeze_naming_what_has_no_weights_is_a_located_error(tmp_path: Path, name: str, col: int) -> None:
    """`freeze = [a1]` (a relu), a block of a relu or an input held nothing still and trained on silently: now a
    located value error at the name (as `params` naming one is), listing the names that have weights."""
    f = tmp_path / "f.net"
    f.write_text(FREEZE.replace("FROZEN", name))
    r = CliRunner().invoke(main, ["check", str(f)])
    assert r.exit_code == 1, r.output
    assert f"f.net:19:{col}: value error: freeze names {name}, which owns no trainable parameters" in r.output
    assert f"  freeze = [h1, {name}]\n" in r.output and "^" * len(name) in r.output, r.output
    assert (
        f"hint: {name} has no weights to hold still" in r.output
        and "names with weights: h1, logits" in r.output
    )
    f.write_text(FREEZE.replace(", FROZEN", ""))
    assert CliRunner().invoke(main, ["check", str(f)]).exit_code == 0


def test_params_naming_what_has_no_weights_is_found_by_check() -> None:
    """`params = fake` on a value without weights was found only when training started."""
    text = GAN.replace("params = fake", "params = z")
    with pytest.raises(SpecError) as e:
        spec = specc.load("gan.net", text=text)
        check_spec(spec)
    d = e.value.diagnostics[0]
    assert d.span is not None and (d.span.line, d.span.col) == (22, 12), e.value.render()
    assert d.message == "objective 'generator': params names z, which owns no trainable parameters"
    assert d.hint.startswith("z has no weights to train")


def test_a_train_loss_next_to_objectives_is_refused() -> None:
    text = GAN.replace("  batch = 64\n", "  batch = 64\n  loss = binary_cross_entropy(d_fake, 1)\n")
    with pytest.raises(SpecError) as e:
        spec = specc.load("gan.net", text=text)
        build_config(spec, spec.graph())
    assert "objective` sections say what to minimise too" in e.value.render()


def test_train_without_a_train_section_says_so_at_the_model(tmp_path: Path) -> None:
    f = tmp_path / "m.net"
    f.write_text("# a model only\nmodel M {\n  input x: f32[N, 4]\n  y = x -> dense(2)\n  output y\n}\n")
    result = CliRunner().invoke(main, ["train", str(f), "--epochs", "1", "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert f"{f}:2:1: value error: {f} has no `train` section" in result.stderr
    assert "hint: add one after the model, e.g. `train { data = " in result.stderr
    assert "needs `data" not in result.stderr


def test_check_spec_does_not_import_jax() -> None:
    code = (
        "import sys, specc; from specc.train.spec import check_spec; "
        "print(check_spec(specc.load(sys.argv[1]))['train']['objectives']); "
        "assert 'jax' not in sys.modules, 'jax imported'"
    )
    for spec in ("vae.net", "xor_mlp.net"):
        out = subprocess.run(
            [sys.executable, "-c", code, str(ROOT / "specs" / spec)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr


def test_every_spec_with_a_train_section_checks() -> None:
    for f in sorted((ROOT / "specs").glob("*.net")):
        spec = specc.load(f)
        check_spec(spec)


# ---- fuzz: random loss and metric calls over random-typed values -------------------------------------------

SIZES = {"N": 5}
DIMS = st.sampled_from(["N", "1", "2", "3", "4"])
NUMBER = st.sampled_from(["0", "1", "0.5", "2"])
TERMS = sorted({**LOSSES, **METRICS})


@st.composite
def sections(draw: st.DrawFn) -> tuple[str, str]:
    """A model of three inputs (`a` float scores, `b` and `c` often shaped like them or like their labels) and a
    train section of random loss and metric calls over them and numbers."""
    base = draw(st.lists(DIMS, max_size=2))
    cls = draw(DIMS)
    shapes = st.sampled_from([[*base, cls], base, None])

    def decl(name: str, first: bool) -> str:
        dt = "f32" if first else draw(st.sampled_from(["f32", "i32", "bool"]))
        dims = [*base, cls] if first else draw(shapes)
        if dims is None:
            dims = draw(st.lists(DIMS, max_size=3))
        return f"  input {name}: {dt}[{', '.join(dims)}]"

    model = f"model F {{\n{decl('a', True)}\n{decl('b', False)}\n{decl('c', False)}\n  output a\n}}"

    def call() -> str:
        name = draw(st.sampled_from(TERMS))
        if name in ("l1", "l2"):
            return f"{name}(0.01)"
        first = draw(st.sampled_from(["a", "a", "a", "b", "c"]))
        second = draw(st.one_of(st.sampled_from(["b", "c", "a"]), NUMBER))
        options = {
            "reduction": st.sampled_from(["mean", "sum"]),
            "k": st.integers(1, 6),
            "delta": st.sampled_from([0.5, 1]),
            "label_smoothing": st.sampled_from([0, 0.1]),
        }
        extra = "".join(
            f", {a.name}={draw(options[a.name])}"
            for a in {**LOSSES, **METRICS}[name].sig.args
            if a.name in options and draw(st.booleans())
        )
        return f"{name}({first}, {second}{extra})"

    loss = " + ".join(call() for _ in range(draw(st.sampled_from([1, 1, 2]))))
    metrics = ", ".join(call() for _ in range(draw(st.sampled_from([0, 0, 1]))))
    return model, f"train {{\n  data = digits\n  loss = {loss}\n  metrics = [{metrics}]\n}}"


def _zeros(t) -> jnp.ndarray:
    shape = tuple(d.subst(SIZES).value for d in t.dims)
    return jnp.zeros(shape, JNP_NAMES[t.dtype])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sections())
def test_fuzz_train_sections(section: tuple[str, str]) -> None:
    model, train = section
    text = f"{model}\n{train}\n"
    spec = specc.load("fuzz.net", text=text)
    try:
        check_spec(spec)
    except SpecError as e:
        assert all(d.span is not None for d in e.diagnostics), e.render()
        return
    graph = spec.graph()
    cfg = build_config(spec, graph)
    values = {k: _zeros(graph.type_of(r)) for k, r in graph.values}
    for _, call in cfg.objectives[0].terms:
        v = term_value(call, values, {})
        assert v.shape == () and bool(jnp.isfinite(v)), (call, v)
    for m in cfg.metrics:
        v = metric_value(m.call, values)
        assert v.shape == () and bool(jnp.isfinite(v)), (m.call, v)


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_through_the_cli_exits_0_or_1(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for i in range(10):
        dims = ", ".join(rng.choice(["N", "1", "3"], size=rng.integers(0, 3)))
        dt = rng.choice(["f32", "i32"])
        name = rng.choice(TERMS)
        args = ", ".join(rng.choice(["a", "b", "1"], size=2))
        f = tmp_path / f"f{i}.net"
        f.write_text(
            f"model F {{\n  input a: f32[N, 3]\n  input b: {dt}[{dims}]\n  output a\n}}\n"
            f"train {{\n  data = digits\n  loss = {name}({args})\n}}\n"
        )
        result = CliRunner().invoke(main, ["check", str(f)])
        assert result.exit_code in (0, 1), (f.read_text(), result.output)
        assert "Traceback" not in result.output and "internal error" not in result.output


def test_a_cycle_of_stages_is_refused() -> None:
    text = GAN.replace("  steps = 2\n", "  steps = 2\n  after = generator\n")
    with pytest.raises(SpecError) as e:
        spec = specc.load("gan.net", text=text)
        build_config(spec, spec.graph())
    msgs = [(d.span.line, d.message) for d in e.value.diagnostics if d.span]
    assert msgs[0] == (
        18,
        "objective 'discriminator' runs after itself: discriminator after generator after discriminator",
    )


@pytest.mark.parametrize(
    ("optimizer", "arg", "words"),
    [
        ("sgd(lr=-0.1)", "-0.1", "'lr' must be at least 0, got -0.1 | hint: a negative learning rate climbs"),
        ("sgd(-0.1)", "-0.1", "'lr' must be at least 0"),  # positional, as `sgd(0.1)` is written
        ("sgd(lr=0.1, momentum=-0.5)", "-0.5", "'momentum' must be in [0, 1), got -0.5"),
        ("sgd(lr=0.1, momentum=1)", "1)", "'momentum' must be in [0, 1), got 1"),
        ("adam(lr=1e-3, b1=1.5)", "1.5", "'b1' must be in [0, 1)"),
        ("adam(lr=1e-3, b2=1)", "1)", "'b2' must be in [0, 1)"),
        ("adam(lr=1e-3, eps=-1e-8)", "-1e-8", "'eps' must be at least 0"),
        ("adam(lr=1e-3, clip=0)", "0)", "'clip' must be greater than 0"),
        ("sgd(lr=0.1, weight_decay=-1e-4)", "-1e-4", "'weight_decay' must be at least 0"),
        ("rmsprop(lr=1e-3, decay=2)", "2)", "'decay' must be in [0, 1]"),
        ("adadelta(rho=1.1)", "1.1", "'rho' must be in [0, 1]"),
        ("lion(lr=1e-4, b2=-0.1)", "-0.1", "'b2' must be in [0, 1)"),
        ("sgd(lr=step(-0.1, 0.5, 10))", "-0.1", "step: argument 'lr0' must be at least 0"),
        ("sgd(lr=step(0.1, -0.5, 10))", "-0.5", "step: argument 'factor' must be at least 0"),
        ("sgd(lr=cosine(0.1, 100, final=-0.01))", "-0.01", "cosine: argument 'final' must be at least 0"),
    ],
)
def test_optimizer_hyper_parameters_out_of_range_are_located(optimizer: str, arg: str, words: str) -> None:
    """As PyTorch's optimizers refuse theirs: a typo'd sign or a beta of 1.5 is an error at the number, not a
    run that climbs the loss or whose running averages overflow."""
    train = f"train {{\n  data = moons()\n  loss = cross_entropy(k, y)\n  optimizer = {optimizer}\n}}"
    ((kind, line, col, text),) = _errors(BINARY, train)
    assert (kind, line) == ("argument error", 12)
    assert col == len("  optimizer = ") + optimizer.rindex(arg) + 1
    assert words in text


@pytest.mark.parametrize(
    "optimizer",
    [
        "sgd(lr=0)",
        "sgd(lr=0.1, momentum=0.99, nesterov=true)",
        "adam(lr=2e-4, b1=0.5)",
        "adam(b1=0, b2=0)",
        "rmsprop(decay=1)",
        "adadelta(rho=1.0)",
        "sgd(lr=0.1, clip=1e-3, weight_decay=0)",
        "sgd(lr=step(0, 0, 1))",
    ],
)
def test_optimizer_hyper_parameters_at_their_limits_check(optimizer: str) -> None:
    train = f"train {{\n  data = moons()\n  loss = cross_entropy(k, y)\n  optimizer = {optimizer}\n}}"
    assert _errors(BINARY, train) == []


@pytest.mark.parametrize(
    ("flag", "hint"), [("--data", """--data 'mnist("data/")'"""), ("--seed", "--seed 3")]
)
def test_an_empty_option_value_is_an_argument_error_at_the_option(flag: str, hint: str) -> None:
    """`--data ''` read as a syntax error about the end of a file; now it says the option wants a value."""
    from specc.train.spec import parse_flag

    with pytest.raises(SpecError) as e:
        parse_flag(flag[2:], " ")
    (d,) = e.value.diagnostics
    assert d.kind == "argument error" and d.message == f"{flag} wants a value, got none" and hint in d.hint
    assert d.span is not None and (d.span.line, d.span.col) == (1, len(flag) + 2)


@pytest.mark.parametrize(
    ("split", "words"),
    [
        ("1.5", "split=1.5 must be a fraction in (0, 1] or an integer count"),
        ("0", "split=0 asks for 0 training examples"),
        ("-1", "split=-1 asks for -1 training examples"),
        ("1", "split=1 keeps a single training example"),
    ],
)
def test_a_split_no_data_set_can_take_is_found_by_specc_check(tmp_path: Path, split: str, words: str) -> None:
    """`specc check` reported these only when `specc train` loaded the data."""
    spec = tmp_path / "m.net"
    spec.write_text(
        "model M {\n  input x: f32[N, 64]\n  input y: i32[N]\n  logits = x -> dense(10)\n  output logits\n}\n"
        f"train {{\n  data = digits(split={split})\n  loss = cross_entropy(logits, y)\n  optimizer = sgd(lr=0.1)\n}}\n"
    )
    r = CliRunner().invoke(main, ["check", str(spec)])
    assert r.exit_code == 1 and words in r.output and f"{spec}:8:17:" in r.output, r.output


TWO_HEADS = """model M {
  input x: f32[N, 64]
  input y: i32[N]
  h = x -> dense(32) -> relu
  logits = h -> dense(10)
  aux = h -> dense(10)
  output logits, aux
}"""


@pytest.mark.parametrize(
    ("metrics", "names"),
    [
        ("[accuracy(logits, y)]", ["accuracy"]),
        # the same metric on two outputs: named after the value that differs (it was accuracy_logits_y, ..._aux_y)
        ("[accuracy(logits, y), accuracy(aux, y)]", ["accuracy_logits", "accuracy_aux"]),
        # the same values with other options: named after the option (it was top_k_accuracy_logits_y_)
        (
            "[top_k_accuracy(logits, y, k=1), top_k_accuracy(logits, y, k=5), accuracy(aux, y)]",
            ["top_k_accuracy_k1", "top_k_accuracy_k5", "accuracy"],
        ),
        ("[mse(aux, logits), mse(aux, logits, reduction=sum)]", ["mse_mean", "mse_sum"]),
        ("[mse(aux, logits), mse(logits, aux)]", ["mse_aux_logits", "mse_logits_aux"]),
    ],
)
def test_metrics_of_one_kind_are_named_after_what_differs(metrics: str, names: list[str]) -> None:
    spec = _spec(
        TWO_HEADS, f"train {{\n  data = digits\n  loss = cross_entropy(logits, y)\n  metrics = {metrics}\n}}"
    )
    assert [m.name for m in build_config(spec, spec.graph()).metrics] == names
    gan = specc.load(ROOT / "specs" / "gan_digits.net")
    assert [m.name for m in build_config(gan, gan.graph()).metrics] == ["accuracy_d_real", "accuracy_d_fake"]


def test_a_model_value_listed_alone_is_a_metric_its_mean() -> None:
    """`metrics = [w]`: the mean of a model value, logged under its name (a WGAN's distance estimate); it said
    'unknown metric'. Per-example values are averaged over the examples, with the batch's weights."""
    model = TWO_HEADS.replace("  output", "  gap = logits - aux\n  score = gap -> mean\n  output")
    spec = _spec(
        model, "train {\n  data = digits\n  loss = cross_entropy(logits, y)\n  metrics = [gap, score]\n}"
    )
    cfg = build_config(spec, spec.graph())
    assert [m.name for m in cfg.metrics] == ["gap", "score"]
    gap = np.arange(12, dtype=np.float32).reshape(3, 4)
    values = {"gap": jnp.asarray(gap), "score": jnp.float32(gap.mean())}
    assert float(metric_value(cfg.metrics[0].call, values)) == pytest.approx(gap.mean())
    assert float(metric_value(cfg.metrics[1].call, values)) == pytest.approx(gap.mean())
    weights = jnp.asarray([1.0, 1.0, 0.0])  # the last example is padding
    assert float(metric_value(cfg.metrics[0].call, values, weights)) == pytest.approx(gap[:2].mean())


@pytest.mark.parametrize(
    ("item", "kind", "words"),
    [
        (
            "acuracy",
            "name error",
            "'acuracy' is neither a metric nor a value of the model; did you mean 'accuracy'",
        ),
        ("logit", "name error", "did you mean 'logits'?"),
        ("loss", "value error", "the value 'loss' would be logged as 'loss'"),
        ("val_h", "value error", "the value 'val_h' would be logged as 'val_h'"),
    ],
)
def test_a_name_in_metrics_that_is_no_value_or_would_clash_in_the_log_is_located(
    item: str, kind: str, words: str
) -> None:
    model = TWO_HEADS.replace("  output", "  loss = h -> mean\n  val_h = h\n  output")
    errors = _errors(
        model, f"train {{\n  data = digits\n  loss = cross_entropy(logits, y)\n  metrics = [{item}]\n}}"
    )
    assert [(k, line, c) for k, line, c, _ in errors] == [(kind, 14, 14)], errors
    assert words in errors[0][3]


def test_a_metric_listed_twice_is_a_located_error_at_the_second() -> None:
    """accuracy, accuracy logged the same number twice as accuracy_logits_y and accuracy_logits_y_; top_k_accuracy
    with k=5 written out is the default's twin."""
    train = "train {\n  data = digits\n  loss = cross_entropy(logits, y)\n  metrics = [accuracy(logits, y),\n    %s]\n}"
    [(kind, line, col, text)] = _errors(TWO_HEADS, train % "accuracy(logits, y)")
    assert (kind, line, col) == ("value error", 13, 5)
    assert text.startswith(
        "metrics: accuracy(logits, y) is already listed at line 12, column 14: it would be computed and logged twice"
    )
    train = train.replace("accuracy(logits, y),", "top_k_accuracy(logits, y),")
    [(kind, line, col, text)] = _errors(TWO_HEADS, train % "top_k_accuracy(logits, y, k=5)")
    assert (line, col) == (13, 5)
    assert "top_k_accuracy(logits, y) is already listed at line 12, column 14, with the same options" in text
    assert _errors(TWO_HEADS, train % "top_k_accuracy(logits, y, k=3)") == []


PERCEPTRON = """model P {
  input x: f32[N, 2]
  input t: f32[N, 1]
  input z: f32[N, 2] = normal()
  s = x + z -> dense(1)
  output s
}"""


def test_an_input_that_a_data_set_of_fixed_fields_lacks_is_found_by_check() -> None:
    """blobs yields x and y: `input t` passed `specc check` and stopped `specc train` at loading. The drawn input
    z needs no field; a rename to a field the data set has is fine; csv and npz are left to loading."""
    train = "train {{\n  data = {data}\n  loss = binary_cross_entropy(s, t)\n}}"
    [(kind, line, col, text)] = _errors(PERCEPTRON, train.format(data="blobs(classes=2)"))
    assert (kind, line, col) == ("data error", 9, 3)
    assert text == (
        "the data has no field 't' for input t: f32[N, 1] | hint: available fields: x, y; rename with "
        "`data = ... as {...}`"
    )
    assert _errors(PERCEPTRON, train.format(data="moons()")) == []
    assert _errors(PERCEPTRON, train.format(data="blobs(classes=2) as {t: y}")) == []  # its dtype: loading
    assert _errors(PERCEPTRON, train.format(data='csv("any.csv")')) == []


IMAGES = """model M {
  input %s: f32[N, 8, 8, 1]
  input %s: i32[N]
  logits = %s -> flatten -> dense(10)
  output logits
}"""


def test_a_metric_without_its_arguments_is_one_error() -> None:
    """`metrics = [accuracy]` (the docs list metrics by name) lacks both tensors: one slip, reported twice at the
    same span ('needs argument logits', 'needs argument labels'); now once, naming both."""
    train = "train {\n  data = digits()\n  loss = cross_entropy(logits, y)\n  metrics = [%s]\n}"
    assert _errors(IMAGES % ("x", "y", "x"), train % "accuracy") == [
        (
            "argument error",
            10,
            14,
            "accuracy needs arguments 'logits' and 'labels' | hint: usage: accuracy(logits, labels)",
        )
    ]
    [(_, _, _, text)] = _errors(IMAGES % ("x", "y", "x"), train % "top_k_accuracy(logits)")
    assert text.startswith("top_k_accuracy needs argument 'labels' | ")


def test_a_rename_of_fields_the_data_set_yields_under_other_names_says_which_order_as_takes() -> None:
    """LANGUAGE.md's `mnist(path) as {x: image, y: label}` names fields that the image sets (x, y) do not have: the
    hint said 'available fields: x, y; rename with as {...}', which the reader had just done. Now it says that x is
    read without renaming; and `as {x: image}` for a model input `image` (FIELD: INPUT) is one error, at the `as`,
    saying INPUT comes first (it was that error with 'inputs: image, label' and a data error for each input)."""
    train = "train {\n  data = digits(image=true) as {%s}\n  loss = cross_entropy(logits, %s)\n}"
    errors = _errors(IMAGES % ("x", "y", "x"), train % ("x: image, y: label", "y"))
    assert [(kind, line, col) for kind, line, col, _ in errors] == [("data error", 8, 3)] * 2
    assert errors[0][3] == (
        "the data has no field 'image' for input x: f32[N, 8, 8, 1] | hint: digits yields 'x' itself, which input x "
        "reads without renaming: drop `x: image` from `as {...}`, which maps INPUT: FIELD (digits yields x, y)"
    )
    errors = _errors(IMAGES % ("image", "label", "image"), train % ("x: image, y: label", "label"))
    assert [text for _, _, _, text in errors] == [
        "`as {x: ...}` names no input of the model | hint: `as {...}` maps INPUT: FIELD, the model's input first: "
        "write `image: x`",
        "`as {y: ...}` names no input of the model | hint: `as {...}` maps INPUT: FIELD, the model's input first: "
        "write `label: y`",
    ]
    assert _errors(IMAGES % ("image", "label", "image"), train % ("image: x, label: y", "label")) == []


@pytest.mark.parametrize(
    ("optimizer", "col"),
    [("sgd(lr=0.1, nesterov=true)", 36), ("sgd(lr=0.1, momentum=0, nesterov=true)", 48)],
)
def test_nesterov_without_momentum_is_an_argument_error(optimizer: str, col: int) -> None:
    """optax.sgd(lr, None, nesterov=True) is plain SGD: nesterov=true was dropped silently (PyTorch refuses it)."""
    train = f"train {{\n  data = moons()\n  loss = cross_entropy(k, y)\n  optimizer = {optimizer}\n}}"
    [(kind, line, c, text)] = _errors(BINARY, train)
    assert (kind, line, c) == ("argument error", 12, col)
    assert text.startswith("sgd: nesterov=true needs a momentum; with momentum 0 it would be plain SGD")
    assert (
        _errors(BINARY, train.replace("nesterov", "momentum=0.9, nesterov").replace("momentum=0, ", "")) == []
    )


@pytest.mark.parametrize(
    ("early_stop", "col", "words"),
    [
        ("early_stop(val_loss, patience=-1)", 46, "argument 'patience' must be at least 0, got -1"),
        ("early_stop(val_loss, min_delta=-0.5)", 47, "argument 'min_delta' must be at least 0, got -0.5"),
    ],
)
def test_a_negative_patience_or_min_delta_is_an_argument_error(early_stop: str, col: int, words: str) -> None:
    """patience=-1 stopped after the first epoch and min_delta=-0.5 counted worse epochs as better (the run never
    stopped), both without a word."""
    train = f"train {{\n  data = moons()\n  loss = cross_entropy(k, y)\n  early_stop = {early_stop}\n}}"
    [(kind, line, c, text)] = _errors(BINARY, train)
    assert (kind, line, c) == ("argument error", 12, col), text
    assert text.startswith(f"early_stop: {words}")
    assert _errors(BINARY, train.replace("=-1", "=0").replace("=-0.5", "=0")) == []


def test_a_data_option_given_twice_is_an_argument_error() -> None:
    """`data = moons(n=100, n=200)` took the last one silently."""
    train = "train {\n  data = moons(n=100, n=200)\n  loss = cross_entropy(k, y)\n}"
    [(kind, line, col, text)] = _errors(BINARY, train)
    assert (kind, line, col) == ("argument error", 10, 23), text
    assert text.startswith("moons: option 'n' given twice")


def test_a_drawn_input_that_the_data_also_yields_is_a_data_error() -> None:
    """`input x: f32[N, 64] = normal()` (a GAN's `= normal()` copied onto the images): the discriminator trained
    on noise and the data's x was never read, silently."""
    model = (
        "model G {\n  input x: f32[N, 64] = normal()\n  input y: i32[N]\n  k = x -> dense(10)\n  output k\n}"
    )
    train = "train {\n  data = digits()\n  loss = cross_entropy(k, y)\n}"
    [(kind, line, col, text)] = _errors(model, train)
    assert (kind, line, col) == ("data error", 2, 3), text
    assert text.startswith(
        "input x is drawn by the trainer, but digits yields a field 'x', which would never be read"
    )
    assert _errors(model.replace("input x", "input z").replace("= x ->", "= z ->"), train) == []


@pytest.mark.parametrize(
    ("entry", "col", "words"),
    [
        (
            'checkpoint = checkpoint(dir="../escape")',
            27,
            'value error: checkpoint: dir "../escape" leaves the run',
        ),
        (
            'checkpoint = checkpoint(dir="/tmp/x")',
            27,
            'value error: checkpoint: dir "/tmp/x" is not inside the run',
        ),
        (
            'checkpoint = checkpoint(2, "best")',
            30,
            'value error: checkpoint: dir "best" collides with the run\'s own',
        ),
        (
            'checkpoint = checkpoint(dir="spec")',
            27,
            'value error: checkpoint: dir "spec" collides with the run\'s own',
        ),
        ("early_stop = early_stop(val_acc, 3)", 27, "name error: early_stop: no metric 'val_acc'"),
        (
            "early_stop = early_stop(patience=3, metric=val_acc)",
            39,
            "name error: early_stop: no metric 'val_acc'",
        ),
    ],
)
def test_a_wrong_checkpoint_dir_or_early_stop_metric_is_located_at_the_argument(
    entry: str, col: int, words: str
) -> None:
    train = f"train {{\n  data = moons()\n  loss = cross_entropy(k, y)\n  {entry}\n}}"
    [(kind, line, c, text)] = _errors(BINARY, train)
    assert (line, c) == (12, col), text
    assert f"{kind}: {text}".startswith(words)


def test_a_field_renamed_by_as_is_named_as_the_datas_field_with_the_mapping_in_the_hint(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "a.net"
    spec.write_text(
        "model M {\n  input x: f32[N, 64]\n  input y: i32[N]\n  logits = x -> dense(10)\n  output logits\n}\n"
        "train {\n  data = digits(split=0.8) as {x: y, y: x}\n  loss = cross_entropy(logits, y)\n}\n"
    )
    r = CliRunner().invoke(main, ["train", str(spec), "--epochs", "1", "-o", str(tmp_path / "run")])
    assert r.exit_code == 1, r.output
    lines = r.stderr.split("\n")
    assert lines[0] == (
        f"{spec}:8:3: data error: the data's field 'y', fed to x by `as {{...}}`, is i32 (int) but input x is "
        "f32[N, 64] (float)"
    )
    assert lines[3] == (
        "hint: check the mapping: `as {x: y}` feeds the data's 'y' to input x (it maps INPUT: FIELD); or declare "
        "`input x: i32[N]` to match the data"
    )
