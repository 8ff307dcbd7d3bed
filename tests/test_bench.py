"""The benchmark suite's machinery (`python -m bench`), smoke-tested cheaply: the MLP on the embedded digits, two
epochs, specc and the hand-written Flax model called in this process; timings are never asserted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # bench/ lives next to specc/, outside the installed package
    sys.path.insert(0, str(ROOT))

from bench.report import BEGIN, END, markdown, rows, targets, write_docs  # noqa: E402
from bench.suite import run_suite  # noqa: E402


@pytest.fixture(scope="module")
def results():  # type: ignore[no-untyped-def]
    lines: list[str] = []
    out = run_suite(
        ["mlp"], ["specc", "flax"], rounds=1, epochs=2, data="digits", say=lines.append, in_process=True
    )
    return out, lines


def test_a_target_missed_by_less_than_the_rounding_shows_the_digits_that_miss_it() -> None:
    from types import SimpleNamespace

    ratios = {"flax": 1.003, "torch": 0.6949}
    r = SimpleNamespace(model="transformer", ratio=ratios.get, contenders={})
    assert targets([r]) == [  # type: ignore[list-item]
        "met: transformer specc / PyTorch 0.69 (≤ 1.0)",
        "**not met**: transformer specc / Flax 1.0030 (≤ 1.0)",
    ]


def test_the_suite_reports_each_contender_on_the_same_model(results) -> None:  # type: ignore[no-untyped-def]
    (mlp,), lines = results
    assert mlp.model == "mlp" and mlp.params == 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert len(lines) == 2 and all("mlp" in line for line in lines)
    specc_, flax_ = mlp.contenders["specc"], mlp.contenders["flax"]
    for s in (specc_, flax_):
        assert len(s.steady) == 1 and len(s.first) == 1 and s.median is not None
        assert s.first[0] > s.steady[0] > 0 and s.rss_mb > 0
        assert 0.5 < (s.accuracy or 0) <= 1  # two epochs of SGD on the digits learn something
    assert flax_.params == mlp.params
    # the hand-written model starts from specc's own initial parameters: the same loss before training
    assert flax_.initial_loss == pytest.approx(mlp.initial_loss, abs=1e-5)
    # and, trained on the same batches, ends within a couple of validation images of specc
    assert abs((specc_.accuracy or 0) - (flax_.accuracy or 0)) <= 0.01
    assert mlp.ratio("flax") == pytest.approx(specc_.steady[0] / flax_.steady[0])
    assert mlp.ratio("torch") is None


def test_the_docs_section_is_replaced_between_its_markers(results, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out, _ = results
    (row,) = rows(out)
    assert row[0] == "MLP 784-256-256-10" and row[1] == "269,322" and row[-1] == "–"
    section = markdown(out, "python -m bench --quick", "0.1", "0.2", 1, 2, "digits")
    assert "| MLP 784-256-256-10 | 269,322 |" in section and "threads, specc:" in section
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nintro\n\n## Training speed\n\nhand-written\n\n## Big graphs\n\nlast\n")
    write_docs(docs, section)
    once = docs.read_text()
    write_docs(docs, section.replace("269,322", "0"))
    twice = docs.read_text()
    assert once.count(BEGIN) == twice.count(BEGIN) == 1 and twice.count(END) == 1
    assert once.index("intro") < once.index(BEGIN) < once.index(END) < once.index("## Training speed")
    assert "| 0 |" in twice and "269,322" not in twice
    assert twice.endswith("## Big graphs\n\nlast\n") and "hand-written" in twice


def test_the_step_profile_names_each_operation_and_what_it_computes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench.profile_step import describe, main

    assert main(["--models", "mlp", "--steps", "2", "--top", "4"]) == 0
    out = capsys.readouterr().out
    assert "mlp: batch 100 on 1 device(s)" in out
    rows = [
        line.split() for line in out.splitlines() if line.startswith("  ") and "all operations" not in line
    ]
    assert len(rows) == 4 and all(float(r[1]) >= 0 for r in rows)
    # the MLP's step is its matmuls: the busiest operations are dots, read from the optimized HLO
    assert any(r[-1] == "dot" for r in rows), out
    hlo = (
        "%fused_computation.3 (p: f32[4,4]) -> f32[4,4] {\n"
        "  ROOT %convolution.1 = f32[4,4]{1,0} convolution(%p, %p), window={size=3x3 pad=1_1x1_1}\n"
        "}\n"
        "  %ynn_fusion.3 = f32[4,4]{1,0} fusion(%a, %b), kind=kCustom, calls=%fused_computation.3\n"
        "  %all-reduce.2 = (f32[16]{0}, f32[16]{0}) all-reduce(%x, %y), channel_id=2\n"
    )
    assert describe(hlo, "ynn_fusion.3") == "f32[4,4]{1,0} convolution window={size=3x3 pad=1_1x1_1}"
    assert describe(hlo, "all-reduce.2") == "(f32[16]{0}, f32[16]{0}) all-reduce"
    assert describe(hlo, "missing.1") == ""
