"""Bad input never crashes specc: mutated specs, binary garbage, huge and deeply nested files.

Every outcome is either a clean check (exit 0) or located spec errors (exit 1): never a traceback, an internal
error (exit 3), a usage error (exit 2) for a readable file, or a hang. The mutants are drawn with a fixed seed so
CI sees the same ones every run; a failure prints the mutant so it can become a golden case in tests/errors/.
"""

from __future__ import annotations

import random
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from fuzz import deadline  # the fuzzer's per-case alarm (tests/fuzz.py)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from specc.cli import main
from specc.errors import Diagnostic, SpecError
from specc.frontend.parse import decode
from specc.spec import load

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.net"))
SEED = 20240611
N_MUTANTS = 800  # through the library, in-process (the fuzzer, tests/fuzz.py, goes wider)
N_CLI = 200  # of those, also through `specc check` (CliRunner)
PER_CASE_S = 10  # one check taking longer than this is a hang
HEADER = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):(?P<col>\d+): [a-z]+ error: \S", re.M)


def check_bytes(path: Path, data: bytes) -> tuple[int, tuple[Diagnostic, ...]]:
    """What `specc check path` does, in-process, for `data` as the file's content: (exit code, diagnostics)."""
    try:
        src = decode(data, str(path.relative_to(ROOT)))
        spec = load(path, text=src.text)
        spec.check()
        if spec.program.trains:
            from specc.train.spec import check_train

            check_train(spec, spec.graph())
    except SpecError as e:
        e.render()  # rendering must not fail either
        return 1, e.diagnostics
    return 0, ()


def located(d: Diagnostic) -> bool:
    return d.span is not None and d.span.line >= 1 and d.span.col >= 1 and bool(d.message) and bool(d.kind)


# ---- mutation ---------------------------------------------------------------------------------------

TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|->|\*\*|\.\.\.|\"[^\"\n]*\"|#[^\n]*|\s+|.")
# tokens a mutation may insert, space-separated; then whitespace and look-alike characters
_NOISE_WORDS = """( ) [ ] { } , : = -> ; - * / ** @ " ' # 0 -1 1e40 99999999999999999999 0.5 N x ...
    model block input output repeat true import let dense relu conv h"""
NOISE = [*_NOISE_WORDS.split(), "\n", "\t", "\r", " ", "\ufeff", "→", "\u200b"]


def mutate(text: str, rng: random.Random) -> bytes:
    """One to three random edits: delete/duplicate/swap/replace tokens, characters, lines; insert bytes."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        toks = TOKEN.findall(text) or [""]
        i = rng.randrange(len(toks))
        kind = rng.randrange(10)
        if kind == 0:
            del toks[i]
        elif kind == 1:
            toks.insert(i, toks[i])
        elif kind == 2 and len(toks) > 1:
            j = rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
        elif kind == 3:
            toks[i] = rng.choice(toks)
        elif kind == 4:
            toks.insert(i, rng.choice(NOISE))
        text = "".join(toks)
        if kind == 5 and text:
            k = rng.randrange(len(text))
            text = text[:k] + text[k + 1 :]
        elif kind == 6 and text:
            k = rng.randrange(len(text))
            text = text[:k] + text[k] + text[k:]
        elif kind == 7 and len(text) > 1:
            k = rng.randrange(len(text) - 1)
            text = text[:k] + text[k + 1] + text[k] + text[k + 2 :]
        elif kind == 8:
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            if rng.random() < 0.5:
                del lines[k]
            else:
                lines.insert(k, lines[k])
            text = "\n".join(lines)
    data = text.encode("utf-8")
    if rng.random() < 0.1:  # raw bytes: invalid UTF-8, NUL, control characters
        k = rng.randrange(len(data) + 1)
        data = data[:k] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 4))) + data[k:]
    return data


def mutants(n: int, seed: int = SEED) -> Iterator[tuple[int, Path, bytes]]:
    rng = random.Random(seed)
    texts = {p: p.read_text(encoding="utf-8") for p in SPECS}
    for i in range(n):
        path = SPECS[i % len(SPECS)]
        yield i, path, mutate(texts[path], rng)


def test_seed_specs_exist() -> None:
    assert SPECS, "the fuzz test mutates specs/*.net"


@pytest.mark.slow
def test_mutants_give_located_errors_never_crash() -> None:
    failures: list[str] = []
    outcomes = {0: 0, 1: 0}
    for i, path, data in mutants(N_MUTANTS):
        try:
            with deadline(PER_CASE_S):
                code, diags = check_bytes(path, data)
        except Exception as e:  # a crash or hang: the bug this test is for
            failures.append(f"mutant {i} of {path.name}: {type(e).__name__}: {e}\n{data[:600]!r}")
            continue
        outcomes[code] += 1
        for d in diags:
            if not located(d):
                failures.append(f"mutant {i} of {path.name}: unlocated {d.kind}: {d.message}\n{data[:600]!r}")
    assert not failures, f"{len(failures)} bad outcomes; first ones:\n\n" + "\n\n".join(failures[:5])
    assert outcomes[1] > N_MUTANTS // 4, outcomes  # the mutations do break specs


@pytest.mark.slow
def test_mutants_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a copy of specs/ so that imports between specs resolve next to the mutant
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    failures: list[str] = []
    for i, path, data in mutants(N_CLI, seed=SEED + 1):
        target = Path("specs") / f"_mutant_{path.name}"
        target.write_bytes(data)
        with deadline(PER_CASE_S):
            r = runner.invoke(main, ["check", str(target)])
        problem = ""
        if r.exit_code not in (0, 1):
            problem = f"exit {r.exit_code}"
        elif r.exception is not None and not isinstance(r.exception, SystemExit):
            problem = f"{type(r.exception).__name__}: {r.exception}"
        elif "Traceback" in r.stderr or "internal error" in r.stderr:
            problem = "traceback or internal error"
        elif r.exit_code == 1 and not HEADER.match(r.stderr):
            problem = "error without file:line:col"
        if problem:
            failures.append(f"mutant {i} of {path.name}: {problem}\n{r.stderr[:800]}\n{data[:600]!r}")
    assert not failures, f"{len(failures)} bad outcomes; first ones:\n\n" + "\n\n".join(failures[:5])


@settings(max_examples=300, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(NOISE), max_size=40))
def test_token_soup(tokens: list[str]) -> None:
    text = "model M {\n  input x: f32[N, 8]\n  " + " ".join(tokens) + "\n  output x\n}\n"
    with deadline(PER_CASE_S):
        _, diags = check_bytes(ROOT / "specs" / "_soup.net", text.encode())
    assert all(located(d) for d in diags), [d.render() for d in diags]


# ---- explicit cases ---------------------------------------------------------------------------------

MODEL = "model M {{\n  input x: f32[N, 4]\n  {body}\n  output h\n}}\n"


def run_cli(tmp_path: Path, name: str, data: bytes, seconds: float = 30) -> tuple[int, str]:
    path = tmp_path / name
    path.write_bytes(data)
    with deadline(seconds):
        r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return r.exit_code, r.stderr


def assert_located_error(code: int, err: str, *words: str) -> None:
    assert code == 1, err
    assert HEADER.match(err), err
    assert "hint: " in err, err
    for w in words:
        assert w in err, err


def test_empty_file(tmp_path: Path) -> None:
    assert_located_error(*run_cli(tmp_path, "empty.net", b""), "defines no model")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    assert_located_error(*run_cli(tmp_path, "garbage.net", data))


def test_png_header(tmp_path: Path) -> None:
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
    assert_located_error(*run_cli(tmp_path, "image.net", data), "file error", "UTF-8")


def test_nul_byte_in_text(tmp_path: Path) -> None:
    data = MODEL.format(body="h = x -> relu").replace("relu", "re\x00lu").encode()
    assert_located_error(*run_cli(tmp_path, "nul.net", data), "NUL")


def test_ten_megabyte_file(tmp_path: Path) -> None:
    body = "# " + "x" * 98 + "\n"
    data = (MODEL.format(body="h = x -> relu") + body * 100_000).encode()
    assert len(data) > 10_000_000
    assert_located_error(*run_cli(tmp_path, "huge.net", data, seconds=10), "MB")


def test_one_long_line(tmp_path: Path) -> None:
    data = MODEL.format(body="h = x" + " -> identity" * 5_000).encode()
    code, err = run_cli(tmp_path, "long.net", data, seconds=30)
    assert code == 0, err


def test_ten_thousand_nested_parentheses(tmp_path: Path) -> None:
    data = MODEL.format(body="h = " + "(" * 10_000 + "x" + ")" * 10_000).encode()
    assert_located_error(*run_cli(tmp_path, "parens.net", data), "nested")


def test_ten_thousand_unclosed_parentheses(tmp_path: Path) -> None:
    data = MODEL.format(body="h = " + "(" * 10_000 + "x").encode()
    assert_located_error(*run_cli(tmp_path, "open.net", data), "syntax error")


def test_ten_thousand_nested_braces(tmp_path: Path) -> None:
    data = ("model M " + "{" * 10_000 + "}" * 10_000 + "\n").encode()
    assert_located_error(*run_cli(tmp_path, "braces.net", data), "syntax error")


@pytest.mark.parametrize("op", ["+", "*", "**", "@"])
def test_ten_thousand_long_operator_chain(tmp_path: Path, op: str) -> None:
    data = MODEL.format(body="h = x" + f" {op} x" * 10_000).encode()
    assert_located_error(*run_cli(tmp_path, "chain.net", data), "an expression of 10,000 operators in a row")


def test_ten_thousand_negations(tmp_path: Path) -> None:
    data = MODEL.format(body="h = " + "-" * 10_000 + "x").encode()
    assert_located_error(*run_cli(tmp_path, "neg.net", data), "nested more than")


@pytest.mark.slow
def test_ten_thousand_nested_blocks(tmp_path: Path) -> None:
    blocks = "".join(f"block B{i}() {{ input x; y = x -> B{i + 1}(); output y }}\n" for i in range(10_000))
    text = blocks + "block B10000() { input x; output x }\n" + MODEL.format(body="h = x -> B0()")
    assert_located_error(
        *run_cli(tmp_path, "blocks.net", text.encode(), seconds=60), "blocks nested more than"
    )


def test_long_chain_of_constants(tmp_path: Path) -> None:
    lets = "".join(f"let C{i} = C{i + 1} + 1\n" for i in range(2_000)) + "let C2000 = 1\n"
    text = lets + MODEL.format(body="h = x -> dense(C0)")
    assert_located_error(*run_cli(tmp_path, "lets.net", text.encode()), "constants")


def test_huge_dimension(tmp_path: Path) -> None:
    data = b"model M {\n  input x: f32[N, 1000000000000000000]\n  output x\n}\n"
    code, err = run_cli(tmp_path, "dim.net", data)
    assert_located_error(code, err, "1000000000000000000", "largest supported")
    assert "dim.net:2:19: shape error" in err.split("\n")[0], err


def test_huge_dimension_through_arithmetic(tmp_path: Path) -> None:
    data = MODEL.format(body="h = x -> dense(100000) -> dense(100000)").encode()
    code, err = run_cli(tmp_path, "params.net", data)
    assert code in (0, 1), err


def test_import_of_missing_file(tmp_path: Path) -> None:
    data = b'import "nowhere.net"\n' + MODEL.format(body="h = x -> relu").encode()
    assert_located_error(*run_cli(tmp_path, "imp.net", data), "import error", "nowhere.net")


def test_import_cycle(tmp_path: Path) -> None:
    (tmp_path / "a.net").write_text('import "b.net"\nblock A() { input x; output x }\n')
    (tmp_path / "b.net").write_text('import "a.net"\nblock B() { input x; output x }\n')
    data = b'import "a.net"\n' + MODEL.format(body="h = x -> A()").encode()
    assert_located_error(*run_cli(tmp_path, "main.net", data), "import cycle")


def test_self_import(tmp_path: Path) -> None:
    data = b'import "self.net"\n' + MODEL.format(body="h = x -> relu").encode()
    assert_located_error(*run_cli(tmp_path, "self.net", data), "import cycle")


def test_import_of_directory(tmp_path: Path) -> None:
    (tmp_path / "dir.net").mkdir()
    data = b'import "dir.net"\n' + MODEL.format(body="h = x -> relu").encode()
    assert_located_error(*run_cli(tmp_path, "imp.net", data), "import error")


def test_crlf_bom_and_tabs_are_fine(tmp_path: Path) -> None:
    text = "\ufeff" + MODEL.format(body="h = x\t-> relu").replace("\n", "\r\n")
    code, err = run_cli(tmp_path, "crlf.net", text.encode())
    assert code == 0, err


def test_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["check", str(tmp_path / "nope.net")])
    assert r.exit_code == 2
    assert "does not exist" in r.stderr


def test_directory_is_a_usage_error(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert r.exit_code == 2
    assert "directory" in r.stderr
