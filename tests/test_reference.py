"""The reference: `specc ops`, `specc data`, docs/ops.md and docs/data.md generated from the registries, and every
document the code names exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from specc.cli import main
from specc.ops._registry import all_ops
from specc.reference import data_markdown, documents, example, ops_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_committed_reference_documents_are_current() -> None:
    for path, text in documents().items():
        assert path.read_text() == text, f"{path} is stale: run `python -m specc.reference`"


def test_every_op_and_data_set_is_in_the_reference() -> None:
    ops, data = ops_markdown(), data_markdown()
    for name in all_ops():
        assert f"### `{name}(" in ops
    for name in ("digits", "moons", "sine_windows", "csv", "mnist", "cifar10"):
        assert f"### `{name}(" in data
    assert all(op.doc for op in all_ops().values()), "every op needs a one-line doc"


def test_examples_are_computed_by_the_shape_rules() -> None:
    ex = example(all_ops()["dense"])
    assert (
        ex is not None
        and str(ex.outputs[0]) == "f32[N, 16]"
        and ex.params == {"kernel": (64, 16), "bias": (16,)}
    )
    assert "kernel [3, 3, 3, 16] + bias [16] = 448" in CliRunner().invoke(main, ["ops", "conv"]).output


def test_cli_ops_and_data() -> None:
    runner = CliRunner()
    r = runner.invoke(main, ["ops"])
    assert r.exit_code == 0 and "layernorm" in r.output and "attention" in r.output
    r = runner.invoke(main, ["ops", "conx"])
    assert r.exit_code == 2 and "did you mean 'conv'" in r.output
    r = runner.invoke(main, ["data", "moons"])
    assert r.exit_code == 0 and "moons(n=1000, noise=0.1)" in r.output
    assert runner.invoke(main, ["data", "mnst"]).exit_code == 2


def test_ops_of_a_pytorch_name_points_at_specc_s() -> None:
    """`specc ops Linear` (the lecturer reads a PyTorch listing) said only "no op named 'Linear'", and `specc ops
    LSTM` too; now the op to look up, exit 2 as before."""
    for name, advice in [
        ("Linear", "Linear (PyTorch/Keras) is `dense` in specc"),
        ("Dropout2d", "Dropout2d (PyTorch/Keras) is `dropout(rate, per=channel)` in specc"),
        ("LSTM", "did you mean 'lstm'?"),
    ]:
        r = CliRunner().invoke(main, ["ops", name])
        assert r.exit_code == 2 and f"no op named '{name}'; {advice}" in r.output


def test_reference_commands_do_not_import_jax() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom specc.cli import main\n"
        "for args in (['ops'], ['ops', 'conv'], ['data'], ['data', 'digits']):\n"
        "    assert CliRunner().invoke(main, args).exit_code == 0\n"
        "heavy = sorted(m for m in ('jax', 'jaxlib', 'flax', 'optax') if m in sys.modules)\n"
        "assert not heavy, heavy\nprint('no jax')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False)
    assert "no jax" in r.stdout, r.stderr


def test_every_document_the_code_names_exists() -> None:
    named = set()
    for f in (ROOT / "specc").rglob("*.py"):
        named |= set(re.findall(r"\bdocs/[\w./-]+\.md\b", f.read_text()))
    assert named, "the code names no documents?"
    missing = sorted(d for d in named if not (ROOT / d).exists())
    assert not missing, missing


def test_language_md_links_only_to_files_in_the_repository() -> None:
    text = (ROOT / "docs/language.md").read_text()
    assert "../shared" not in text
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / "docs" / target).exists(), target
    for target in re.findall(r"`(docs/[\w./-]+)`", text):
        assert (ROOT / target).exists(), target


def test_check_takes_several_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.net"
    bad.write_text("model M {\n  input x: [N, 3]\n  y = x -> dense(k)\n  output y\n}\n")
    mlp = str(ROOT / "specs/mlp.net")
    r = CliRunner().invoke(main, ["check", mlp, str(bad), str(ROOT / "specs/lenet5.net")])
    assert r.exit_code == 1
    assert "model MLP: ok" in r.output and "model LeNet5: ok" in r.output and "bad.net:3:" in r.output
    assert "1 of 3 files failed" in r.output
    assert CliRunner().invoke(main, ["check", mlp, str(ROOT / "specs/lenet5.net")]).exit_code == 0
