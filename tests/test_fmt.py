"""`specc fmt`: canonical, idempotent, keeps the IR and every comment; `specc fmt --check` exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import main
from specc.errors import SpecError
from specc.frontend.convert import find_comments, format_file, format_source
from specc.frontend.fmt import format_module
from specc.frontend.load import read_source
from specc.frontend.parse import parse_source, parse_text
from specc.source import Source

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.net"))


def _fmt(text: str) -> str:
    return format_source(Source("t.net", text))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_fmt_is_idempotent_and_keeps_ast_ir_and_comments(path: Path, ir_dumps) -> None:
    src = read_source(path)
    once = format_source(src)
    assert _fmt(once) == once
    assert parse_text(once) == parse_source(src)
    assert ir_dumps(path, once) == ir_dumps(path)
    assert [c.text for c in find_comments(once)] == [c.text for c in find_comments(src.text)]


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_without_comments_fmt_is_format_module(path: Path) -> None:
    module = parse_source(read_source(path))
    assert _fmt(format_module(module)) == format_module(module)


MESSY = """\
# header: the file's title

# about the block
block B(c) {   # trailing on the header
  input x
  y = x   -> dense(c)
        -> relu      # trailing inside a pipeline
  # before the output

  output y
  # before the closing brace
}
let s = "not # a comment"   # but this is
model M {
  input x:f32[N,4]
  h = x -> B(3) ; z = h -> relu  # after the second statement
  output z
}  # after the brace
# at the end
"""

MESSY_FORMATTED = """\
# header: the file's title

# about the block
block B(c) {   # trailing on the header
  input x
  y = x   -> dense(c)
        -> relu      # trailing inside a pipeline
  # before the output

  output y
  # before the closing brace
}
let s = "not # a comment"   # but this is
model M {
  input x: f32[N, 4]
  h = x -> B(3)
  z = h -> relu  # after the second statement
  output z
}  # after the brace
# at the end
"""


def test_comments_are_put_back_beside_their_statements() -> None:
    assert _fmt(MESSY) == MESSY_FORMATTED
    assert _fmt(MESSY_FORMATTED) == MESSY_FORMATTED
    assert parse_text(MESSY_FORMATTED) == parse_text(MESSY)


def test_hash_inside_a_string_is_not_a_comment() -> None:
    assert [c.text for c in find_comments('let s = "a # b \\" # c"  # real\n')] == ["# real"]


def test_format_file_writes_only_when_the_text_changes(tmp_path: Path) -> None:
    f = tmp_path / "m.net"
    f.write_text(MESSY)
    assert format_file(f, check_only=True) is True
    assert f.read_text() == MESSY  # --check writes nothing
    assert format_file(f) is True
    assert f.read_text() == MESSY_FORMATTED
    before = f.stat().st_mtime_ns
    assert format_file(f) is False
    assert f.stat().st_mtime_ns == before


def test_fmt_refuses_yaml(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("models: {}\n")
    with pytest.raises(SpecError) as info:
        format_file(f)
    assert "--to net" in info.value.diagnostics[0].hint


def test_cli_fmt_check_exit_codes(tmp_path: Path) -> None:
    f = tmp_path / "m.net"
    f.write_text(MESSY)
    runner = CliRunner()
    r = runner.invoke(main, ["fmt", "--check", str(f)])
    assert r.exit_code == 1 and "not canonically formatted" in r.output
    assert runner.invoke(main, ["fmt", str(f)]).exit_code == 0
    assert f.read_text() == MESSY_FORMATTED
    assert runner.invoke(main, ["fmt", "--check", str(f)]).exit_code == 0


def test_cli_fmt_reports_syntax_errors(tmp_path: Path) -> None:
    f = tmp_path / "bad.net"
    f.write_text("model M {\n  h = x -> dense(3\n}\n")
    r = CliRunner().invoke(main, ["fmt", str(f)])
    assert r.exit_code == 1 and "syntax error" in r.output
    assert f.read_text() == "model M {\n  h = x -> dense(3\n}\n"


def test_cli_convert_yaml_to_net_is_canonical(ir_dumps) -> None:
    r = CliRunner().invoke(main, ["convert", str(ROOT / "specs/yaml/mlp.yaml"), "--to", "net"])
    assert r.exit_code == 0, r.output
    assert _fmt(r.output) == r.output
    assert ir_dumps(ROOT / "specs/mlp.net", r.output) == ir_dumps(ROOT / "specs/mlp.net")


def test_fmt_keeps_number_spellings_and_aligned_columns() -> None:
    src = """\
model M {
  input x: f32[N, 4]

  h      = x -> dense(8) -> dropout(5e-1)     : [N, 8]    # aligned by the author
  logits = h -> dense(2,   init=normal(1e-3)) : [N, 2]
  output logits
}

train {
  data      = xor()
  loss      = mse(logits, t)
  optimizer = adam(lr=1E-3)
}
"""
    out = _fmt(src)
    assert "dropout(5e-1)" in out and "normal(1e-3)" in out and "lr=1E-3" in out
    assert "  h      = x -> dense(8) -> dropout(5e-1)     : [N, 8]    # aligned by the author\n" in out
    assert "  logits = h -> dense(2, init=normal(1e-3)) : [N, 2]\n" in out  # spaces that align nothing go
    assert "  optimizer = adam(lr=1E-3)\n" in out and "  data      = xor()\n" in out
    assert _fmt(out) == out


def test_fmt_keeps_the_authors_line_breaks_and_blank_lines() -> None:
    src = "model M {\n  input x: f32[N, 4]\n  h = x -> dense(8)\n      -> relu -> dense(2)\n\n  output h\n}\n"
    assert _fmt(src) == src


def test_cli_fmt_diff_and_check_change_nothing(tmp_path: Path) -> None:
    f = tmp_path / "m.net"
    f.write_text(MESSY)
    r = CliRunner().invoke(main, ["fmt", "--diff", str(f)])
    assert r.exit_code == 0 and f.read_text() == MESSY
    assert "-  h = x -> B(3) ; z = h -> relu" in r.output and "+  z = h -> relu" in r.output
    assert CliRunner().invoke(main, ["fmt", "--check", str(f), str(ROOT / "specs/mlp.net")]).exit_code == 1


def test_every_spec_is_formatted() -> None:
    specs = sorted(str(p) for p in (ROOT / "specs").glob("*.net"))
    r = CliRunner().invoke(main, ["fmt", "--check", *specs])
    assert r.exit_code == 0, r.output


# ---- comments inside brackets split over lines -------------------------------------------------------------

BROKEN_CALLS = """\
let widths = [64,   # first
              128,  # second
              256]  # third
block Conv(c,  # channels
           k=3) {  # kernel
  input x
  y = x -> conv(
    c,  # filters
    # the kernel's size
    k,
    padding="same"
  ) -> relu
  output y
}
model M {
  input x: [N,  # batch
            28, 28, 1]
  h = x -> conv(32, 3,          # filters, kernel
                stride=2,       # halves the image
                padding="same") # keep the border
       -> relu
  y = h -> flatten -> dense(10,  # classes
          init=normal(0.01,  # small
                      1e-3))
  output y
}
train {
  data = digits()
  loss = cross_entropy(y, label)
  optimizer = adam(1e-3,      # learning rate
                   b1=0.9)    # momentum
  metrics = [
    accuracy,  # main
    loss       # also
  ]
  early_stop(patience=3,  # epochs
             metric="val_loss")
}
"""

BROKEN_CALLS_FORMATTED = """\
let widths = [64,   # first
              128,  # second
              256]  # third
block Conv(c,  # channels
           k=3) {  # kernel
  input x
  y = x -> conv(
    c,  # filters
    # the kernel's size
    k,
    padding="same",
  ) -> relu
  output y
}
model M {
  input x: [N,  # batch
            28, 28, 1]
  h = x -> conv(32, 3,          # filters, kernel
                stride=2,       # halves the image
                padding="same")  # keep the border
       -> relu
  y = h -> flatten -> dense(10,  # classes
                            init=normal(0.01,  # small
                                        1e-3))
  output y
}
train {
  data = digits()
  loss = cross_entropy(y, label)
  optimizer = adam(1e-3,      # learning rate
                   b1=0.9)    # momentum
  metrics = [
    accuracy,  # main
    loss,      # also
  ]
  early_stop(patience=3,  # epochs
             metric="val_loss")
}
"""


def test_comments_after_arguments_stay_after_them() -> None:
    out = _fmt(BROKEN_CALLS)
    assert out == BROKEN_CALLS_FORMATTED
    assert _fmt(out) == out
    assert parse_text(out) == parse_text(BROKEN_CALLS)
    assert [c.text for c in find_comments(out)] == [c.text for c in find_comments(BROKEN_CALLS)]


def test_an_item_on_a_new_line_is_indented_at_least_as_fmt_aligns_it() -> None:
    # the first item on the opener's line: the others under it; the first on a new line: two spaces in; an author's
    # deeper indentation is kept, as for `->` lines
    src = "model M {\n  input x\n  y = x -> dense(10,\n    use_bias=false) -> relu\n  output y\n}\n"
    want = "model M {\n  input x\n  y = x -> dense(10,\n                 use_bias=false) -> relu\n  output y\n}\n"
    assert _fmt(src) == want
    assert _fmt("let a = (\n1, 2,\n 3\n)\n") == "let a = (\n  1, 2,\n  3,\n)\n"
    assert _fmt("let a = (\n        1, 2,\n   3)\n") == "let a = (\n        1, 2,\n   3)\n"


def test_a_file_without_a_layout_writes_brackets_on_one_line() -> None:
    assert format_module(parse_text(BROKEN_CALLS)).splitlines()[0] == "let widths = [64, 128, 256]"


def test_convert_round_trips_a_spec_with_broken_calls(tmp_path: Path) -> None:
    net = tmp_path / "m.net"
    net.write_text(BROKEN_CALLS)
    runner = CliRunner()
    yaml = tmp_path / "m.yaml"
    assert runner.invoke(main, ["convert", str(net), "--to", "yaml", "-o", str(yaml)]).exit_code == 0
    assert "optimizer: adam(1e-3, b1=0.9)" in yaml.read_text()
    back = runner.invoke(main, ["convert", str(yaml), "--to", "net"])
    assert back.exit_code == 0, back.output
    assert parse_text(back.output) == parse_text(BROKEN_CALLS)
    assert "  optimizer = adam(1e-3, b1=0.9)\n" in back.output


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("# only a comment", "# only a comment\n"),
        ("# only\n", "# only\n"),
        ("\n\n# a\n\n# b\n", "# a\n\n# b\n"),
        ("let a = 3\n\n# tail\n", "let a = 3\n\n# tail\n"),
    ],
)
def test_a_file_of_comments_only_is_formatted_once_and_for_all(text: str, canonical: str) -> None:
    """fmt of a file holding only comments (a library stub, a TODO) put a blank line before them, one more on
    every run: '# only' became '\\n# only', then '\\n\\n# only'."""
    once = format_source(Source("c.net", text))
    assert once == canonical
    assert format_source(Source("c.net", once)) == once


def test_fmt_does_not_rewrite_a_read_only_file(tmp_path: Path) -> None:
    """fmt wrote a temporary file and renamed it over a chmod 444 file, replacing what the user had made
    read-only (gofmt -w, black and editors refuse). Now a usage error, the file and its mode untouched; a
    read-only file that is already canonical is fine, and --check and --diff read it."""
    path = tmp_path / "m.net"
    path.write_text("model M {\n\tinput x: f32[N, 4]\n  y = x -> dense(2)\n  output y\n}\n")
    path.chmod(0o444)
    before = path.read_bytes()
    runner = CliRunner()
    r = runner.invoke(main, ["fmt", str(path)])
    assert r.exit_code == 2, r.output
    assert f"usage error: {path} is read-only (mode 444): specc fmt does not rewrite it" in r.output
    assert path.read_bytes() == before and path.stat().st_mode & 0o777 == 0o444
    assert runner.invoke(main, ["fmt", "--check", str(path)]).exit_code == 1
    assert "+  input x: f32[N, 4]" in runner.invoke(main, ["fmt", "--diff", str(path)]).output
    canonical = tmp_path / "c.net"
    canonical.write_text("model M {\n  input x: f32[N, 4]\n  y = x -> dense(2)\n  output y\n}\n")
    canonical.chmod(0o444)
    assert runner.invoke(main, ["fmt", str(canonical)]).exit_code == 0


def test_convert_refuses_to_write_over_a_file_the_spec_imports(tmp_path: Path) -> None:
    """`convert main.net --to net -o lib.net` replaced the library main.net imports with main.net itself (which
    then imported itself: a cycle), silently. Now a usage error, the library untouched."""
    lib = tmp_path / "lib" / "heads.net"
    lib.parent.mkdir()
    lib.write_text(
        "# my library\nblock Head(n) {\n  input h: f32[N, 64]\n  y = h -> dense(n)\n  output y\n}\n"
    )
    before = lib.read_bytes()
    net = tmp_path / "main.net"
    net.write_text(
        'import "lib/heads.net"\nmodel M {\n  input x: f32[N, 64]\n  y = x -> Head(10)\n  output y\n}\n'
    )
    runner = CliRunner()
    for target in ("net", "yaml"):
        r = runner.invoke(main, ["convert", str(net), "--to", target, "-o", str(lib)])
        assert r.exit_code == 2, r.output
        assert f"-o {lib} is a file {net} imports: writing it would replace it" in r.output
    assert lib.read_bytes() == before
    assert (
        runner.invoke(main, ["convert", str(net), "--to", "yaml", "-o", str(tmp_path / "m.yaml")]).exit_code
        == 0
    )


# ---- comments inside grouping parentheses ------------------------------------------------------------------

GROUPED = """\
let a = 3
let b = (a +  # note
  4)
let c = ((a  # before the operator
  - 1) * 2)
model M {
  input x: f32[N, (64 +  # dims note
    0)]
  h = x -> dense((a +  # width
     b) * 2)
  y = (h +   # sum
     h) * 2
  z = (y *  # scale
       2) -> relu
  output z
}
"""

GROUPED_FORMATTED = """\
let a = 3
let b = (a +  # note
         4)
let c = (a -  # before the operator
         1) * 2
model M {
  input x: f32[N, 64 +  # dims note
                  0]
  h = x -> dense((a +  # width
                  b) * 2)
  y = (h +   # sum
       h) * 2
  z = (y *  # scale
       2) -> relu
  output z
}
"""


def test_comments_inside_grouping_parentheses_stay_on_their_line() -> None:
    """A break the author made between two operands (inside grouping parentheses or a bracket) is kept, after the
    operator, so the comment after it stays there: fmt moved it to the end of the statement. Where fmt's minimal
    parentheses would drop the group (`let b = (a + 4)`), they stay, since a line break outside brackets ends the
    statement."""
    out = _fmt(GROUPED)
    assert out == GROUPED_FORMATTED
    assert _fmt(out) == out
    assert parse_text(out) == parse_text(GROUPED)
    assert [c.text for c in find_comments(out)] == [c.text for c in find_comments(GROUPED)]
    assert [c.line for c in find_comments(out)] == [c.line for c in find_comments(GROUPED)]
    # without a break, the parentheses that group nothing go as before
    assert _fmt("let b = (a + 4)  # note\n") == "let b = a + 4  # note\n"
    # a slice's bounds too
    src = "model M {\n  input x: f32[N, 8]\n  y = x[:, 0:(4 +  # c\n 2)]\n  output y\n}\n"
    assert _fmt(src).split("\n")[2:4] == ["  y = x[:, 0:4 +  # c", "             2]"]


def test_fmt_keeps_the_files_line_breaks_and_byte_order_mark(tmp_path: Path) -> None:
    """A CRLF file (a Windows checkout) came back with LF line breaks, so `fmt --diff` showed every line changed
    and `fmt --check` failed on a file that was canonical; a UTF-8 BOM (Notepad's) was dropped the same way. Now
    fmt writes the file's own line breaks and BOM."""
    crlf = tmp_path / "crlf.net"
    crlf.write_bytes(
        b"model M {\r\n  input x: f32[N, 64]  # pixels\r\n  y = x->dense(10)\r\n  output y\r\n}\r\n"
    )
    runner = CliRunner()
    r = runner.invoke(main, ["fmt", "--diff", str(crlf)])
    changed = [
        line for line in r.stdout_bytes.split(b"\n") if line[:1] in (b"+", b"-") and line[1:3] != line[:2]
    ]
    assert changed == [b"-  y = x->dense(10)\r", b"+  y = x -> dense(10)\r"]
    assert runner.invoke(main, ["fmt", str(crlf)]).exit_code == 0
    assert crlf.read_bytes() == (
        b"model M {\r\n  input x: f32[N, 64]  # pixels\r\n  y = x -> dense(10)\r\n  output y\r\n}\r\n"
    )
    assert runner.invoke(main, ["fmt", "--check", str(crlf)]).exit_code == 0
    bom = tmp_path / "bom.net"
    text = b"\xef\xbb\xbfmodel M {\n  input x: f32[N, 64]\n  output x\n}\n"
    bom.write_bytes(text)
    r = runner.invoke(main, ["fmt", "--check", str(bom)])
    assert r.exit_code == 0, r.output
    assert runner.invoke(main, ["fmt", str(bom)]).exit_code == 0 and bom.read_bytes() == text


def test_fmt_of_several_files_formats_every_one_it_can_and_reports_the_others(tmp_path: Path) -> None:
    """`specc fmt bad.net ugly.net` stopped at bad.net's syntax error and left ugly.net unformatted and
    unmentioned; as `check` does, every file is now formatted or reported, then exit 1."""
    bad = tmp_path / "bad.net"
    bad.write_text("model M {\n  input x: f32[N, 64]\n  y = x ->\n  output y\n}\n")
    ugly = tmp_path / "ugly.net"
    ugly.write_text("model M {\n  input x: f32[N, 64]\n  y = x->relu\n  output y\n}\n")
    r = CliRunner().invoke(main, ["fmt", str(bad), str(ugly)])
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith(f"{bad}:3:11: syntax error: '->' must be followed by a stage")
    assert r.stderr.rstrip().endswith("1 of 2 files failed")
    assert "y = x -> relu" in ugly.read_text()


def _pipe(text: str) -> str:
    """A pipe holding `text`, as /dev/fd/N: read once, it is empty after (as /dev/stdin is in `cat m.net | ...`)."""
    import os

    r, w = os.pipe()
    os.write(w, text.encode())
    os.close(w)
    return f"/dev/fd/{r}"


@pytest.mark.parametrize("canonical", [True, False])
def test_fmt_check_and_diff_read_a_pipe_once(canonical: bool) -> None:
    """`cat m.net | specc fmt --check /dev/stdin` said every file was unformatted, and --diff showed the whole
    file as added: the second read of the pipe was empty. Now the text is read once; fmt itself (no file to put
    the text back into) and convert read it right too."""
    text = "model M {\n  input x: f32[N, 4]\n  output x\n}\n"
    given = text if canonical else text.replace("  input x: f32[N, 4]", " input x:f32[N,4]")
    runner = CliRunner()
    r = runner.invoke(main, ["fmt", "--check", _pipe(given)])
    assert r.exit_code == (0 if canonical else 1), r.output
    if not canonical:
        assert "not canonically formatted (run `specc convert /dev/fd/" in r.stderr
    r = runner.invoke(main, ["fmt", "--diff", _pipe(given)])
    assert r.exit_code == 0
    diff = r.stdout.splitlines()
    changed = [" model M {", "- input x:f32[N,4]", "+  input x: f32[N, 4]", "   output x", " }"]
    assert diff[3:] == ([] if canonical else changed)
    r = runner.invoke(main, ["convert", "--to", "net", _pipe(given)])
    assert (r.exit_code, r.stdout) == (0, text)
    r = runner.invoke(main, ["fmt", _pipe(given)])
    if canonical:
        assert r.exit_code == 0
    else:
        assert r.exit_code == 2
        assert "is not a file (a pipe or a device): specc fmt cannot rewrite it" in r.stderr


UGLY = "model M {\n input x:f32[N,4]   # the image\n  y = x->dense(2)\n  output y\n}\n"


def test_fmt_dash_formats_standard_input_to_standard_output(tmp_path: Path) -> None:
    """An editor's format on save: the text through a real pipe, out exactly as `specc fmt FILE` rewrites the
    file (comments kept, a Windows file's CRLF line breaks kept), nothing written anywhere."""
    import subprocess
    import sys

    for ugly in (UGLY, UGLY.replace("\n", "\r\n")):
        file = tmp_path / "m.net"
        file.write_bytes(ugly.encode())
        format_file(file)
        r = subprocess.run(
            [sys.executable, "-m", "specc", "fmt", "-"],
            input=ugly.encode(),
            capture_output=True,
            cwd=tmp_path,
        )
        assert (r.returncode, r.stderr) == (0, b"")
        assert r.stdout == file.read_bytes() and b"# the image" in r.stdout
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.net"]


def test_fmt_dash_check_diff_and_errors_name_standard_input() -> None:
    runner = CliRunner()
    canonical = format_source(Source("m.net", UGLY))
    r = runner.invoke(main, ["fmt", "--check", "-"], input=UGLY)
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr == "<stdin>: not canonically formatted (run `specc fmt -`)\n"
    r = runner.invoke(main, ["fmt", "--check", "-"], input=canonical)
    assert (r.exit_code, r.output) == (0, "")
    r = runner.invoke(main, ["fmt", "--diff", "-"], input=UGLY)
    assert r.exit_code == 0
    assert r.stdout.splitlines()[:2] == ["--- <stdin> (before)", "+++ <stdin> (formatted)"]
    assert "+  input x: f32[N, 4]  # the image" in r.stdout.splitlines()
    # a spec error: located in <stdin>, exit 1, nothing on standard output
    r = runner.invoke(main, ["fmt", "-"], input="model M {\n  input x: f32[N, 4]\n  y = x -> dense(\n}\n")
    assert r.exit_code == 1 and r.stdout == ""
    assert r.stderr.startswith("<stdin>:3:17: syntax error:"), r.stderr
    # standard input is formatted alone: with a file beside it, a usage error
    r = runner.invoke(main, ["fmt", "-", str(ROOT / "specs" / "mlp.net")])
    assert r.exit_code == 2 and "formatted alone" in r.stderr
