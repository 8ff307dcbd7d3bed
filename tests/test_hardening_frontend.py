"""Hostile input to the front ends (issue 8): every mistake is a located error (exit 1), never a crash or a hang.

Each test names the input a fuzzer found; positions are asserted exactly, as the user sees them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import main
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]
MLP = (ROOT / "specs" / "mlp.net").read_text(encoding="utf-8")
BIG = "1" * 4400  # past Python's int max str digits (4,300)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages then name files as written: `a.net:3:4`


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return r.exit_code, r.stdout, r.stderr


def write(name: str, text: str) -> str:
    Path(name).write_text(text, encoding="utf-8")
    return name


def mlp_with(old: str, new: str) -> str:
    assert old in MLP
    return MLP.replace(old, new)


# ---- numbers out of range -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [["check"], ["fmt", "--check"], ["convert", "--to", "yaml"]])
def test_an_integer_of_4400_digits_is_a_located_error(command: list[str]) -> None:
    f = write("a.net", mlp_with("dense(100)", f"dense({BIG})"))
    code, _, err = invoke(command[0], f, *command[1:])
    assert code == 1
    assert err.startswith(
        "a.net:6:23: value error: the number 111111111111...111111 (4400 characters) is out of range"
    )
    assert "2**63 - 1 (9223372036854775807)" in err


@pytest.mark.parametrize("key", ["batch", "epochs", "seed", "optimizer"])
def test_400_digit_train_values_are_located_errors(key: str) -> None:
    old = {"batch": "= 64", "epochs": "= 20", "seed": "= 0", "optimizer": "lr=0.1"}[key]
    line = {"batch": 15, "epochs": 16, "seed": 18, "optimizer": 14}[key]
    text = "\n".join(
        ln.replace(old, old.replace(old.split("=")[1].strip(), "9" * 400))
        if ln.strip().startswith(key)
        else ln
        for ln in MLP.split("\n")
    )
    f = write("a.net", text)
    col = text.split("\n")[line - 1].index("9" * 400) + 1
    code, _, err = invoke("check", f)
    assert code == 1
    assert err.startswith(
        f"a.net:{line}:{col}: value error: the number 999999999999...999999 (400 characters)"
    )


def test_an_infinite_float_literal_is_a_located_error() -> None:
    code, _, err = invoke("check", write("a.net", mlp_with("lr=0.1", "lr=1e999")))
    assert code == 1
    assert err.startswith("a.net:14:22: value error: the number 1e999 is out of range")


def test_a_seed_of_2_to_the_70_is_a_located_error_stating_the_range() -> None:
    from specc.train.spec import parse_override

    with pytest.raises(SpecError) as e:
        parse_override(f"seed={2**70}", name="--seed")
    assert e.value.render().split("\n")[0] == (
        "--seed:1:6: value error: the number 1180591620717411303424 is out of range"
    )
    assert "between -2**63 and 2**63 - 1" in e.value.render()


def test_a_huge_bind_size_is_a_usage_error() -> None:
    code, _, err = invoke("compile", write("a.net", MLP), "--bind", f"T={BIG}")
    assert code == 2
    assert "--bind" in err


# ---- digits of other scripts -----------------------------------------------------------------------------


@pytest.mark.parametrize("digits", ["\uff11\uff10", "\u0661\u0660"])  # full-width 10, Arabic-Indic 10
def test_non_ascii_digits_are_not_read_as_numbers(digits: str) -> None:
    code, _, err = invoke("check", write("a.net", mlp_with("dense(10)", f"dense({digits})")))
    assert code == 1
    lines = err.split("\n")
    assert lines[0] == f"a.net:7:23: syntax error: unexpected character '{digits[0]}'"
    assert lines[-2] == "hint: write numbers with the ASCII digits 0-9: 10"


# ---- --set ---------------------------------------------------------------------------------------------------


def _set_error(*overrides: str) -> str:
    import specc
    from specc.train.spec import build_config

    spec = specc.load(write("a.net", MLP))
    with pytest.raises(SpecError) as e:
        build_config(spec, spec.graph(), list(overrides))
    return e.value.render()


def test_set_value_errors_point_into_the_set_text_as_typed() -> None:
    err = _set_error("epochs=abc")
    assert err.split("\n")[:3] == [
        "--set:1:8: value error: epochs must be an integer",
        " 1 | epochs=abc",
        "   |        ^^^",
    ]
    err = _set_error("loss=mse(nope, y)")
    assert err.split("\n")[:3] == [
        "--set:1:10: name error: mse: 'nope' is not a value of the model",
        " 1 | loss=mse(nope, y)",
        "   |          ^^^^",
    ]


def test_set_syntax_error_shows_the_users_text_not_a_wrapper() -> None:
    err = _set_error("optimizer=sgd(lr=0.1")
    assert err.split("\n")[:3] == [
        "--set:1:14: syntax error: missing ')' to close the call to sgd opened at 1:14",
        " 1 | optimizer=sgd(lr=0.1",
        "   |              ^",
    ]
    assert "train{" not in err


@pytest.mark.parametrize("text", ["epochs=1\nbatch=0", "epochs=1;batch=0"])
def test_one_key_value_per_set(text: str) -> None:
    err = _set_error(text)
    assert err.split("\n")[0] == (
        "--set:1:9: argument error: one KEY=VALUE per --set; this one holds a second statement"
    )


def test_a_semicolon_inside_a_string_and_a_trailing_newline_are_fine() -> None:
    from specc.train.spec import parse_override

    assert parse_override('data=mnist("a;b")').value.args[0].value == "a;b"  # type: ignore[attr-defined]
    assert parse_override("epochs=3\n").value.value == 3  # type: ignore[attr-defined]
