"""The DOT back end: golden drawings, the lecture colours, clusters and collapsing, Graphviz output, values mode.

Golden files: tests/golden/dot/<name>.dot, one per spec of specs/ (its default drawing) and a few cases below.
After an intended change, `UPDATE_GOLDEN=1 pytest tests/test_dot.py -k golden` rewrites them; look at the pictures
(`specc dot specs/X.net -o x.png`) before committing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from specc.backend.dot import (
    INPUT_FILL,
    OP_FILL,
    PARAM_FILL,
    DotError,
    DotOptions,
    evaluate,
    fits_slide,
    shape_text,
    to_dot,
)
from specc.backend.dot_blocks import block_structure
from specc.cli import main
from specc.spec import load

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "dot"
SPECS = sorted((ROOT / "specs").glob("*.net"))
BLOCKS = GOLDEN / "blocks.net"
AUTODIFF = GOLDEN / "autodiff.net"
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="the graphviz `dot` binary is not installed")

# golden name → (spec, options): every spec's default drawing, and a few options on the test specs
CASES: dict[str, tuple[Path, dict[str, object]]] = {
    "blocks": (BLOCKS, {}),
    "blocks.collapsed": (BLOCKS, {"collapse": ("all",)}),
    "blocks.wrap": (BLOCKS, {"wrap": True, "depth": 0}),
    "autodiff": (AUTODIFF, {}),
    **{p.stem: (p, {}) for p in SPECS},
}
BIG = {p.stem: p for p in SPECS if p.stem in ("resnet18", "resnet50", "googlenet", "vgg16")}


def dot_of(path: Path, **options: Any) -> str:
    return load(path).to_dot(**options)


def spec_path(stem: str) -> Path:
    if stem not in BIG:
        pytest.skip(f"specs/{stem}.net is not there")
    return BIG[stem]


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, [str(a) for a in args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return r.exit_code, r.stdout, r.stderr


def boxes(dot: str) -> list[str]:
    """The ids of the drawn nodes (legend excluded)."""
    return re.findall(r"^\s*(n\d+|g\d+(?:p\d+)?) \[", dot, re.M)


def svg_of(dot: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=False)


# ---- golden files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    spec, options = CASES[name]
    got = dot_of(spec, **options)
    path = GOLDEN / f"{name}.dot"
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.write_text(got, encoding="utf-8")
        if not os.environ.get("UPDATE_GOLDEN"):
            pytest.fail(f"wrote the missing golden file {path}; check it and rerun")
    assert got == path.read_text(encoding="utf-8"), (
        f"DOT of {spec.name} changed (the spec or the renderer); look at the picture, then "
        "UPDATE_GOLDEN=1 pytest tests/test_dot.py -k golden"
    )


def test_deterministic() -> None:
    spec = load(BLOCKS)
    assert spec.to_dot() == spec.to_dot() == load(BLOCKS).to_dot()


# ---- every spec renders, and Graphviz accepts it without a warning ---------------------------------------------


@needs_dot
@pytest.mark.parametrize("spec", [*SPECS, BLOCKS, AUTODIFF], ids=lambda p: p.name)
@pytest.mark.parametrize(
    "options", [{"collapse": ("all",), "rankdir": "LR"}, {"depth": 99}], ids=["collapsed-LR", "expanded"]
)
def test_graphviz_accepts(spec: Path, options: dict[str, object]) -> None:
    out = svg_of(dot_of(spec, **options))
    assert out.returncode == 0, out.stderr.decode()
    assert out.stderr.decode().strip() == "", out.stderr.decode()
    assert b"<svg" in out.stdout


# ---- the lecture look ------------------------------------------------------------------------------------------


def test_colours_and_legend() -> None:
    dot = dot_of(BLOCKS)
    x = next(line for line in dot.splitlines() if line.strip().startswith("n0 "))
    assert f'bgcolor="{INPUT_FILL}"' in x and "<b>x</b>" in x  # the input: white
    dense = next(line for line in dot.splitlines() if line.strip().startswith("n2 "))
    assert f'bgcolor="{OP_FILL}"' in dense and "dense 32" in dense  # the op: blue
    assert f'bgcolor="{PARAM_FILL}"' in dense and "kernel 16×32 · bias 32" in dense and "544 params" in dense
    assert dot.count("// legend") == 1
    for word in ("input", "parameters", "operation", "9,322 params"):
        assert word in dot
    legend = next(line for line in dot.splitlines() if line.endswith("// legend"))
    assert legend.count("<tr>") == 1 and "fontsize=10" in legend  # one line in small print, above the drawing
    assert INPUT_FILL.upper() == "#FFFFFF"


def test_free_param_is_red(tmp_path: Path) -> None:
    f = tmp_path / "lin.net"
    f.write_text(
        "model Lin {\n  input x: f32[N, 3]\n  param w: [3, 2] = normal(0.1)\n  y = x @ w\n  output y\n}\n"
    )
    dot = dot_of(f)
    w = next(line for line in dot.splitlines() if "<b>w</b>" in line)
    assert f'bgcolor="{PARAM_FILL}"' in w and "6 params" in w and "3×2" in w


def test_edges_carry_shapes() -> None:
    dot = dot_of(BLOCKS)
    assert 'n0 -> n2 [label=" N×16 "]' in dot
    assert "i32" not in dot  # the labels input y is read only by the loss: not drawn
    assert " N×10 " not in dot  # the output has no outgoing edge


def test_shape_text() -> None:
    g = load(AUTODIFF).graph()
    assert shape_text(g.nodes[0].type) == "scalar"
    lstm = [p for p in SPECS if p.stem == "lstm_classifier"]
    if lstm:
        assert 'label=" i32 N×T "' in dot_of(lstm[0])  # the dtype is shown when it is not f32


def test_symbolic_sizes_in_shapes_are_parenthesised(tmp_path: Path) -> None:
    spec = tmp_path / "sym.net"
    spec.write_text(
        "model M {\n  input x: f32[N, H, W, 3]\n  y = x -> conv(8, 3) -> relu\n"
        "  z = x -> conv(8, 3, stride=2, padding=1) -> relu\n  u = x -> upsample(2) -> relu\n"
        "  v = x -> flatten -> relu\n  output y, z, u, v\n}\n"
    )
    dot = dot_of(spec)
    assert 'label=" N×H×W×3 "' in dot  # symbols and numbers bare
    assert "N×(H - 2)×(W - 2)×8" in dot and "H - 2×W" not in dot
    assert "N×(H + 1)/2×(W + 1)/2×8" in dot and "((H + 1)/2)" not in dot  # a division is not wrapped twice
    assert "N×(2*H)×(2*W)×3" in dot
    assert 'label=" N×(3*H*W) "' in dot


def test_conv_labels_show_groups_and_dilation(tmp_path: Path) -> None:
    spec = tmp_path / "convs.net"
    spec.write_text(
        "model M {\n  input x: f32[N, 32, 32, 24]\n  a = x -> conv(24, 3, stride=2, groups=24)\n"
        "  b = x -> conv(64, 3, dilation=2)\n  c = x -> conv(48, 3, groups=2, dilation=(2, 1))\n"
        "  d = x -> conv(24, 3, stride=2, dilation=(1, 1))\n  output a, b, c, d\n}\n"
    )
    dot = dot_of(spec)
    for label in ("conv 24@3×3 /2 g=24", "conv 64@3×3 d=2", "conv 48@3×3 g=2 d=2×1", "conv 24@3×3 /2<"):
        assert f"<b>{label}" in dot, label


def test_clusters_for_block_instances() -> None:
    dot = dot_of(BLOCKS)
    # Residual, its Affine, 3 repeat copies each with its Affine
    assert len(re.findall(r"subgraph cluster_\d+ \{", dot)) == 8
    assert "copy 2 of 3" in dot
    assert "<b>Affine 32</b>" in dot and "<b>Residual 32</b>" in dot  # the block and its arguments


def test_collapse_alone_is_collapse_all() -> None:
    """LANGUAGE.md §8 writes `specc dot FILE --collapse` with no name: it collapses every block (was a usage error,
    'requires an argument'). A name still names one block, and `--collapse` before another option takes no name."""
    code, alone, _ = run_cli("dot", BLOCKS, "--collapse")
    assert code == 0 and alone == run_cli("dot", BLOCKS, "--collapse", "all")[1]
    assert "<b>Residual ×3, 32</b>" in alone and "subgraph cluster_1" not in alone
    code, before_option, _ = run_cli("dot", BLOCKS, "--collapse", "--no-legend")
    assert code == 0 and len(boxes(before_option)) == len(boxes(alone))
    assert run_cli("dot", BLOCKS, "--collapse", "Residual")[0] == 0


def test_collapse_all_draws_repeat_once_with_badge() -> None:
    full, collapsed = dot_of(BLOCKS), dot_of(BLOCKS, collapse=("all",))
    assert len(boxes(collapsed)) < len(boxes(full))
    # x, dense, dense; each Residual a cluster of its main path, its `+` and the relu after it
    assert len(boxes(collapsed)) == 3 + 2 * 3
    assert "<b>Residual ×3, 32</b>" in collapsed and "<b>Residual 32</b>" in collapsed
    assert "subgraph cluster_1" not in collapsed  # no expanded block
    assert "6,336 params" in collapsed  # the three copies' parameters together
    assert collapsed.count('label="+"') == 2
    # the main path into the `+`, and the shortcut from the box before the block, through a point inside it
    assert "n2 -> g3p0 [" in collapsed and "g3p0 -> g3p1;" in collapsed
    assert "n2 -> g3s1 [arrowhead=none];" in collapsed and "g3s1 -> g3p1;" in collapsed


def test_collapse_by_block_name() -> None:
    dot = dot_of(BLOCKS, collapse=("Affine",))
    assert len(boxes(dot)) == len(boxes(dot_of(BLOCKS))) - 4  # each Affine: dense + relu → one box
    assert "<b>Affine 32</b>" in dot
    assert len(re.findall(r"subgraph cluster_\d+", dot)) == 4  # the Residuals stay clusters


def test_depth() -> None:
    assert dot_of(BLOCKS, depth=0) == dot_of(BLOCKS, collapse=("all",))
    d1 = dot_of(BLOCKS, depth=1)
    assert len(re.findall(r"subgraph cluster_\d+", d1)) == 4  # Residuals expanded, their Affines one box each
    assert len(boxes(d1)) == len(boxes(dot_of(BLOCKS, depth=2))) - 4


def test_auto_depth_for_big_graphs() -> None:
    resnet = spec_path("resnet18")
    auto, full = dot_of(resnet), dot_of(resnet, depth=99)
    assert len(boxes(auto)) < len(boxes(full))
    assert "<b>Identity ×2, 64</b>" in auto  # repeat(2, Identity(64))


def test_unknown_collapse_name() -> None:
    with pytest.raises(DotError, match="did you mean 'Affine'"):
        dot_of(BLOCKS, collapse=("Afine",))
    code, _, err = run_cli("dot", BLOCKS, "--collapse", "Afine")
    assert code == 2 and "Affine" in err


def test_options() -> None:
    assert "rankdir=TB" in dot_of(AUTODIFF) and "rankdir=LR" in dot_of(BLOCKS, rankdir="LR")  # small: TB
    no_shapes = dot_of(BLOCKS, shapes=False)
    assert "N×32" not in no_shapes.split("->", 1)[1] and "-> n2;" in no_shapes
    no_params = dot_of(BLOCKS, params=False)
    assert no_params.count(PARAM_FILL) == 1 and "544 params" not in no_params  # red in the legend only
    assert "legend" not in dot_of(BLOCKS, legend=False)
    with pytest.raises(DotError):
        DotOptions(rankdir="UP")


def test_cli_options_reach_the_drawing() -> None:
    code, out, _ = run_cli(
        "dot",
        BLOCKS,
        "--rankdir",
        "LR",
        "--no-shapes",
        "--no-params",
        "--no-legend",
        "--collapse",
        "Residual",
    )
    assert code == 0
    assert out == dot_of(
        BLOCKS, rankdir="LR", shapes=False, params=False, legend=False, collapse=("Residual",)
    )
    code, out, _ = run_cli("dot", BLOCKS, "--depth", "1")
    assert code == 0 and out == dot_of(BLOCKS, depth=1)


# ---- the idea of the network: skip edges, branches, arguments, slides -------------------------------------------


def _in_edges(dot: str, node: str) -> list[str]:
    return re.findall(rf"^\s*(\w+) -> {node}\b", dot, re.M)


def _cluster_of(dot: str, node: str) -> str:
    """The id of the collapsed block's cluster a part belongs to (`g6` for `g6p1`)."""
    return node.split("p")[0]


def test_resnet18_keeps_its_skip_edges() -> None:
    dot = dot_of(spec_path("resnet18"))
    joins = re.findall(r"^\s*(g\d+p\d+) \[shape=circle, label=\"\+\"", dot, re.M)
    assert len(joins) == 7  # Identity ×2, then Basic and Identity in each of the three later stages
    shortcuts = 0
    for j in joins:
        sources = _in_edges(dot, j)
        assert len(sources) == 2, (j, sources)  # the main path and the shortcut
        # an identity shortcut comes from outside the block (or a row's connector) into the `+`, through a point
        # inside the block that keeps it beside the main path
        for s in sources:
            if re.fullmatch(r"g\d+s\d+", s):
                (before,) = _in_edges(dot, s)
                assert _cluster_of(dot, before) != _cluster_of(dot, j)
                shortcuts += 1
    assert shortcuts == 4
    for label in ("Basic 128 /2", "Basic 256 /2", "Basic 512 /2", "Identity 128", "Identity ×2, 64"):
        assert f"<b>{label}</b>" in dot
    assert "conv 128@1×1 /2" in dot  # the projection shortcut: a small box on the skip path


def test_googlenet_keeps_its_branches() -> None:
    dot = dot_of(spec_path("googlenet"))
    concats = re.findall(r"^\s*(g\d+p\d+) \[label=<.*>concat<", dot, re.M)
    assert len(concats) == 9
    for c in concats:
        assert len(_in_edges(dot, c)) == 4  # four branches side by side into the concat
    assert "ConvBN 1×1, 96<br/>ConvBN 3×3, 128" in dot  # the 3×3 branch of the first inception module
    assert "<b>ConvBN 3×3, 192</b>" in dot and "<b>ConvBN 7×7, 64 /2</b>" in dot
    assert "i3.Inception" not in dot and "stem.ConvBN" not in dot  # no internal paths


def test_vgg16_stage_labels() -> None:
    dot = dot_of(spec_path("vgg16"))
    assert "<b>Conv3 ×2, 64</b>" in dot and "<b>Conv3 ×3, 512</b>" in dot
    assert "<b>ConvStage 128, 2</b>" in dot and "f.ConvStage" not in dot


def test_block_structure_is_read_from_the_graph(tmp_path: Path) -> None:
    """Any block with parallel paths keeps them, whatever its name: ops before the fork and after the join are
    chains, each path between them a branch; a block with one path stays one box."""
    f = tmp_path / "s.net"
    f.write_text(
        "block Fan(w) {\n  input x: [N, F]\n  h = x -> dense(w) -> relu\n  a = h -> dense(w)\n"
        "  b = h -> dense(w) -> tanh -> dense(w)\n  y = concat(a, b, h, axis=-1) -> dense(w)\n  output y\n}\n"
        "block Plain(w) {\n  input x: [N, F]\n  y = x -> dense(w) -> relu\n  output y\n}\n"
        "model M {\n  input x: f32[N, 8]\n  y = x -> Fan(4) -> Plain(4)\n  output y\n}\n"
    )
    g = load(f).graph()
    fan = [n for n in g.nodes if n.scope and n.scope[0].block == "Fan"]
    st = block_structure(fan, 0)
    assert st is not None
    assert [p.kind for p in st.parts] == ["chain", "branch", "branch", "join", "chain"]
    assert [len(p.units) for p in st.parts] == [2, 1, 3, 1, 1]
    assert block_structure([n for n in g.nodes if n.scope and n.scope[0].block == "Plain"], 0) is None
    dot = dot_of(f, depth=0)
    (concat,) = re.findall(r"^\s*(g\d+p3) \[label=<.*>concat<", dot, re.M)
    assert len(_in_edges(dot, concat)) == 3  # two branches and the identity path (through its point)
    assert "dense 4<br/>dense 4" in dot  # the tanh between them left out of the branch's box
    assert "<b>Plain 4</b>" in dot


@needs_dot
@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_default_fits_a_slide(spec: Path) -> None:
    """The size rule of docs/dot.md, measured by Graphviz (its PNG at 96 dpi is the layout plus a 4 pt pad)."""
    out = subprocess.run(["dot", "-Tplain"], input=dot_of(spec).encode(), capture_output=True, check=False)
    assert out.returncode == 0 and out.stderr.decode().strip() == "", out.stderr.decode()
    _, _, w, h = out.stdout.decode().split("\n", 1)[0].split()
    width, height = (float(w) + 8 / 72) * 96, (float(h) + 8 / 72) * 96
    assert fits_slide(width, height), f"{spec.name}: {width:.0f}×{height:.0f} px"


def test_wrap_rows_and_connectors() -> None:
    wrapped = dot_of(BLOCKS, wrap=True, depth=0)
    rows = re.findall(r"subgraph cluster_row(\d+)", wrapped)
    assert len(rows) >= 2 and "rankdir=LR" in wrapped
    marks = re.findall(r'^\s*(w\d+)[io] \[shape=circle, label="([A-Z])"', wrapped, re.M)
    assert len(marks) == 2 * (len(rows) - 1)  # a connector at the end of a row, its twin at the next's start
    assert "rank=same" in wrapped
    big = dot_of(spec_path("resnet18"), wrap=False)
    assert "cluster_row" not in big and "rankdir=TB" in big
    assert "cluster_row" not in dot_of(AUTODIFF)  # small drawings are not wrapped


def test_block_alone() -> None:
    code, dot, err = run_cli("dot", spec_path("resnet18"), "--block", "Basic")
    assert code == 0, err
    assert "<b>Basic 128 /2</b>" in dot  # the arguments of its first call
    assert 'label=" N×H×W×64 "' in dot  # a symbolic input: only the channels an op needs are numbers
    assert "N×(H + 1)/2×(W + 1)/2×128" in dot
    assert "230,144 params" in dot
    code, _, err = run_cli("dot", spec_path("resnet18"), "--block", "Basci")
    assert code == 2 and "did you mean 'Basic'" in err and "Identity" in err


def test_block_alone_whose_call_passes_a_quote_or_a_backslash(tmp_path: Path) -> None:
    """`--block B` rebuilt the first call's arguments as text without escaping a string's `"` or `\\`: a valid
    spec failed with a syntax error in `<block B>`."""
    f = tmp_path / "q.net"
    f.write_text(
        "block B(tag) {\n  input x: [N, F]\n  y = x -> dense(4)\n  output y\n}\n"
        'model M {\n  input x: f32[N, 8]\n  y = x -> B("say \\"hi\\" \\\\")\n  output y\n}\n'
    )
    code, dot, err = run_cli("dot", f, "--block", "B")
    assert code == 0, err
    assert "dense 4" in dot


def test_block_with_defaults_is_drawn_without_a_model(tmp_path: Path) -> None:
    f = tmp_path / "b.net"
    f.write_text(
        "block Res(f=8) {\n  input x: [N, F]\n  h = x -> dense(f)\n  y = relu(h + x)\n  output y\n}\n"
        "model M {\n  input x: f32[N, 8]\n  y = x -> dense(8)\n  output y\n}\n"
    )
    code, _, err = run_cli("dot", f, "--block", "Res")
    assert code == 2 and "x: [N, F]" in err and "call it from the model" in err  # dense needs F as a number
    f.write_text(f.read_text().replace("[N, F]", "[N, 8]"))
    code, dot, err = run_cli("dot", f, "--block", "Res")
    assert code == 0, err
    assert "<b>Res</b>" in dot and "dense 8" in dot and 'label="+"' not in dot  # drawn in full


@needs_dot
def test_dpi(tmp_path: Path) -> None:
    def size(png: Path) -> tuple[int, int]:
        head = png.read_bytes()[16:24]
        return int.from_bytes(head[:4], "big"), int.from_bytes(head[4:], "big")

    assert run_cli("dot", AUTODIFF, "-o", tmp_path / "a.png")[0] == 0
    assert run_cli("dot", AUTODIFF, "-o", tmp_path / "b.png", "--dpi", "192")[0] == 0
    (w1, h1), (w2, h2) = size(tmp_path / "a.png"), size(tmp_path / "b.png")
    assert abs(w2 - 2 * w1) <= 4 and abs(h2 - 2 * h1) <= 4
    code, _, err = run_cli("dot", BLOCKS, "-o", tmp_path / "c.svg", "--dpi", "192")
    assert code == 2 and "PNG" in err


# ---- files -----------------------------------------------------------------------------------------------------


@needs_dot
@pytest.mark.parametrize(
    ("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG\r\n\x1a\n"), (".pdf", b"%PDF")]
)
def test_output_formats(tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = tmp_path / f"g{suffix}"
    code, _, err = run_cli("dot", BLOCKS, "-o", out)
    assert code == 0, err
    assert out.read_bytes().startswith(magic)
    if suffix == ".svg":
        assert b"<svg" in out.read_bytes()


def test_dot_file_and_compile_emit(tmp_path: Path) -> None:
    code, _, _ = run_cli("dot", BLOCKS, "-o", tmp_path / "g.dot")
    assert code == 0 and (tmp_path / "g.dot").read_text(encoding="utf-8") == dot_of(BLOCKS)
    code, out, _ = run_cli("compile", BLOCKS, "--emit", "dot")
    assert code == 0 and out == dot_of(BLOCKS)
    code, _, err = run_cli("dot", BLOCKS, "-o", tmp_path / "g.jpeg")
    assert code == 2 and ".svg" in err


def test_missing_dot_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run_cli("dot", BLOCKS, "-o", tmp_path / "g.svg")
    assert code == 2
    assert "Graphviz" in err and "apt-get install graphviz" in err and "brew install graphviz" in err
    assert not (tmp_path / "g.svg").exists()
    code, out, _ = run_cli("dot", BLOCKS)  # DOT text needs no Graphviz
    assert code == 0 and out.startswith("digraph")
    assert load(BLOCKS)._repr_svg_() is None


# ---- the Python API --------------------------------------------------------------------------------------------


def test_spec_to_dot_and_repr_svg() -> None:
    spec = load(BLOCKS)
    assert spec.to_dot() == to_dot(spec.graph(), DotOptions())
    assert spec.to_dot(collapse="all") == dot_of(BLOCKS, collapse=("all",))
    if HAVE_DOT:
        svg = spec._repr_svg_()
        assert svg is not None and "<svg" in svg and "dense 32" in svg


def test_plain_mode_does_not_import_jax() -> None:
    code = (
        "import sys\n"
        "from specc.cli import main\n"
        f"main(['dot', {str(BLOCKS)!r}], standalone_mode=False)\n"
        f"main(['dot', {str(BLOCKS)!r}, '--block', 'Residual', '--wrap'], standalone_mode=False)\n"
        f"from specc.spec import load; load({str(AUTODIFF)!r}).to_dot()\n"
        "assert 'jax' not in sys.modules, 'plain DOT imported jax'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("digraph")


# ---- computational-graph mode ----------------------------------------------------------------------------------


def _annotations(dot: str) -> dict[str, tuple[float, float]]:
    """name → (value, ∂z/∂name) read back from the drawn labels."""
    out = {}
    for line in dot.splitlines():
        v = re.search(r'"#1B5E20">= ([-0-9.e]+)<', line)
        g = re.search(r"∂z/∂(\w+) = ([-0-9.e]+)<", line)
        if v and g:
            out[g.group(1)] = (float(v.group(1)), float(g.group(2)))
    return out


def test_values_and_gradients() -> None:
    code, dot, err = run_cli("dot", AUTODIFF, "--values", "x1=2,x2=3", "--grad", "z")
    assert code == 0, err
    ann = _annotations(dot)
    assert set(ann) == {"x1", "x2", "a", "b", "z"}
    assert ann["b"][0] == pytest.approx(6, abs=1e-3)  # x1·x2
    assert ann["a"][0] == pytest.approx(0.909, abs=1e-3)  # sin x1
    assert ann["z"] == pytest.approx((6.909, 1.0), abs=1e-3)
    assert ann["x1"][1] == pytest.approx(2.584, abs=1e-3)  # cos 2 + 3
    assert ann["x2"][1] == pytest.approx(2.0, abs=1e-3)
    assert ann["a"][1] == pytest.approx(1.0) and ann["b"][1] == pytest.approx(1.0)


def test_values_without_grad_and_api() -> None:
    g = load(AUTODIFF).graph()
    ann = evaluate(g, {"x1": 0.0, "x2": 5.0}, "z")
    z = next(n for n in g.nodes if n.name == "z")
    assert float(ann.values[z.id]) == pytest.approx(0.0)
    assert float(ann.grads[g.input_map["x1"]]) == pytest.approx(6.0)  # cos 0 + 5
    dot = load(AUTODIFF).to_dot(values="x1=2,x2=3")
    assert "= 6.909" in dot and "∂" not in dot


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--values", "x1=2"), "no value for x2; model Autodiff takes x1: f32[], x2: f32[]"),
        (("--values", "x1=2,x2=3,x3=4"), "x3 is not an input"),
        (("--values", "x1=2,x2=three"), "NAME=NUMBER"),
        (("--values", "x1=2,x2=3", "--grad", "zz"), "did you mean 'z'"),
        (("--grad", "z"), "--grad needs --values"),
        # float() reads these: the graph was drawn with NaN and inf on every node; a repeated name kept the last
        (("--values", "x1=nan,x2=3"), "--values: 'x1=nan' is not a finite number"),
        (("--values", "x1=1e999,x2=3"), "--values: 'x1=1e999' is not a finite number"),
        (("--values", "x1=2,x2=3,x1=4"), "--values: x1 is given twice"),
    ],
)
def test_values_errors(args: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli("dot", AUTODIFF, *args)
    assert code == 2
    assert message in err


def test_values_need_scalar_inputs() -> None:
    code, _, err = run_cli("dot", BLOCKS, "--values", "x=1,y=2")
    assert code == 2 and "input x is f32[N, 16]" in err


def test_connectors_name_one_value_each_in_reading_order(tmp_path: Path) -> None:
    """A U-Net drawn in rows: the skips of several encoder rows enter the decoder's rows. Each pair of connectors
    has its own letter (three values leaving for one row once shared a letter: which Ⓒ fed the deconv?), and the
    letters run in reading order: by the row a value leaves, then the row it enters."""
    enc = "\n".join(
        f"  s{i} = {'x' if i == 0 else f's{i - 1}'} -> conv({8 << i}, 3, padding=1) -> relu -> conv({8 << i}, 3, "
        f"padding=1) -> relu -> maxpool(2)"
        for i in range(4)
    )
    dec = "\n".join(
        f"  d{i} = {'s3' if i == 3 else f'u{i + 1}'} -> conv_transpose({8 << i}, 2, stride=2)\n"
        f"  k{i} = {'x' if i == 0 else f's{i - 1}'} -> conv({8 << i}, 1)\n"
        f"  u{i} = concat(d{i}, k{i}, axis=-1) -> conv({8 << i}, 3, padding=1) -> relu"
        for i in range(3, -1, -1)
    )
    spec = tmp_path / "u.net"
    spec.write_text(f"model U {{\n  input x: f32[N, 64, 64, 3]\n{enc}\n{dec}\n  output u0\n}}\n")
    wrapped = dot_of(spec, wrap=True)
    pairs: dict[str, set[str]] = {}
    for cid, end, mark in re.findall(r'^\s*(w\d+)([io]) \[shape=circle, label="([A-Z]+)"', wrapped, re.M):
        pairs.setdefault(mark, set()).add(cid + end)
    assert len(pairs) >= 3 and all(len(ends) == 2 for ends in pairs.values()), pairs  # one o, one i a letter
    assert all(len({e[:-1] for e in ends}) == 1 for ends in pairs.values())
    row_of = {}  # each connector's row: the cluster it is written in
    for row, body in re.findall(r"subgraph cluster_row(\d+) \{(.*?)\n  \}", wrapped, re.S):
        for cid, end in re.findall(r"(w\d+)([io]) \[", body):
            row_of[cid + end] = int(row)
    order = sorted(pairs, key=lambda m: (len(m), m))

    def row(mark: str, end: str) -> int:
        return row_of[next(e for e in pairs[mark] if e.endswith(end))]

    leaves = [(row(m, "o"), row(m, "i")) for m in order]
    assert leaves == sorted(leaves), leaves


def test_a_growth_rate_named_k_is_not_drawn_as_a_window() -> None:
    """DenseNet's `DenseLayer(k)` (the growth rate, 32) was labelled `DenseLayer ×6, 32×32`, a 32×32 conv on a
    slide; EfficientNet's `k` is its kernel and stays a window."""
    by_stem = {p.stem: p for p in SPECS}
    code, dot, err = run_cli("dot", by_stem["densenet121"], "--collapse")
    assert code == 0, err
    assert "DenseLayer ×6, 32<" in dot and "32×32" not in dot
    code, dot, err = run_cli("dot", by_stem["efficientnet_b0"], "--collapse")
    assert code == 0, err
    assert "MBConv 3×3, 6, 24 /2" in dot and "MBConv 5×5" in dot
