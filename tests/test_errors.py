"""Golden error messages: each tests/errors/NAME.net next to NAME.err, exactly what `specc check` prints on stderr.

Regenerate after a deliberate wording change with `UPDATE_GOLDEN=1 pytest tests/test_errors.py`, then read the
diff as a user would: every message says where, what was expected, what was found, and how to fix it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import main

ROOT = Path(__file__).resolve().parents[1]
CASES = sorted((ROOT / "tests" / "errors").glob("*.net"))
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
HEADER = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): (?P<kind>[a-z]+ error): \S")


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    # messages name files as the user wrote them: `specc check tests/errors/NAME.net` from the repo root
    monkeypatch.chdir(ROOT)


def _check(case: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["check", str(case.relative_to(ROOT))])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_enough_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_golden(case: Path) -> None:
    code, out, err = _check(case)
    golden = case.with_suffix(".err")
    if UPDATE:
        golden.write_text(err, encoding="utf-8")
    assert code == 1, f"expected exit 1 (spec error), got {code}\n{out}{err}"
    assert out == "", "errors go to stderr; stdout stays empty"
    assert "Traceback" not in err and "internal error" not in err
    assert golden.is_file(), f"no {golden.name}; run with UPDATE_GOLDEN=1 to create it, then read it"
    assert err == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_every_message_is_located_and_hinted(case: Path) -> None:
    """Each message: `file:line:col: kind: ...`, the source line, a caret under the spot, and a hint."""
    _, _, err = _check(case)
    blocks = re.sub(r"\n\n\d+ errors\n$", "\n", err).strip("\n").split("\n\n")
    for block in blocks:
        lines = block.split("\n")
        m = HEADER.match(lines[0])
        assert m, f"no file:line:col: kind: header in {lines[0]!r}"
        assert Path(m["file"]).is_file(), m["file"]
        assert re.match(rf"^ {m['line']} \| ", lines[1]), lines[1]
        gutter = len(m["line"]) + 4
        caret = lines[2][gutter:]
        assert caret.strip().strip("^") == "" and "^" in caret, lines[2]
        assert len(caret) - len(caret.lstrip()) == int(m["col"]) - 1, f"caret not under column {m['col']}"
        assert lines[-1].startswith("hint: "), f"no hint for: {lines[0]}"


def test_multiple_errors_reported_in_order() -> None:
    _, _, err = _check(ROOT / "tests" / "errors" / "multiple_errors.net")
    lines = [int(m.group(1)) for m in re.finditer(r"^tests/errors/multiple_errors\.net:(\d+):", err, re.M)]
    assert len(lines) == 5
    assert lines == sorted(lines)
    assert err.rstrip().endswith("5 errors")


def test_a_name_defined_twice_hides_no_other_error() -> None:
    """A duplicate let and block are reported at the second definition, naming the first; the model (checked with
    the first definitions) and the train section are still checked. It stopped at the duplicates."""
    code, _, err = _check(ROOT / "tests" / "errors" / "duplicate_hides_nothing.net")
    found = re.findall(
        r"^tests/errors/duplicate_hides_nothing\.net:(\d+):(\d+): ([a-z]+ error): (.*)$", err, re.M
    )
    assert code == 1
    assert [(int(line), int(col), kind) for line, col, kind, _ in found] == [
        (3, 1, "name error"),
        (11, 1, "name error"),
        (19, 27, "shape error"),
        (27, 22, "argument error"),
    ]
    assert "first at tests/errors/duplicate_hides_nothing.net:2:1" in found[0][3]
    assert "first at tests/errors/duplicate_hides_nothing.net:5:1" in found[1][3]


@pytest.mark.parametrize(
    ("call", "col", "message", "hint"),
    [
        (
            "conv(16, 5, padding=(4, 0))",
            24,
            "conv's 'padding' has 2 values but the input has 1 spatial axis (f32[N, 32, 1])",
            "to pad the two sides of an axis differently, give a (lo, hi) pair per axis: padding=[(4, 0)]",
        ),
        (
            "maxpool(2, padding=(4, 0))",
            23,
            "maxpool's 'padding' has 2 values but the input has 1 spatial axis (f32[N, 32, 1])",
            "to pad the two sides of an axis differently, give a (lo, hi) pair per axis: padding=[(4, 0)]",
        ),
        (
            "maxpool((2, 2))",
            20,
            "maxpool's 'window' has 2 values but the input has 1 spatial axis (f32[N, 32, 1])",
            "give one value: window=2",
        ),
        (
            "maxpool(2, stride=(1, 1))",
            23,
            "maxpool's 'stride' has 2 values but the input has 1 spatial axis (f32[N, 32, 1])",
            "give one value: stride=1",
        ),
        (
            "adaptive_avgpool((2, 2))",
            29,
            "adaptive_avgpool's 'size' has 2 values but the input has 1 spatial axis (f32[N, 32, 1])",
            "give one value: size=2",
        ),
    ],
)
def test_per_axis_counts_are_grammatical_and_a_padding_of_pairs_is_shown(
    call: str, col: int, message: str, hint: str
) -> None:
    import specc
    from specc.errors import SpecError

    text = f"model C {{\n  input x: f32[N, 32, 1]\n  h = x -> {call}\n  output h\n}}\n"
    with pytest.raises(SpecError) as e:
        specc.load("c.net", text=text).graph()
    [d] = e.value.diagnostics
    assert d.span is not None and (d.span.line, d.span.col) == (3, col)
    assert (d.kind, d.message, d.hint) == ("shape error", message, hint)


@pytest.mark.parametrize(
    ("stage", "col", "message", "hint"),
    [
        (
            "repeat(2, 16)",
            22,
            "repeat's second argument must be a block or op call, got 16",
            "write `x -> repeat(n, Block(args...))`: the count, then the call to repeat, e.g. repeat(2, Unit(16))",
        ),
        (
            "repeat(Unit(16), 2)",
            12,
            "repeat's arguments are the other way around: the count comes first",
            "write repeat(2, Unit(16))",
        ),
        (
            "repeat(2)",
            12,
            "repeat takes 2 arguments, the count and a block or op call, got 1",
            "write `x -> repeat(n, Block(args...))`: the count, then the call to repeat",
        ),
    ],
)
def test_a_misused_repeat_stage_says_what_is_wrong(stage: str, col: int, message: str, hint: str) -> None:
    import specc
    from specc.errors import SpecError

    text = (
        "block Unit(c) {\n  input x\n  h = x -> dense(c)\n  output h\n}\n"
        f"model M {{\n  input x: f32[N, 16]\n  a = x -> {stage}\n  output a\n}}\n"
    )
    with pytest.raises(SpecError) as e:
        specc.load("r.net", text=text).graph()
    [d] = e.value.diagnostics
    assert d.span is not None and (d.span.line, d.span.col) == (8, col)
    assert (d.kind, d.message, d.hint) == ("argument error", message, hint)


def test_a_syntax_error_in_an_imported_file_names_the_import(tmp_path: Path) -> None:
    (tmp_path / "blocks.net").write_text("block B(c) {\n  input x\n  h = x -> dense(c\n  output h\n}\n")
    main_net = tmp_path / "main.net"
    main_net.write_text(
        'import "blocks.net"\nmodel M {\n  input x: f32[N, 4]\n  h = x -> B(3)\n  output h\n}\n'
    )
    import specc
    from specc.errors import SpecError

    with pytest.raises(SpecError) as e:
        specc.load(main_net).graph()
    [d] = e.value.diagnostics
    assert d.span is not None and (d.span.file.endswith("blocks.net"), d.span.line, d.span.col) == (
        True,
        3,
        17,
    )
    assert d.message.startswith("missing ')' to close the call to dense")
    assert d.note.startswith("imported from ") and d.note.endswith("main.net:1:1")
