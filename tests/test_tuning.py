"""`--lowering measure`: each op's lowerings timed once per (op, attributes, shapes, machine), the choice kept in
lowerings.json in specc's cache folder and reused by every later build (specc/backend/tuning.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pytest

import specc
from specc.backend import tuning
from specc.backend.flax import build_module, choose_lowering, graph_compiler_options, lowering_names
from specc.backend.tuning import CACHE_FILE, MeasuredLowerings

# a conv with one channel in (the CPU rule: im2col_t), batch norm (fused; its statistics are state the timed
# program updates), a tiled max-pool, and a conv as large as its map (dense)
SPEC = """
model Small {
  input x: f32[N, 12, 12, 1]
  h = x -> conv(4, 3) -> batchnorm -> relu -> maxpool(2)
  y = h -> conv(8, 5) -> flatten
  output y
}
"""
# batch norm and a max-pool on the 8×8 digits, trained by `specc train` twice: no conv, whose measuring the tests
# above check in this process
TRAIN_SPEC = """
model Small {
  input x: f32[N, 8, 8, 1]
  input y: i32[N]
  h = x -> batchnorm -> maxpool(2)
  logits = h -> flatten -> dense(32) -> relu -> dense(10)
  output logits
}
train {
  data = digits(image=true, split=0.8)
  loss = cross_entropy(logits, y)
  optimizer = sgd(lr=0.05, momentum=0.9)
  batch = 40
  epochs = 2
  metrics = [accuracy(logits, y)]
}
"""


def _graph() -> Any:
    return specc.load("t.net", text=SPEC).graph()


def _choices(folder: Path) -> dict[str, Any]:
    data = json.loads((folder / CACHE_FILE).read_text())
    assert data["format"] == tuning.FORMAT
    return data["choices"]  # type: ignore[no-any-return]


def _op_names(module: Any) -> dict[str, str]:
    """node name → lowering, for the four ops with alternatives (two convs, batch norm, a max-pool)."""
    ops = {s.name for s in module.plan.steps if s.node.op in ("conv", "batchnorm", "maxpool")}
    return {k: v for k, v in lowering_names(module).items() if k in ops}


def _last_form_fastest(
    op: Any, node: Any, types: Any, shapes: Any, candidates: Any, env: Any, devices: int, options: Any = None
) -> dict[str, float]:
    """Stands in for time_lowerings: the last form that applies is the fastest, so the choices differ from the
    CPU rule's (the shifted weight gradient for a stride-1 conv, slices for a max-pool)."""
    times = {lw.name: 1.0 for lw in candidates}
    times[candidates[-1].name] = 0.1
    return times


def _rule_fastest(
    op: Any, node: Any, types: Any, shapes: Any, candidates: Any, env: Any, devices: int, options: Any = None
) -> dict[str, float]:
    """Stands in for time_lowerings: the CPU rule's form is the fastest."""
    times = {lw.name: 1.0 for lw in candidates}
    times[choose_lowering(node, types, "cpu").name] = 0.1
    return times


@pytest.fixture
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ops timed by _last_form_fastest instead of the clock (one test below times them for real)."""
    monkeypatch.setattr(tuning, "time_lowerings", _last_form_fastest)


def test_measured_once_then_read_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    chosen = _op_names(build_module(_graph(), choose=first))
    assert first.measured == 4 and first.reused == 0 and first.seconds > 0
    entries = list(_choices(tmp_path).values())
    assert len(entries) == 4
    for entry in entries:
        times = entry["median_ms"]
        assert "reference" in times and len(times) >= 2 and all(t > 0 for t in times.values())
        fastest = min(times, key=times.__getitem__)
        # the reference stays unless an alternative takes under MARGIN of its time
        want = fastest if times[fastest] < tuning.MARGIN * times["reference"] else "reference"
        assert entry["choice"] == want
    assert sorted(chosen.values()) == sorted(e["choice"] for e in entries)

    # a second build (another process would do the same) times nothing and makes the same choices
    def no_timing(*args: Any) -> dict[str, float]:
        raise AssertionError("timed again")

    monkeypatch.setattr(tuning, "time_lowerings", no_timing)
    second = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    assert _op_names(build_module(_graph(), choose=second)) == chosen
    assert second.measured == 0 and second.reused == 4
    assert "4 from the cache" in second.describe()


def test_another_batch_is_measured_again(tmp_path: Path, quick: None) -> None:
    build_module(_graph(), choose=MeasuredLowerings("cpu", {"N": 8}, tmp_path))
    other = MeasuredLowerings("cpu", {"N": 16}, tmp_path)
    build_module(_graph(), choose=other)
    assert other.measured == 4 and len(_choices(tmp_path)) == 8


def test_a_choice_timed_with_other_lowering_code_is_timed_again(
    tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached timing is of the forms' code at the time (tuning.FORMS_REVISION is in its key): after a form's code
    changes, the choice is timed afresh, not obeyed."""
    build_module(_graph(), choose=MeasuredLowerings("cpu", {"N": 8}, tmp_path))
    monkeypatch.setattr(tuning, "FORMS_REVISION", tuning.FORMS_REVISION + 1)
    again = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    build_module(_graph(), choose=again)
    assert again.measured == 4 and again.reused == 0 and len(_choices(tmp_path)) == 8


def test_a_form_added_since_is_timed(tmp_path: Path, quick: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forms timed are in a cached timing's key: an op that has gained a form since is timed again (with it),
    the others are reused."""
    import dataclasses

    from specc.ops._registry import REGISTRY, get_op

    build_module(_graph(), choose=MeasuredLowerings("cpu", {"N": 8}, tmp_path))
    pool = get_op("maxpool")
    assert pool is not None
    added = dataclasses.replace(
        pool.lowerings[0], name="added", when=lambda a, t, p: False, applies=lambda a, t: True
    )
    monkeypatch.setitem(REGISTRY, "maxpool", dataclasses.replace(pool, lowerings=(*pool.lowerings, added)))
    again = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    build_module(_graph(), choose=again)
    assert again.measured == 1 and again.reused == 3
    timed = [e["median_ms"] for k, e in _choices(tmp_path).items() if "added" in json.loads(k)[-1]]
    assert len(timed) == 1 and "added" in timed[0]


def test_the_cached_choice_is_obeyed(tmp_path: Path, quick: None) -> None:
    build_module(_graph(), choose=MeasuredLowerings("cpu", {"N": 8}, tmp_path))
    path = tmp_path / CACHE_FILE
    data = json.loads(path.read_text())
    for key, entry in data["choices"].items():  # every op: the slowest form it was timed with
        times = entry["median_ms"]
        entry["choice"] = max(times, key=times.__getitem__)
        if "conv" in json.loads(key) and "im2col" in times:
            entry["choice"] = "im2col"
    path.write_text(json.dumps(data))
    module = build_module(_graph(), choose=MeasuredLowerings("cpu", {"N": 8}, tmp_path))
    names = _op_names(module)
    assert sorted(names.values()) == sorted(e["choice"] for e in data["choices"].values())
    assert list(names.values()).count("im2col") == 2
    # whichever forms run, the model computes what the reference lowerings compute
    x = np.random.default_rng(0).normal(size=(8, 12, 12, 1)).astype(np.float32)
    ref = build_module(_graph(), platform="reference")
    np.testing.assert_allclose(module(x=x)["y"], ref(x=x)["y"], rtol=1e-5, atol=1e-5)


def test_the_reference_stays_unless_an_alternative_is_clearly_faster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def timed(
        op: Any, node: Any, types: Any, shapes: Any, candidates: Any, env: Any, devices: int, options: Any
    ) -> Any:
        times = {lw.name: 1.0 for lw in candidates}
        times[candidates[-1].name] = speed
        return times

    monkeypatch.setattr(tuning, "time_lowerings", timed)
    for speed, kept in ((0.97, True), (0.5, False)):
        folder = tmp_path / str(speed)
        names = _op_names(build_module(_graph(), choose=MeasuredLowerings("cpu", {"N": 8}, folder)))
        assert (set(names.values()) == {"reference"}) == kept


def test_an_unreadable_cache_is_measured_again_and_rewritten(tmp_path: Path, quick: None) -> None:
    (tmp_path / CACHE_FILE).write_text("{not json")
    chooser = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    build_module(_graph(), choose=chooser)
    assert chooser.measured == 4 and len(_choices(tmp_path)) == 4
    assert not [p for p in tmp_path.iterdir() if p.name != CACHE_FILE]  # no temporary file left behind


def test_without_a_cache_folder_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tuning, "time_lowerings", _rule_fastest)  # so no model is timed either
    monkeypatch.setenv("SPECC_CACHE_DIR", "")
    monkeypatch.chdir(tmp_path)
    chooser = tuning.measured_lowerings(_graph(), 8)
    build_module(_graph(), choose=chooser)
    assert chooser.measured == 4 and "not remembered" in chooser.describe()
    assert list(tmp_path.iterdir()) == []


def test_free_sizes_and_integer_inputs_keep_the_rule(tmp_path: Path) -> None:
    # N unbound: no concrete shapes to time, so each op takes the CPU rule's form
    chooser = MeasuredLowerings("cpu", {}, tmp_path)
    assert lowering_names(build_module(_graph(), choose=chooser)) == lowering_names(
        build_module(_graph(), platform="cpu")
    )
    # a max-pool of integers has no backward to time
    g = specc.load(
        "t.net", text="model M {\n input x: i32[N, 8, 8, 4]\n y = x -> maxpool(2)\n output y\n}"
    ).graph()
    ints = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    assert lowering_names(build_module(g, choose=ints)) == {"y": "tiled"}
    assert chooser.measured == ints.measured == 0 and not (tmp_path / CACHE_FILE).exists()


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="the banner's split line is the CPU's")
def test_train_measures_on_the_first_run_and_reads_the_cache_on_the_second(tmp_path: Path) -> None:
    spec = tmp_path / "small.net"
    spec.write_text(TRAIN_SPEC)
    env = {**os.environ, "SPECC_CACHE_DIR": str(tmp_path / "cache")}
    banners = []
    for run in ("one", "two"):
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "specc",
                "train",
                str(spec),
                "--lowering",
                "measure",
                "--out",
                str(tmp_path / run),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env=env,
        )
        assert r.returncode == 0, r.stdout + r.stderr
        banners.append(next(line for line in r.stderr.splitlines() if line.startswith("lowerings measured")))
        rows = [json.loads(x) for x in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        epochs = [x for x in rows if "val_loss" in x]
        assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert banners[0].startswith("lowerings measured: 2 op shape(s) timed, 0 from the cache")
    assert banners[1].startswith("lowerings measured: 0 op shape(s)") and "2 from the cache" in banners[1]
    assert str(tmp_path / "cache" / CACHE_FILE) in banners[1]
    # the train step went to JAX's persistent cache, the programs that timed the forms did not
    programs = [p.name for p in (tmp_path / "cache").iterdir()]
    assert any(p.startswith("jit_train_step") for p in programs)
    assert not [p for p in programs if p.startswith("jit_loss")]


@pytest.mark.parametrize("faster", ["measured", "rule"])
def test_the_whole_model_decides_where_the_forms_differ_from_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, faster: str
) -> None:
    monkeypatch.setattr(tuning, "time_lowerings", _last_form_fastest)
    timed: list[str] = []

    def time_models(
        graph: Any, choosers: Any, platform: str, env: Any, devices: int, options: Any = None
    ) -> dict[str, float]:
        timed.append(platform)
        return {"measured": 1.0, "rule": 1.0, faster: 0.5}

    monkeypatch.setattr(tuning, "time_models", time_models)
    g = _graph()
    rule = _op_names(build_module(g, platform="cpu"))
    chooser = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    chooser.settle(g)
    chosen = _op_names(build_module(g, choose=chooser))
    assert timed == ["cpu"] and chooser.use_rule == (faster == "rule")
    if faster == "rule":
        assert chosen == rule
    else:
        assert chosen != rule and "col2im_igrad" in chosen.values()  # conv's last form that applies
    ending = "so the rule runs" if faster == "rule" else "so the measured forms run"
    assert ending in chooser.describe()
    # the verdict is kept with the ops' choices: the next build times nothing
    again = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    again.settle(g)
    assert _op_names(build_module(g, choose=again)) == chosen and timed == ["cpu"]
    assert again.measured == 0 and sum('"model"' in k for k in _choices(tmp_path)) == 1


def test_the_forms_agreeing_with_the_rule_time_no_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_model(*args: Any) -> dict[str, float]:
        raise AssertionError("timed the model")

    monkeypatch.setattr(tuning, "time_models", no_model)
    monkeypatch.setattr(tuning, "time_lowerings", _rule_fastest)
    chooser = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    chooser.settle(_graph())
    assert chooser.measured == 4 and not chooser.use_rule and chooser.verdict == ""
    assert _op_names(build_module(_graph(), choose=chooser)) == _op_names(
        build_module(_graph(), platform="cpu")
    )


def test_a_model_with_dropout_and_batch_norm_is_timed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    # the real time_models: both versions built, trained-mode forward and backward jitted and timed
    monkeypatch.setattr(tuning, "time_lowerings", _last_form_fastest)
    # dropout after flatten: a rank-4 mask's threefry took XLA:CPU seconds to compile in each timed model
    g = specc.load(
        "t.net",
        text="model D {\n input x: f32[N, 12, 12, 1]\n input k: i32[N]\n"
        " h = x -> conv(4, 3) -> batchnorm -> relu -> maxpool(2) -> flatten -> dropout(0.5)\n"
        " output h\n}",
    ).graph()
    chooser = MeasuredLowerings("cpu", {"N": 8}, None)
    chooser.settle(g)
    assert "the whole model with 2 op(s) in other forms than the rule's" in chooser.describe()
    x = np.random.default_rng(0).normal(size=(8, 12, 12, 1)).astype(np.float32)
    module = build_module(g, choose=chooser)
    module.eval()
    assert module(x=x)["h"].shape == (8, 100)


def test_an_lstm_returning_its_state_is_timed_by_all_its_outputs(tmp_path: Path) -> None:
    """An LSTM with return_state gives three outputs (the sequence, h, c); timing it crashed ('tuple' object has
    no attribute 'shape', exit 3), reached once the data's sequence length is bound (`specc train --lowering
    measure` of specs/seq2seq.net)."""
    g = specc.load(
        "t.net",
        text="model M {\n input x: f32[N, 6, 4]\n y, h, c = x -> lstm(5, return_state=true)\n output y, h, c\n}",
    ).graph()
    chooser = MeasuredLowerings("cpu", {"N": 4}, tmp_path)
    names = lowering_names(build_module(g, choose=chooser))
    assert chooser.measured == 1 and set(names.values()) <= {"reference", "vjp"}
    [entry] = [v for k, v in _choices(tmp_path).items() if '"lstm"' in k]
    assert set(entry["median_ms"]) == {"reference", "vjp"}


def test_the_candidates_compile_with_the_models_xla_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conv model's train step compiles with XLA:CPU's older emitters at LLVM level 1 (graph_compiler_options),
    under which the forms' speeds are not those of XLA's defaults: the candidates compile with the model's options,
    and choices made under other options are not reused."""
    g = _graph()
    monkeypatch.setenv("SPECC_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tuning, "time_lowerings", _rule_fastest)
    chooser = tuning.measured_lowerings(g, batch=8)
    options = graph_compiler_options(g)
    assert options and chooser.options == options  # a conv model on the CPU has options of its own
    # the options reach XLA: one it does not know fails the candidates' compilation
    monkeypatch.undo()
    bogus = MeasuredLowerings("cpu", {"N": 8}, None, options={"xla_specc_no_such_option": True})
    with pytest.raises(Exception, match="xla_specc_no_such_option"):
        build_module(g, choose=bogus)
    # the same op shapes under XLA's defaults are a choice of their own
    monkeypatch.setattr(tuning, "time_lowerings", _rule_fastest)
    defaults = MeasuredLowerings("cpu", {"N": 8}, tmp_path)
    build_module(g, choose=defaults)
    assert defaults.measured == 4 and defaults.reused == 0
    again = MeasuredLowerings("cpu", {"N": 8}, tmp_path, options=options)
    build_module(g, choose=again)
    assert again.measured == 0 and again.reused == 4
