"""Hostile input to the front ends (issue 8): every mistake is a located error (exit 1), never a crash or a hang.

Each test names the input a fuzzer found; positions are asserted exactly, as the user sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        (
            "early_stop(metric=loss, patience=1)",
            "hint: to set a call, name its key: --set early_stop=early_stop(metric=loss, patience=1)",
        ),
        ("optimizer..lr=1", "hint: e.g. --set optimizer.lr=0.01 or --set epochs=3"),
    ],
)
def test_a_set_key_that_is_no_name_is_refused_at_the_key(text: str, hint: str) -> None:
    # the '=' inside a call split it, and the parser reported a ',' in the rest as a syntax error
    key = text.partition("=")[0]
    err = _set_error(text)
    assert err.split("\n")[:4] == [
        f"--set:1:1: argument error: --set wants KEY=VALUE with KEY a train key, a constant or KEY.ARGUMENT; "
        f"got the key '{key}'",
        f" 1 | {text}",
        "   | " + "^" * len(key),
        hint,
    ]


def test_a_semicolon_inside_a_string_and_a_trailing_newline_are_fine() -> None:
    from specc.train.spec import parse_override

    assert parse_override('data=mnist("a;b")').value.args[0].value == "a;b"  # type: ignore[attr-defined]
    assert parse_override("epochs=3\n").value.value == 3  # type: ignore[attr-defined]


# ---- YAML ------------------------------------------------------------------------------------------------------

YAML_HEAD = (
    'models:\n  M:\n    inputs: {x: "f32[N, 4]"}\n    layers:\n      - {name: h, op: dense, features: 3}\n'
)


def check_json(f: str) -> dict[str, object]:
    """The first error of `specc check --json`: it must still be JSON, with a position."""
    code, out, _ = invoke("check", "--json", f)
    assert code == 1
    (first, *_) = json.loads(out)["errors"]
    return first  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("text", "line", "col", "message"),
    [
        ("let:\n  a: !!int y\n", 2, 6, "'y' is not a valid !!int"),
        ("let:\n  a: !!float abc\n", 2, 6, "'abc' is not a valid !!float"),
        ("let:\n  a: !!bool abc\n", 2, 6, "'abc' is not a valid !!bool"),
        ("let:\n  a: !!seq abc\n", 2, 6, "YAML tag '!!seq' does not fit a scalar"),
        ("let:\n  a: !!int [1]\n", 2, 6, "YAML tag '!!int' does not fit a list"),
        (f"let:\n  a: {BIG}\n", 2, 6, "the number 111111111111...111111 (4400 characters) is out of range"),
        (
            "let:\n  a: 0x" + "f" * 400 + "\n",
            2,
            6,
            "the number 0xffffffffff...ffffff (402 characters) is out of range",
        ),
        ("let:\n  a: 9223372036854775808\n", 2, 6, "the number 9223372036854775808 is out of range"),
        ("let:\n  a: 1.0e+999\n", 2, 6, "the number 1.0e+999 is out of range"),
        ("let:\n  a: .nan\n", 2, 6, "the number .nan is out of range"),
    ],
)
def test_yaml_scalars_that_do_not_construct_are_located(text: str, line: int, col: int, message: str) -> None:
    code, _, err = invoke("check", write("a.yaml", text))
    assert code == 1
    assert err.split("\n")[0] == f"a.yaml:{line}:{col}: value error: {message}"


def test_yaml_train_values_of_400_digits_are_located() -> None:
    f = write("a.yaml", YAML_HEAD + "    outputs: h\ntrain:\n  batch: " + "9" * 400 + "\n")
    assert check_json(f)["line"] == 8 and check_json(f)["col"] == 10


def test_yaml_nested_too_deeply_is_located_and_json() -> None:
    f = write("a.yaml", "models:\n  M: " + "[" * 300 + "]" * 300 + "\n")
    e = check_json(f)
    assert (e["line"], e["col"], e["kind"]) == (2, 104, "value error")
    assert e["message"] == "the document is nested more than 100 levels deep"
    nested = "models:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(150))
    e = check_json(write("b.yaml", nested))
    assert (e["line"], e["col"]) == (100, 199)


def test_yaml_recursive_alias_is_located_and_json() -> None:
    e = check_json(write("a.yaml", "models:\n  M: &a\n    layers: [*a]\n"))
    assert (e["line"], e["col"]) == (3, 14)
    assert e["message"] == "the alias *a refers to the node that contains it (a recursive alias)"


def test_alias_bomb_stops_at_the_alias_that_crosses_the_cap() -> None:
    """Rejected while composing, from node sizes, before anything is expanded (no timing: the position shows it)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    e = check_json(write("a.yaml", "let:\n" + "".join(f"  {ln}\n" for ln in lines)))
    # a5 stands for 10**6 nodes, the first over 200,000; a6..a9 (10**10 nodes) are never looked at
    assert (e["line"], e["col"]) == (7, 7)
    assert e["message"] == "the document expands to more than 200,000 YAML nodes"


def test_alias_expansion_counts_shared_nodes_once_per_use() -> None:
    from specc.frontend import yaml_frontend

    text = "a: &a [1, 2, 3]\nb: [*a, *a]\n"
    loader = yaml_frontend._BoundedLoader(yaml_frontend.Source("a.yaml", text))
    root = loader.get_single_node()
    assert loader.sizes[id(root)] == 1 + (1 + 4) + (1 + 1 + 4 + 4)  # the root, a: [..], b: [*a, *a]


@pytest.mark.parametrize(("char", "col"), [("\x0b", 24), ("\x1b", 24), ("\ufffe", 24)])
def test_yaml_unacceptable_characters_are_located(char: str, col: int) -> None:
    f = write("a.yaml", f'models:\n  M:\n    inputs: {{x: "f32[N,{char} 4]"}}\n')
    code, _, err = invoke("check", f)
    assert code == 1
    assert (
        err.split("\n")[0]
        == f"a.yaml:3:{col}: syntax error: YAML does not allow the character U+{ord(char):04X}"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("some text here", "unknown train key 'bogus'"),
        ('"a b"', "unknown train key 'bogus'"),
    ],
)
def test_unknown_yaml_train_key_with_a_string_value_is_a_name_error_at_the_key(
    value: str, message: str
) -> None:
    f = write("a.yaml", YAML_HEAD + f"    outputs: h\ntrain:\n  data: digits()\n  bogus: {value}\n")
    code, _, err = invoke("check", f)
    assert code == 1
    lines = err.split("\n")
    assert lines[0] == f"a.yaml:9:3: name error: {message}"
    assert lines[-2].startswith("hint: train keys: data, loss, optimizer")


def test_unknown_yaml_train_key_gets_did_you_mean() -> None:
    f = write("a.yaml", YAML_HEAD + "    outputs: h\ntrain:\n  optimiser: sgd(lr=0.1\n")
    code, _, err = invoke("check", f)
    assert code == 1
    assert (
        err.split("\n")[0]
        == "a.yaml:8:3: name error: unknown train key 'optimiser'; did you mean 'optimizer'?"
    )


# ---- convert ---------------------------------------------------------------------------------------------------


DUP = "model M {\n  input x: f32[N, 4]\n  input x: f32[N, 5]\n  h = x -> dense(3)\n  output h\n}\n"


@pytest.mark.parametrize(
    ("text", "line", "col", "what"),
    [
        (DUP, 3, 3, "input 'x' is defined twice (first at 2:3)"),
        (
            DUP.replace("input x: f32[N, 5]", "let k = 1\n  let k = 2"),
            4,
            3,
            "constant 'k' is defined twice (first at 3:3)",
        ),
        (
            DUP.replace("input x: f32[N, 5]\n", "") + DUP.replace("input x: f32[N, 5]\n", ""),
            6,
            1,
            "model 'M' is defined twice (first at 1:1)",
        ),
        (
            "block B(c, c) {\n  input x\n  output x\n}\n",
            1,
            12,
            "block argument 'c' is defined twice (first at 1:9)",
        ),
    ],
)
def test_convert_to_yaml_refuses_a_duplicate_it_would_drop(text: str, line: int, col: int, what: str) -> None:
    code, out, err = invoke("convert", write("a.net", text), "--to", "yaml")
    assert code == 1 and out == ""
    assert err.split("\n")[0] == f"a.net:{line}:{col}: value error: cannot convert to YAML: {what}"


def test_yaml_duplicate_inputs_are_errors_like_in_net() -> None:
    f = write("a.yaml", "models:\n  M:\n    inputs: {x: 'f32[N, 4]', x: 'f32[N, 5]'}\n    outputs: x\n")
    code, _, err = invoke("check", f)
    assert code == 1
    assert err.split("\n")[0] == "a.yaml:3:30: value error: duplicate key 'x' (first at 3:14)"
    f = write("b.yaml", "models:\n  M:\n    inputs: [x, x]\n    outputs: x\n")
    code, _, err = invoke("check", f)
    assert code == 1
    assert "b.yaml:3:17: name error: 'x' is already defined (at 3:14)" in err.split("\n")


HOSTILE = (
    "# title\rnot: yaml\v \u2028next: line\x85and \u2029more\n"
    "model M {\n"
    "  input x: f32[N, 4]\n"
    "  h = x -> dense(3)   # trailing \r comment\n"
    "  output h\n"
    "}\n"
    "train {\n"
    '  data = csv("a\x85b\u2028c\u2029d\x0be")\n'
    "  loss = mse(h, x)\n"
    "  optimizer = sgd(lr=0.1)\n"
    "}\n"
)


def test_convert_escapes_what_yaml_reads_as_line_breaks_or_refuses() -> None:
    Path("a.net").write_bytes(HOSTILE.encode())
    code, out, err = invoke("convert", "a.net", "--to", "yaml")
    assert code == 0, err
    assert out.startswith("# title\n# not: yaml\\u000b \n# next: line\n# and \n# more\n\nmodels:")
    Path("a.yaml").write_bytes(out.encode())
    from specc.frontend.load import parse_any, read_source

    assert parse_any(read_source(Path("a.yaml"))) == parse_any(read_source(Path("a.net")))


def test_convert_to_net_of_broken_yaml_shows_the_line() -> None:
    f = write("a.yaml", 'models:\n  M:\n    inputs: {x: "f32[N, 4]"\n    layers: []\n')
    code, _, err = invoke("convert", f, "--to", "net")
    assert code == 1
    assert err.split("\n")[:3] == [
        "a.yaml:4:5: syntax error: missing '}' to close the mapping opened at 3:13",
        " 4 |     layers: []",
        "   |     ^",
    ]


SPECS = sorted((ROOT / "specs").glob("*.net"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_convert_of_a_valid_spec_checks_to_the_same_ir(path: Path, ir_dumps) -> None:  # type: ignore[no-untyped-def]
    from specc.frontend.convert import convert_file

    want = ir_dumps(path)
    assert isinstance(want, dict), want
    yaml_text = convert_file(path, "yaml")
    assert ir_dumps(path.with_suffix(".yaml"), yaml_text) == want
    twin = Path(path.stem + ".yaml")
    twin.write_text(yaml_text, encoding="utf-8")
    assert ir_dumps(path, convert_file(twin, "net")) == want


def test_convert_of_mutated_specs_is_as_valid_as_the_original(ir_dumps) -> None:  # type: ignore[no-untyped-def]
    """A small seeded fuzz: a mutant that converts checks to the same IR, or to the same errors."""
    import random
    import re

    from specc.frontend.convert import convert_file

    rng = random.Random(8)
    pieces = [
        "(",
        ")",
        "[",
        "]",
        ",",
        "->",
        "=",
        "x",
        "1",
        "-1",
        "2.5",
        "relu",
        "dense(3)",
        "\n",
        "#c\n",
        ":",
        "h",
    ]
    converted = 0
    for _ in range(40):
        text = MLP
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(len(text))
            if rng.random() < 0.5:
                text = text[:i] + text[i + rng.randint(1, 8) :]
            else:
                text = text[:i] + rng.choice(pieces) + text[i:]
        f = Path(write("m.net", text))
        try:
            yaml_text = convert_file(f, "yaml")
        except SpecError as e:
            assert all(d.span is not None for d in e.diagnostics)
            continue
        converted += 1
        a, b = ir_dumps(f), ir_dumps(f.with_suffix(".yaml"), yaml_text)
        if isinstance(a, list):  # the same errors; positions differ between the two files
            a, b = (sorted(re.sub(r"\d+:\d+", "L:C", m) for m in v) for v in (a, b))  # type: ignore[union-attr]
        assert a == b, text
    assert converted >= 10


# ---- the CLI ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["check"], ["convert", "--to", "yaml"], ["check", "--json"]])
def test_a_closed_output_pipe_ends_quietly(args: list[str]) -> None:
    """`specc check X | head -0`: the reader is gone before specc writes; no traceback, no internal error."""
    read, write_end = os.pipe()
    os.close(read)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "specc.cli", args[0], str(ROOT / "specs" / "mlp.net"), *args[1:]],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert r.stderr == ""
    assert r.returncode == 1  # click's own convention for EPIPE (as for `specc --help | head -0`)


def test_recursion_error_is_reported_as_json_too(monkeypatch: pytest.MonkeyPatch) -> None:
    import specc.spec

    def deep(*_: object, **__: object) -> None:
        raise RecursionError

    monkeypatch.setattr(specc.spec, "load", deep)
    code, out, _ = invoke("check", "--json", write("a.net", MLP))
    assert code == 1
    assert json.loads(out)["errors"][0]["message"] == "the spec is nested too deeply to process"


def test_set_of_4400_digits_is_located() -> None:
    err = _set_error(f"epochs={BIG}")
    assert err.split("\n")[0] == (
        "--set:1:8: value error: the number 111111111111...111111 (4400 characters) is out of range"
    )


def test_train_cli_reports_set_errors_before_training() -> None:
    """Through `specc train`: exit 2 (a usage error), the position in the --set text, nothing trained."""
    f = write("a.net", MLP)
    code, _, err = invoke("train", f, "--set", "epochs=abc", "--out", "run")
    assert code == 2
    assert not Path("run").exists()
    assert err.split("\n")[:2] == ["--set:1:8: value error: epochs must be an integer", " 1 | epochs=abc"]
    code, _, err = invoke("train", f, "--set", "epochs=1", "--set", "batch=1;epochs=2", "--out", "run")
    assert code == 2
    assert err.split("\n")[0] == (
        "--set[2]:1:8: argument error: one KEY=VALUE per --set; this one holds a second statement"
    )
    code, _, err = invoke("train", f, "--seed", "-1", "-o", "run")  # -o: --out's short form, as elsewhere
    assert code == 2 and err.startswith("--seed:1:8: value error: seed must be an integer of at least 0")
    # an override valid as an option but wrong for the spec is the spec's error, at its line: exit 1
    g = write(
        "w.net", MLP.replace("dense(100)", "dense(width)").replace("model MLP", "let width = 100\nmodel MLP")
    )
    code, _, err = invoke("train", g, "--set", "width=0", "-o", "run")
    assert code == 1 and err.startswith(
        "w.net:7:23: argument error: dense's 'features' must be at least 1, got 0"
    )
    assert not Path("run").exists()


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (
            ["--set", "optimizer.lr=0.1", "--set", "optimizer.lr=0.2"],
            "--set[2]:1:1: argument error: optimizer.lr is set twice: by `optimizer.lr=0.1` and here; only the "
            "last would count",
        ),
        (
            ["--set", "epochs=3", "--epochs", "1"],
            "--epochs:1:1: argument error: epochs is set twice: by `epochs=3` and here; only the last would count",
        ),
        (
            ["--set", "train.batch=8", "--set", "batch=16"],
            "--set[2]:1:1: argument error: batch is set twice: by `train.batch=8` and here; only the last would "
            "count",
        ),
        (
            ["--set", "optimizer.lr=0.1", "--set", "optimizer=sgd(0.5)"],
            "--set[2]:1:1: argument error: this replaces optimizer whole, so `optimizer.lr=0.1` before it would "
            "count for nothing",
        ),
    ],
)
def test_a_key_set_twice_on_the_command_line_is_a_usage_error(args: list[str], first: str) -> None:
    """The last of two values for one key won, silently (`--set epochs=3 --epochs 1` trained 1 epoch)."""
    f = write("a.net", MLP)
    code, _, err = invoke("train", f, *args, "--out", "run")
    assert code == 2, err
    assert err.split("\n")[0] == first
    assert not Path("run").exists()
    if "--epochs" not in args:  # check takes --set too
        code, _, err = invoke("check", f, *args)
        assert code == 2 and err.split("\n")[0] == first, err


def test_a_call_then_its_argument_and_a_constant_beside_its_train_key_are_fine() -> None:
    f = write("w.net", MLP.replace("model MLP", "let epochs = 2\nmodel MLP"))
    code, _, err = invoke(
        "check", f, "--set", "optimizer=sgd(0.5)", "--set", "optimizer.momentum=0.9", "--set", "epochs=3"
    )
    assert code == 0, err


def test_a_superscript_digit_hints_at_a_power() -> None:
    code, _, err = invoke("check", write("a.net", mlp_with("dense(100)", "dense(10\u2079)")))
    assert code == 1
    lines = err.split("\n")
    assert lines[0] == "a.net:6:25: syntax error: unexpected character '\u2079'"
    assert lines[-2] == "hint: write a power with '**': 10**9"


def test_a_whole_float_beyond_int64_is_not_an_integer_argument() -> None:
    """`dense(1e3)` means 1000, but `dense(1e300)` is no integer: it was taken as a 301-digit size and printed
    whole in a shape error."""
    code, _, err = invoke("check", write("a.net", mlp_with("dense(100)", "dense(1e300)")))
    assert code == 1
    assert err.startswith("a.net:6:23: argument error: dense's 'features' must be an integer, got 1e+300"), (
        err
    )
    code, _, err = invoke("check", write("b.net", mlp_with("dense(100)", "dense(1e2)")))
    assert code == 0, err
    code, _, err = invoke("check", write("c.net", mlp_with("digits(split=0.8)", "spirals(n=1e300)")))
    assert code == 1 and "'n' must be an integer" in err and len(err) < 1000, err


def test_a_file_of_classic_mac_line_ends_is_a_file_error(tmp_path: Path) -> None:
    """Lines ending in a lone \\r read as one line: a first comment swallowed the whole file ('defines no model'),
    or statements ran together ('expected =, found the name y'). A file error saying why; a file of one line
    ending in \\r\\n, and \\r\\n files, are fine."""
    lines = ["# a spec", "model M {", "  input x: f32[N, 4]", "  y = x -> dense(2)", "  output y", "}"]
    path = tmp_path / "mac.net"
    path.write_bytes("\r".join(lines).encode() + b"\r")
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 1, r.output
    assert (
        "mac.net:1:1: file error: the file's lines end in a carriage return alone (\\r, classic Mac OS)"
        in r.output
    )
    assert "hint: save it with \\n (or \\r\\n) line ends" in r.output
    path.write_bytes("\r\n".join(lines).encode() + b"\r\n")
    assert CliRunner().invoke(main, ["check", str(path)]).exit_code == 0
    (tmp_path / "one.net").write_bytes(b"let a = 3\r\n")
    path.write_text('import "one.net"\nmodel M {\n  input x: f32[N, 4]\n  y = x -> dense(a)\n  output y\n}\n')
    assert CliRunner().invoke(main, ["check", str(path)]).exit_code == 0


# ---- block calls and headers ----------------------------------------------------------------------------

UNIT = "block Unit(c, stride=1) {\n  input x: [N, F]\n  h = x -> dense(c) -> dense(stride)\n  output h\n}\n"


@pytest.mark.parametrize("call", ["x -> Unit(32, c=2, stride=3)", "Unit(x, 32, c=2)"])
def test_a_block_argument_given_by_position_and_by_name_is_refused_at_the_name(call: str) -> None:
    """The keyword replaced the positional value silently (features=2), where an op says it was given twice."""
    f = write("a.net", UNIT + f"model M {{\n  input x: f32[N, 64]\n  h = {call}\n  output h\n}}\n")
    code, _, err = invoke("check", f)
    assert code == 1
    col = 7 + call.index("c=")
    assert err.startswith(f"a.net:8:{col}: argument error: block Unit: argument 'c' given twice"), err
    assert "hint: give it once, by position or by name: Unit(c, stride)" in err


def test_a_named_instance_given_an_argument_twice_is_refused_at_the_name() -> None:
    f = write(
        "a.net", UNIT + "model M {\n  input x: f32[N, 64]\n  T = Unit(32, c=2)\n  h = x -> T\n  output h\n}\n"
    )
    code, _, err = invoke("check", f)
    assert code == 1
    assert err.startswith("a.net:8:16: argument error: block Unit: argument 'c' given twice"), err


BLOCK_TWO = "block Two(c, c) {\n  input x: [N, F]\n  h = x -> dense(c)\n  output h\n}\n"
YAML_TWO = (
    "blocks:\n  Two:\n    args: [c, c]\n    inputs: {x: '[N, F]'}\n"
    "    layers:\n      - {name: h, op: dense, features: c}\n    outputs: [h]\n"
    "models:\n  M:\n    inputs: {x: 'f32[N, 64]'}\n    layers:\n      - {name: h, expr: 'x -> Two(5, 7)'}\n"
    "    outputs: [h]\n"
)


@pytest.mark.parametrize(
    ("name", "text", "at", "first"),
    [
        (
            "a.net",
            BLOCK_TWO + "model M {\n  input x: f32[N, 64]\n  h = x -> Two(5, 7)\n  output h\n}\n",
            "1:14",
            "1:11",
        ),
        ("a.yaml", YAML_TWO, "3:15", "3:12"),
    ],
)
def test_a_block_parameter_listed_twice_is_an_error_at_the_second(
    name: str, text: str, at: str, first: str
) -> None:
    """`block Two(c, c)` took the last value given for c (`Two(5, 7)` made 7 features)."""
    code, _, err = invoke("check", write(name, text))
    assert code == 1
    assert err.startswith(
        f"{name}:{at}: name error: block Two has the parameter 'c' twice (first at {name}:{first})"
    ), err
    assert "hint: give each parameter its own name" in err


@pytest.mark.parametrize(
    ("name", "text", "at", "what", "hint"),
    [
        (
            "a.net",
            "block dense(c) {\n  input x\n  h = x -> relu\n  output h\n}\n"
            "model M {\n  input x: f32[N, 64]\n  h = x -> dense(5)\n  output h\n}\n",
            "1:7",
            "the op dense",
            "`Dense` or `my_dense`",
        ),
        (
            "a.net",
            "block repeat(n, b) {\n  input x\n  output x\n}\nmodel M {\n  input x: f32[N, 64]\n  output x\n}\n",
            "1:7",
            "the built-in repeat",
            "`Repeat` or `my_repeat`",
        ),
        (
            "a.yaml",
            "blocks:\n  relu:\n    inputs: [x]\n    outputs: [x]\n"
            "models:\n  M:\n    inputs: {x: 'f32[N, 4]'}\n    layers:\n      - {name: h, op: relu}\n"
            "    outputs: [h]\n",
            "2:3",
            "the op relu",
            "`Relu` or `my_relu`",
        ),
    ],
)
def test_a_block_named_like_an_op_is_an_error_at_its_name(
    name: str, text: str, at: str, what: str, hint: str
) -> None:
    """Such a block replaced the op in every call of the file, silently; the op stays reachable after the error."""
    code, _, err = invoke("check", write(name, text))
    assert code == 1
    block = what.split()[-1]
    assert err.startswith(
        f"{name}:{at}: name error: block '{block}' takes the name of {what}, which it would replace in every call"
    ), err
    assert f"hint: rename the block, e.g. {hint}" in err
    assert err.count(" error: ") == 1, err  # `x -> dense(5)` is the op's call again, and fine


U_OF_C = "block U(c) {\n  input x: [N, F]\n  h = x -> dense(c)\n  output h\n}\n"


def test_an_error_inside_a_block_names_the_call_that_caused_it() -> None:
    """Located in the body every call shares, an error said nothing of which call went wrong."""
    f = write(
        "a.net",
        U_OF_C + "model M {\n  input x: f32[N, 64]\n  a = x -> U(8)\n  b = x -> U(-2)\n  output a, b\n}\n",
    )
    code, _, err = invoke("check", f)
    assert code == 1
    assert err.split("\n") == [
        "a.net:3:18: argument error: dense's 'features' must be at least 1, got -2",
        " 3 |   h = x -> dense(c)",
        "   |                  ^",
        "note: in U(-2), called at a.net:9:12",
        "hint: for example features=16; `specc ops dense` describes its arguments",
        "",
    ]


def test_an_error_inside_nested_blocks_names_each_call_once() -> None:
    """Innermost call first; the same mistake made by two calls is reported once, for the first, and the JSON
    report carries the note too."""
    f = write(
        "a.net",
        U_OF_C
        + "block V(k) {\n  input x: [N, 64]\n  h = x -> U(k)\n  output h\n}\n"
        + "model M {\n  input x: f32[N, 64]\n  input y: f32[N, 32]\n  a = x -> V(-1)\n  b = x -> U(-1)\n"
        + "  c = y -> V(4)\n  output a, b, c\n}\n",
    )
    code, _, err = invoke("check", f)
    assert code == 1
    assert err.count("must be at least 1, got -1") == 1
    assert "\nnote: in U(k), called at a.net:8:12; in V(-1), called at a.net:14:12\n" in err
    assert err.split("\n\n")[1].split("\n")[0] == (
        "a.net:7:16: shape error: block V expects input x with axis 1 = 64, got f32[N, 32]"
    )
    assert "\nnote: in V(4), called at a.net:16:12\n" in err
    code, out, _ = invoke("check", "--json", f)
    errors = json.loads(out)["errors"]
    assert [(e["line"], e["col"], e.get("note")) for e in errors] == [
        (3, 18, "in U(k), called at a.net:8:12; in V(-1), called at a.net:14:12"),
        (7, 16, "in V(4), called at a.net:16:12"),
    ]


# ---- malformed numbers, argument counts, arithmetic out of range (issue: misleading messages) ----------------


@pytest.mark.parametrize(
    ("old", "new", "where", "message", "hint"),
    [
        ("lr=0.1", "lr=1e-", "14:22", "malformed number '1e-': the exponent after 'e' has no digits", "1e-3"),
        ("lr=0.1", "lr=1e", "14:22", "malformed number '1e': the exponent after 'e' has no digits", "1e-3"),
        (
            "dense(100)",
            "dense(1__0)",
            "6:23",
            "malformed number '1__0': a number cannot contain '_'",
            "write 10",
        ),
        (
            "dense(100)",
            "dense(0x10)",
            "6:23",
            "malformed number '0x10': specc reads decimal numbers only",
            "write 16",
        ),
        (
            "dense(100)",
            "dense(1.2.3)",
            "6:23",
            "malformed number '1.2.3': a number has at most one '.'",
            "1.2",
        ),
        ("dense(100)", "dense(3x)", "6:23", "malformed number '3x': a name cannot follow", "`3 * x`"),
        # U+2212 (a word processor's minus) inside the number: said at the minus, not at the 'e'
        (
            "lr=0.1",
            "lr=1e\u22123",
            "14:24",
            "unexpected character '\u2212' in the number 1e\u22123",
            "write minus as '-': 1e-3",
        ),
    ],
)
def test_a_malformed_number_is_named_at_the_number(
    old: str, new: str, where: str, message: str, hint: str
) -> None:
    code, _, err = invoke("check", write("a.net", mlp_with(old, new)))
    assert code == 1
    assert err.startswith(f"a.net:{where}: syntax error: {message}"), err
    assert hint in err.split("hint: ")[1], err


def test_a_yaml_octal_number_is_a_malformed_number_at_its_column() -> None:
    text = 'models:\n  M:\n    inputs: {x: "f32[N, 64]"}\n    layers:\n      - {name: h, op: dense, features: 0o17}\n    outputs: h\n'
    code, _, err = invoke("check", write("a.yaml", text))
    assert code == 1
    assert err.startswith(
        "a.yaml:5:40: syntax error: malformed number '0o17': specc reads decimal numbers only"
    )
    assert err.rstrip().endswith("hint: write 15")


@pytest.mark.parametrize(
    ("old", "new", "where", "message", "hint"),
    [
        (
            "-> relu",
            "-> relu(3)",
            "6:31",
            "argument error: relu takes no arguments besides its input, got 1",
            "write relu: `x -> relu` or `relu(x)`",
        ),
        (
            "split=0.8",
            "split=0,8",
            "12:28",
            "argument error: digits: `split=0,8` reads as split=0 and a second argument 8",
            "write a decimal with a '.': split=0.8",
        ),
        (
            "lr=0.1",
            "lr=0,1",
            "14:22",
            "argument error: sgd: `lr=0,1` reads as lr=0 and a second argument 1",
            "write a decimal with a '.': lr=0.1",
        ),
        (
            "digits(split=0.8)",
            "digits(0, 1)",
            "12:22",
            "argument error: digits takes no positional arguments, got 2",
            "usage: digits(",
        ),
    ],
)
def test_argument_counts_are_worded_once_and_grammatically(
    old: str, new: str, where: str, message: str, hint: str
) -> None:
    code, _, err = invoke("check", write("a.net", mlp_with(old, new)))
    assert code == 1
    assert err.startswith(f"a.net:{where}: {message}\n"), err
    assert err.split("hint: ")[1].startswith(hint), err


@pytest.mark.parametrize(
    ("line", "where", "message", "hint"),
    [
        (
            "let a = (-8) ** 0.5",
            "1:9",
            "the value of (-8) ** 0.5 is not a real number",
            "a negative number to a fractional power is complex",
        ),
        (
            "let a = 1e308 ** 10",
            "1:9",
            "the value of 1e308 ** 10 overflows the float range",
            "specc's numbers are finite 64-bit floats",
        ),
        ("let a = 2 ** 70", "1:9", "the value of 2 ** 70 is out of range", "specc's integers lie between"),
        ("let a = 0 ** -1", "1:9", "the value of 0 ** -1 divides by zero", "0 to a negative power"),
    ],
)
def test_arithmetic_out_of_range_says_why_as_written(line: str, where: str, message: str, hint: str) -> None:
    code, _, err = invoke("check", write("a.net", f"{line}\n{MLP}"))
    assert code == 1
    assert err.startswith(f"a.net:{where}: value error: {message}\n"), err
    assert err.split("hint: ")[1].startswith(hint), err


def test_a_float_power_beyond_int64_is_fine() -> None:
    code, _, err = invoke("check", write("a.net", f"let a = 2.0 ** 70\n{MLP}"))
    assert code == 0, err


def test_a_nul_byte_is_shown_with_its_line_and_a_caret() -> None:
    Path("a.net").write_bytes(b"model M {\n  input x: f32[N, 4]\x00\n}\n")
    code, _, err = invoke("check", "a.net")
    assert code == 1
    assert err.split("\n")[:3] == [
        "a.net:2:21: file error: the file contains a NUL byte; it looks binary",
        " 2 |   input x: f32[N, 4]\u2400",
        "   |                     ^",
    ]
    assert "hint: " in err
