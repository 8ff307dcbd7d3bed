"""The docs keep working as a reader copies them: README.md and docs/*.md.

- A block fenced ```specc is a whole spec: `specc check` passes it without an error or a warning.
- A block fenced ```specc fragment is a piece of one (statements of a model, a train section, an item): it must
  parse where it belongs (`...` lines, the "and so on" of a slide, are left out).
- A block fenced ```specc error is a spec that is wrong on purpose, its first line a comment naming the file
  (`# m.net`), followed by a plain ``` block: what `specc check m.net` prints, exactly (exit 1).
- Every `--option` of a `specc ...` command shown in the docs is an option of that command, and every option of
  every command is named somewhere in the docs.
- Every link to another page, and to a heading of one (`[..](training.md#speed)`), leads somewhere.

No JAX: the whole file runs in a few seconds.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from specc.cli import main
from specc.errors import SpecError
from specc.frontend.parse import KEYWORDS, parse_text

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^( *)```(\S*)[ \t]*(\S*)[ \t]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
TOP_LEVEL = re.compile(r"(model|block|let|import|train|objective)\b")


def blocks(kind: str) -> list[tuple[str, str]]:
    """(page:line, text) of every block fenced ```specc (kind "") or ```specc fragment (kind "fragment")."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            if m.group(2) == "specc" and m.group(3) == kind:
                body = "\n".join(line[len(m.group(1)) :] for line in m.group(4).splitlines())
                found.append((f"{page.name}:{text.count(chr(10), 0, m.start()) + 1}", body))
    return found


SPECS, FRAGMENTS = blocks(""), blocks("fragment")


def error_blocks() -> list[tuple[str, str, str]]:
    """(page:line, spec, the output block after it) of every ```specc error block."""
    found = []
    for page in PAGES:
        text = page.read_text()
        fences = list(FENCE.finditer(text))
        for m, after in pairwise(fences):
            if m.group(2) == "specc" and m.group(3) == "error":
                where = f"{page.name}:{text.count(chr(10), 0, m.start()) + 1}"
                assert not text[m.end() : after.start()].strip() and not after.group(2), (
                    f"{where}: no output after it"
                )
                found.append((where, m.group(4), after.group(4)))
    return found


ERRORS = error_blocks()


def test_the_docs_hold_spec_blocks() -> None:
    assert len(SPECS) >= 2 and len(FRAGMENTS) >= 8  # README's MLP, the autodiff graph; language.md's pieces
    assert ERRORS  # training.md's typed losses


@pytest.mark.parametrize("where,text", SPECS, ids=[w for w, _ in SPECS])
def test_a_spec_block_checks_without_a_warning(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "doc.net"
    path.write_text(text)
    result = CliRunner().invoke(main, ["check", "--json", str(path)])
    assert result.exit_code == 0, f"{where}: {result.output}"
    assert json.loads(result.stdout)["warnings"] == [], where


@pytest.mark.parametrize("where,text,shown", ERRORS, ids=[w for w, _, _ in ERRORS])
def test_an_error_block_gives_the_output_shown(
    where: str, text: str, shown: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = re.match(r"# (\S+\.net)\n", text)
    assert name, f"{where}: an error block starts with a comment naming its file, e.g. # m.net"
    (tmp_path / name.group(1)).write_text(text)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["check", name.group(1)])
    assert result.exit_code == 1 and result.stderr == shown, f"{where}:\n{result.stderr}"


def _parses(text: str) -> SpecError | None:
    try:
        parse_text(text)
    except SpecError as e:
        return e
    return None


@pytest.mark.parametrize("where,text", FRAGMENTS, ids=[w for w, _ in FRAGMENTS])
def test_a_fragment_parses_where_it_belongs(where: str, text: str) -> None:
    text = "\n".join(line for line in text.splitlines() if line.strip() != "...")
    first = next(
        line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")
    )
    if TOP_LEVEL.match(first) and not first.startswith("let "):
        wrappers = ["{}"]
    else:  # statements: of a model (or block), of a train section, or top-level `let`s
        wrappers = ["{}", "model Fragment {{\n{}\n}}", "train {{\n{}\n}}"]
    errors = [_parses(w.format(text)) for w in wrappers]
    assert None in errors, f"{where}: {errors[-1]}"


def test_the_reserved_words_listed_are_the_grammars() -> None:
    """docs/language.md's list left out `from` (`T = Teacher() from "runs/T"`), which the parser refuses as a name."""
    [listed] = re.findall(
        r"\*\*Keywords are reserved\*\*: `([^`]*)`", (ROOT / "docs" / "language.md").read_text()
    )
    assert sorted(listed.split()) == sorted(KEYWORDS)


# ---- command lines ------------------------------------------------------------------------------------------------


def _commands() -> dict[str, click.Command]:
    """'check', 'train', ..., 'plot boundary', ...: every command a user types."""
    found: dict[str, click.Command] = {}
    assert isinstance(main, click.Group)
    for name, cmd in main.commands.items():
        if isinstance(cmd, click.Group):
            found.update({f"{name} {sub}": c for sub, c in cmd.commands.items()})
        else:
            found[name] = cmd
    return found


COMMANDS = _commands()


def _options(cmd: click.Command) -> set[str]:
    return {o for p in cmd.params if isinstance(p, click.Option) for o in (*p.opts, *p.secondary_opts)}


def _command_lines() -> list[tuple[str, str, str]]:
    """(page, command, the rest of the line) for each `specc CMD ...` in code: fenced lines and inline spans."""
    lines = []
    for page in PAGES:
        if (
            page.name == "benchmarks.md"
        ):  # measurements of past versions, with their command lines of the time
            continue
        text = page.read_text()
        code = [line for m in FENCE.finditer(text) for line in m.group(4).splitlines()]
        code += re.findall(r"`(specc [^`]+)`", FENCE.sub("", text))
        for line in code:
            for m in re.finditer(r"(?:^|[\s(])specc (\w+)(?: (\w+))?([^#]*)", line):
                cmd, sub, rest = m.group(1), m.group(2), m.group(3)
                if f"{cmd} {sub}" in COMMANDS:
                    lines.append((page.name, f"{cmd} {sub}", rest))
                elif cmd in COMMANDS:
                    lines.append((page.name, cmd, f"{sub or ''}{rest}"))
    return lines


def test_every_option_the_docs_show_exists() -> None:
    lines = _command_lines()
    assert len(lines) > 40
    wrong = {
        f"{page}: specc {cmd} {opt}"
        for page, cmd, rest in lines
        for opt in re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest)
        if opt not in _options(COMMANDS[cmd])
    }
    assert not wrong, sorted(wrong)


def test_every_option_is_documented() -> None:
    text = "\n".join(page.read_text() for page in PAGES)
    undocumented = [
        f"specc {name} {p.opts[0]}"
        for name, cmd in COMMANDS.items()
        for p in cmd.params
        if isinstance(p, click.Option) and "--help" not in p.opts
        if not any(
            re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", text) for o in (*p.opts, *p.secondary_opts)
        )
    ]
    assert not undocumented, undocumented


# ---- links --------------------------------------------------------------------------------------------------------


def _anchors(page: Path) -> set[str]:
    """GitHub's heading ids: lower case, punctuation dropped, spaces as '-'."""
    text = FENCE.sub("", page.read_text())
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.*)$", text, re.M)
    }


def test_links_between_pages_lead_somewhere() -> None:
    broken = []
    for page in PAGES:
        for link in re.findall(r"\]\(([^)\s]+)\)", FENCE.sub("", page.read_text())):
            if link.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = link.partition("#")
            target = (page.parent / path).resolve() if path else page
            if not target.exists():
                broken.append(f"{page.name}: {link}")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
                broken.append(f"{page.name}: {link} (no heading #{anchor})")
    assert not broken, broken


def test_files_the_docs_name_exist() -> None:
    """`specs/vae.net`, `examples/lecture_plots.sh`, `tests/test_dot.py::test_default_fits_a_slide`: a reader opens
    them."""
    missing = []
    for page in PAGES:
        for path in re.findall(
            r"`((?:examples|specs|bench|tests|specc|editors|grammar)/[\w./-]+(?:::\w+)?)`", page.read_text()
        ):
            file, _, test = path.partition("::")
            if not (ROOT / file).exists() or (test and f"def {test}(" not in (ROOT / file).read_text()):
                missing.append(f"{page.name}: {path}")
    assert not missing, missing
