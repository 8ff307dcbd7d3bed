"""Inputs the fuzzer (tests/fuzz.py) or a teammate found, each now a located error or a clean check.

Positions are asserted as the user sees them (`file:line:col: kind: message`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import specc
from specc.errors import Diagnostic, SpecError
from specc.train.spec import check_spec

MODEL = """model M {
  input x: f32[N, 4]
  input y: i32[N]
  h = x -> dense(3)
  output h
}
"""


def train_errors(*lines: str, lets: str = "") -> list[str]:
    """`file:line:col: kind: message` of every error `specc check` reports for MODEL and a train section."""
    body = "".join(f"  {line}\n" for line in lines)
    text = f"{lets}{MODEL}train {{\n  data = digits\n  loss = cross_entropy(h, y)\n{body}}}\n"
    try:
        check_spec(specc.load("a.net", text=text))
    except SpecError as e:
        e.render()
        return [f"{d.span}: {d.kind}: {d.message}" for d in e.diagnostics]
    return []


def _first_model_error(text: str) -> tuple[Diagnostic, str]:
    """The first problem building the model of `text` (as a.net) finds, and the whole report as shown."""
    with pytest.raises(SpecError) as e:
        specc.load("a.net", text=text).graph()
    return e.value.diagnostics[0], e.value.render()


# ---- literal arithmetic in the train section stays within int64/float64 ------------------------------------


def test_a_learning_rate_of_10_to_the_400_is_a_located_error() -> None:
    assert train_errors("optimizer = sgd(lr=10**400)") == [
        "a.net:10:22: value error: the value of 10 ** 400 is out of range"
    ]


def test_a_tower_of_powers_is_refused_before_it_is_computed() -> None:
    # 2**10**10 would take minutes and gigabytes to compute, only to be refused
    assert train_errors("seed = 2**10**10") == [
        "a.net:10:10: value error: seed must be an integer from 0 to 2**32 - 1, got 2 ** 10 ** 10"
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("seed = 2**70", "seed must be an integer from 0 to 2**32 - 1, got 2 ** 70"),
        ("seed = 4294967296", "seed must be an integer from 0 to 2**32 - 1, got 4294967296"),
        ("batch = 10**30", "batch must be an integer from 1 to 2**31 - 1, got 10 ** 30"),
        ("batch = 2**31", "batch must be an integer from 1 to 2**31 - 1, got 2147483648"),
        ("epochs = 2**63", "epochs must be an integer from 0 to 1,000,000, got 2 ** 63"),
        ("epochs = 2**62", "epochs must be an integer from 0 to 1,000,000, got 4611686018427387904"),
    ],
)
def test_loop_integers_have_upper_bounds_stated_in_the_message(line: str, message: str) -> None:
    key = line.split()[0]
    assert train_errors(line) == [f"a.net:10:{len(key) + 6}: value error: {message}"]


def test_the_largest_seed_checks() -> None:
    assert train_errors("seed = 4294967295", "batch = 2147483647", "epochs = 1000000") == []


@pytest.mark.parametrize(
    "lets, line, where",
    [
        ("", "loss = 10**400 * cross_entropy(h, y)", "a.net:8:10"),
        ("", "data = digits(split=2.0**2000)", "a.net:8:23"),
        ("let big = 1e308 * 10\n", "optimizer = sgd(lr=big)", "a.net:1:11"),
        ("let big = 2**62 * 4\n", "optimizer = sgd(lr=big)", "a.net:1:11"),
    ],
)
def test_out_of_range_arithmetic_is_located_where_it_is_computed(lets: str, line: str, where: str) -> None:
    key = line.split()[0]
    rest = "".join(
        f"  {k}\n" for k in ("loss = cross_entropy(h, y)", "data = digits") if not k.startswith(key)
    )
    text = f"{lets}{MODEL}train {{\n  {line}\n{rest}}}\n"
    with pytest.raises(SpecError) as e:
        check_spec(specc.load("a.net", text=text))
    first = e.value.diagnostics[0]
    assert f"{first.span}: {first.message}".startswith(where + ": the value of")


def test_a_complex_power_is_not_a_number() -> None:
    errors = train_errors("optimizer = sgd(lr=(-8.0)**0.5)")
    assert errors == ["a.net:10:22: value error: the value of (-8.0) ** 0.5 is not a real number"]


# ---- fmt keeps the meaning of negative literals -------------------------------------------------------------


@pytest.mark.parametrize("text", ["(-2) ** 2", "(-8.0) ** 0.5", "(-2)[0]", "2 ** -1", "a - -2"])
def test_fmt_parenthesises_a_negative_literal_before_a_power_or_subscript(text: str) -> None:
    from specc.frontend.fmt import format_expr
    from specc.frontend.parse import parse_expr

    # -2 ** 2 is -(2 ** 2): printing (-2) ** 2 without its parentheses would change the value
    assert format_expr(parse_expr(text)) == text


# ---- --seed, --epochs, --batch, --data: errors show the option as typed ---------------------------------------


@pytest.mark.parametrize(
    "flag, value, first_lines",
    [
        (
            "seed",
            2**70,
            [
                "--seed:1:8: value error: seed must be an integer from 0 to 2**32 - 1, got 1180591620717411303424",
                " 1 | --seed 1180591620717411303424",
                "   |        ^^^^^^^^^^^^^^^^^^^^^^",
            ],
        ),
        (
            "seed",
            2**32,
            ["--seed:1:8: value error: seed must be an integer from 0 to 2**32 - 1, got 4294967296"],
        ),
        (
            "epochs",
            10**7,
            ["--epochs:1:10: value error: epochs must be an integer from 0 to 1,000,000, got 10000000"],
        ),
        (
            "batch",
            2**31,
            ["--batch:1:9: value error: batch must be an integer from 1 to 2**31 - 1, got 2147483648"],
        ),
        (
            "data",
            "nope(",
            ["--data:1:12: syntax error: missing ')' to close the call to nope opened at 1:12"],
        ),
    ],
)
def test_train_flags_show_what_was_typed(
    tmp_path: Path, flag: str, value: object, first_lines: list[str]
) -> None:
    from specc.train.cli import train_command

    f = tmp_path / "a.net"
    f.write_text(f"{MODEL}train {{\n  data = digits\n  loss = cross_entropy(h, y)\n}}\n")
    with pytest.raises(SpecError) as e:
        train_command(f, **{flag: value}, out_dir=tmp_path / "run", verbose=False)
    assert e.value.render().split("\n")[: len(first_lines)] == first_lines
    assert not (tmp_path / "run").exists()


# ---- number arithmetic in a model stays within int64/float64 (else JAX overflows in compile: exit 3) ----------


@pytest.mark.parametrize(
    "expr, where, message",
    [
        ("x * 2**64", "a.net:3:11", "the value of 2 ** 64 is out of range"),
        ("x * (2**62 * 4)", "a.net:3:12", "the value of 2 ** 62 * 4 is out of range"),
        ("x + 10**30", "a.net:3:11", "the value of 10 ** 30 is out of range"),
        ("x * (-8.0)**0.5", "a.net:3:11", "the value of (-8.0) ** 0.5 is not a real number"),
        ("x ** 1e308 ** 10", "a.net:3:12", "the value of 1e308 ** 10 overflows the float range"),
    ],
)
def test_model_arithmetic_out_of_int64_is_located_at_check_time(expr: str, where: str, message: str) -> None:
    d, shown = _first_model_error(f"model M {{\n  input x: f32[N, 4]\n  h = {expr}\n  output h\n}}\n")
    assert str(d.span) == where and d.kind == "value error" and message in d.message, shown


def test_model_arithmetic_within_range_still_checks() -> None:
    text = "model M {\n  input x: f32[N, 4]\n  h = x * 2**-3 + 2**62 + 2.0**70\n  output h\n}\n"
    specc.load("a.net", text=text).graph()


# ---- an undefined name where a tensor may stand ------------------------------------------------------------


@pytest.mark.parametrize(
    "line, where, message",
    [
        # the fuzzer's case: `sample_normal(mu, \n)` — one tensor and no other argument was an IndexError (exit 3)
        (
            "z = sample_normal(x, \n)",
            "a.net:4:7",
            "argument error: sample_normal takes 2 tensor input(s), got 1",
        ),
        (
            "z = sample_normal(x, )",
            "a.net:4:7",
            "argument error: sample_normal takes 2 tensor input(s), got 1",
        ),
        # a misspelt tensor after the first: was "takes 2 tensor inputs", "'axis' must be an integer axis", or
        # "got 'axis' twice"; it is the name that is wrong
        ("z = sample_normal(mu, lv)", "a.net:4:25", "name error: 'lv' is not defined"),
        ("z = sample_normal(q, x)", "a.net:4:21", "name error: 'q' is not defined"),
        ("z = concat(x, mu2)", "a.net:4:17", "name error: 'mu2' is not defined; did you mean 'mu'?"),
        ("z = concat(x, hh, axis=-1)", "a.net:4:17", "name error: 'hh' is not defined"),
        ("z = x -> concat(q)", "a.net:4:19", "name error: 'q' is not defined"),
        ("z = maximum(x, a0)", "a.net:4:18", "name error: 'a0' is not defined"),
    ],
)
def test_an_undefined_name_among_tensors_is_a_name_error(line: str, where: str, message: str) -> None:
    d, shown = _first_model_error(
        f"model M {{\n  input x: f32[N, 4]\n  input mu: f32[N, 4]\n  {line}\n  output z\n}}\n"
    )
    assert f"{d.span}: {d.kind}: {d.message}".startswith(f"{where}: {message}"), shown


@pytest.mark.parametrize(
    "line", ["z = concat(x, mu, axis=-1)", "z = concat(x, mu, 1)", "z = maximum(x, 0.5)"]
)
def test_defined_arguments_among_tensors_still_check(line: str) -> None:
    text = f"model M {{\n  input x: f32[N, 4]\n  input mu: f32[N, 4]\n  {line}\n  output z\n}}\n"
    specc.load("a.net", text=text).graph()


# ---- a whole number beside a tensor: it takes the tensor's dtype ----------------------------------------------


def test_a_large_whole_number_times_a_float_tensor_computes() -> None:
    """The fuzzer's `10**18 * x`: checked, then JAX refused the int (OverflowError, exit 3); it is a float."""
    import jax.numpy as jnp
    import numpy as np

    from specc.backend.flax import build_module

    text = "model M {\n  input x: f32[N, 4]\n  h = 10**18 * x - 2**40\n  output h\n}\n"
    model = build_module(specc.load("a.net", text=text).graph(), seed=0)
    x = np.full((2, 4), 0.5, np.float32)
    np.testing.assert_allclose(np.asarray(model(x=jnp.asarray(x))["h"]), 5e17 - 2**40, rtol=1e-6)


@pytest.mark.parametrize(
    "expr, message",
    [
        ("k + 2**40", "the number 1099511627776 does not fit in i32 (-2147483648 to 2147483647)"),
        ("-(2**31) - 1 + k", "the number -2147483649 does not fit in i32"),
        ("b * 2**31", "the number 2147483648 does not fit in i32"),  # a bool tensor times a number is i32
    ],
)
def test_a_whole_number_too_large_for_an_int_tensor_is_located(expr: str, message: str) -> None:
    d, shown = _first_model_error(
        f"model M {{\n  input k: i32[N, 4]\n  input b: bool[N, 4]\n  h = {expr}\n  output h\n}}\n"
    )
    assert d.kind == "value error" and d.span.line == 4 and message in d.message, shown


def test_whole_numbers_that_fit_an_int_tensor_check() -> None:
    text = "model M {\n  input k: i32[N, 4]\n  h = k * (2**31 - 1) + (-(2**31))\n  output h\n}\n"
    specc.load("a.net", text=text).graph()


def test_an_embedding_beyond_i32_ids_is_a_located_error() -> None:
    """The fuzzer's `embed(2147483648, 32)`: checked, then JAX refused the bound of the ids (OverflowError, exit 3)
    when compiled; an i32 token id names at most 2**31 - 1 rows."""
    text = "model M {{\n  input t: i32[N, 5]\n  e = t -> embed({}, 2)\n  output e\n}}\n"
    d, shown = _first_model_error(text.format(2**31))
    assert (str(d.span), d.kind) == ("a.net:3:12", "value error") and "more ids than an i32" in d.message, (
        shown
    )
    specc.load("a.net", text=text.format(2**31 - 1)).graph()  # the largest that i32 ids can name still checks
