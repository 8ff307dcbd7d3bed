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
