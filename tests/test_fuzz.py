"""The fuzzer (tests/fuzz.py) with a fixed seed: generated programs, zoo mutants and YAML twins through `check`,
some through XLA, with no finding. The nightly-style run is `python -m tests.fuzz --minutes 30` (docs/fuzzing.md).
"""

from __future__ import annotations

from fuzz import fuzz  # tests/ is on sys.path (rootdir-style imports, like test_lower)

SEED = 20260601
CASES = 300  # about 30 s on one busy core
COMPILES = 20
# generous: on a loaded CI machine a case may be slow without hanging; the fuzzer's own 10 s limit is for
# `python -m tests.fuzz`, where a slow case is reported as a finding to look at, not a test failure
PER_CASE_S = 60


def test_a_fixed_seed_finds_nothing() -> None:
    stats = fuzz(SEED, cases=CASES, compile_every=3, max_compiles=COMPILES, limit_s=PER_CASE_S)
    report = "\n\n".join(f"{f.what}\n{f.case.text[:800]}\n{f.detail[-1500:]}" for f in stats.findings[:3])
    assert not stats.findings, (
        f"{len(stats.findings)} findings; replay with python -m tests.fuzz --seed {SEED} "
        + (f"--first <case> --cases 1\n\n{report}")
    )
    # the generator reaches every stage: some cases check, some of those compile, every source is drawn
    assert stats.checked > CASES // 10 and stats.compiled > 0, stats
    assert set(stats.by_source) >= {"program", "mutant", "yaml"}, stats.by_source
