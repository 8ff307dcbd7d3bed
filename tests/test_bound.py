"""Sizes fixed after checking (the data's T, --bind T=..., a predict file's) put to the ops' rules again
(specc/passes/bound.py): a rule that accepts a free T may refuse its number, which the lowering met only as a crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from specc.cli import main

POSITIONAL = """\
model P {
  input src: i32[N, T]
  input tgt: i32[N, T]
  h = src -> embed(10, 8) -> positional(max_len=MAX, kind=learned)
  logits = h -> dense(10)
  output logits
}
train {
  data   = reversal(n=200, length=6, split=0.8)
  loss   = cross_entropy(logits, tgt)
  epochs = 1
}
"""


def _spec(tmp_path: Path, max_len: int) -> Path:
    path = tmp_path / f"p{max_len}.net"
    path.write_text(POSITIONAL.replace("MAX", str(max_len)))
    return path


def _invoke(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, list(args))
    return r.exit_code, r.stderr


def test_compile_bind_longer_than_a_learned_positional_table_is_located(tmp_path: Path) -> None:
    """`specc compile --bind T=6` of positional(max_len=4, kind=learned): exit 3, "Incompatible shapes"."""
    code, err = _invoke("compile", str(_spec(tmp_path, 4)), "--bind", "T=6")
    assert code == 1, err
    assert err.startswith(
        f"{tmp_path / 'p4.net'}:4:30: shape error: positional(max_len=4) covers 4 positions, but the input has "
        "T = 6: f32[N, 6, 8] (T = 6 from --bind)"
    ), err
    assert "hint: raise max_len to at least 6" in err
    assert _invoke("compile", str(_spec(tmp_path, 4)), "--bind", "T=4")[0] == 0


@pytest.mark.slow
def test_train_predict_and_export_with_sizes_a_rule_refuses_are_located(tmp_path: Path) -> None:
    code, err = _invoke("train", str(_spec(tmp_path, 4)), "--out", str(tmp_path / "short"))
    assert code == 1, err
    assert "shape error: positional(max_len=4) covers 4 positions, but the input has T = 6" in err
    assert "(T = 6 from the training data)" in err
    run = tmp_path / "run"
    code, err = _invoke("train", str(_spec(tmp_path, 6)), "--out", str(run))
    assert code == 0, err
    np.savez(tmp_path / "long.npz", src=np.zeros((2, 8), np.int32))
    code, err = _invoke("predict", str(run), str(tmp_path / "long.npz"))
    assert code == 1 and "covers 6 positions, but the input has T = 8" in err and "from the inputs" in err, (
        err
    )
    for fmt in ("onnx", "stablehlo"):
        code, err = _invoke(
            "export", str(run), "--to", fmt, "--bind", "T=8", "-o", str(tmp_path / f"x.{fmt}")
        )
        assert code == 1 and f"cannot export to {fmt}: positional(max_len=6) covers 6 positions" in err, err
        assert not (tmp_path / f"x.{fmt}").exists()


def test_a_size_the_numbers_change_flows_to_the_ops_after_it(tmp_path: Path) -> None:
    """`x[:, 0:3]` of a free T has 3 rows, but of T = 2 two (NumPy's slice stops at the end): the reshape after it
    to 12 values was checked against 3 rows and crashed at --bind T=2. Sizes in an op's arguments are bound too
    (reshape([N, T, 2, 2]) is right for every T)."""
    path = tmp_path / "s.net"
    path.write_text(
        "model S {\n  input x: f32[N, T, 4]\n  a = x[:, 0:3, :] -> reshape([N, 12])\n"
        "  b = x -> reshape([N, T, 2, 2]) -> mean(axis=(2, 3))\n  output a, b\n}\n"
    )
    code, err = _invoke("compile", str(path), "--bind", "T=2")
    assert code == 1, err
    assert err.startswith(
        f"{path}:3:23: shape error: reshape to [N, 12] needs 12*N elements per tensor, but f32[N, 2, 4] has 8*N"
    ), err
    assert _invoke("compile", str(path), "--bind", "T=5")[0] == 0
