"""`specc check`: the summary, its --json form, exit codes, and that checking never imports JAX."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from specc.cli import main

ROOT = Path(__file__).resolve().parents[1]
MLP = "specs/mlp.net"


@pytest.fixture(autouse=True)
def _at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def invoke(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, r.stdout, r.stderr


def test_check_prints_outputs_and_params() -> None:
    code, out, err = invoke("check", MLP)
    assert code == 0, err
    assert err == ""
    assert out.splitlines()[0] == "specs/mlp.net: model MLP: ok"
    assert "outputs: logits: f32[N, 10]" in out
    assert "inputs:  x: f32[N, 64], y: i32[N]" in out
    assert "params:  7,510" in out


def test_check_json() -> None:
    code, out, err = invoke("check", MLP, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert {"model", "outputs", "total_params"} <= summary.keys()
    assert summary["model"] == "MLP"
    assert summary["outputs"] == {"logits": "f32[N, 10]"}
    assert summary["total_params"] == 7510  # 64*100 + 100 + 100*10 + 10


def test_check_json_errors() -> None:
    code, out, _ = invoke("check", "tests/errors/unknown_op.net", "--json")
    assert code == 1
    (e,) = json.loads(out)["errors"]
    assert e["kind"] == "name error"
    assert (e["file"], e["line"], e["col"]) == ("tests/errors/unknown_op.net", 3, 12)
    assert "did you mean 'dense'?" in e["message"]
    assert e["hint"]


def test_check_reports_every_error_then_a_count() -> None:
    code, out, err = invoke("check", "tests/errors/multiple_errors.net")
    assert code == 1
    assert out == ""
    assert err.count("tests/errors/multiple_errors.net:") == 5
    assert err.rstrip().endswith("5 errors")


def test_check_picks_a_model_by_name() -> None:
    """An unknown --model was exit 1, a spec error, though the file is fine: now a usage error (exit 2), as `dot
    --block` of an unknown block is, from every command and with several files."""
    code, _, err = invoke("check", MLP, "--model", "MLP")
    assert code == 0, err
    for args in (["check", MLP, "--json"], ["check", MLP, MLP], ["dot", MLP], ["compile", MLP]):
        code, out, err = invoke(*args, "--model", "MPL")
        assert code == 2 and "--model MPL: no model named 'MPL'" in out + err, (args, out, err)
    code, _, err = invoke("check", MLP, "--model", "MPL")
    assert code == 2  # a slip in the option, as `dot --block` of an unknown block: a usage error
    assert err.startswith(f"usage error: --model MPL: no model named 'MPL' in {MLP}; did you mean 'MLP'?"), (
        err
    )
    assert "hint: models in this file: MLP" in err


TWO_MODELS = """model Big {
  input x: f32[N, 32, 32, 3]
  logits = x -> global_avgpool -> dense(5, 5)
  output logits
}
model Small {
  input x: f32[N, 64]
  input y: i32[N]
  logits = x -> dense(10)
  output logits
}
train {
  data = digits(split=0.8)
  loss = cross_entropy(logits, y)
}
"""


def test_check_of_a_file_checks_every_model(tmp_path: Path) -> None:
    """A file holding a paper-sized model and a small trainable one read `model Small: ok`, exit 0, while Big had
    an error that only `--model Big` showed. A file checked whole now checks every model (the train section against
    the default one, which it trains), as the language server does."""
    spec = tmp_path / "two.net"
    spec.write_text(TWO_MODELS)
    code, out, err = invoke("check", str(spec))
    assert code == 1 and out == "", out
    assert err.startswith(f"{spec}:3:44: argument error: dense's 'bias' must be true or false, got 5"), err
    code, _, err = invoke("check", str(spec), "--model", "Small")  # the model asked for alone
    assert code == 0, err
    spec.write_text(TWO_MODELS.replace("dense(5, 5)", "dense(5)"))
    code, out, err = invoke("check", str(spec))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{spec}: model Big: ok" and "params:  20" in lines[3]
    assert f"{spec}: model Small: ok" in lines and out.rstrip().endswith(
        "train:   main: cross_entropy by adam"
    )
    code, out, _ = invoke("check", str(spec), "--json")
    report = json.loads(out)
    assert report["model"] == "Small" and [o["model"] for o in report["other_models"]] == ["Big"]
    assert report["other_models"][0]["total_params"] == 20
    # the paper-sized model alone: the train section, written for the default one, is checked against it
    code, _, err = invoke("check", str(spec), "--model", "Big")
    assert code == 1 and "'y' is not a value of the model" in err
    assert (
        "note: the train section is checked against model Big (--model); without --model it trains Small"
        in err
    )


def test_check_help_says_set_takes_train_keys_too() -> None:
    """`specc check --set` checks a train key as train would (`optimizer.lr=-1` is located in the option); its help
    said it replaced a `let` constant only, which is what dot and compile take."""
    assert "a train key" in invoke("check", "--help")[1]
    assert "a train key" not in invoke("dot", "--help")[1]
    code, _, err = invoke("check", MLP, "--set", "optimizer.lr=-1")
    assert code == 2 and err.startswith("--set:1:14: argument error: sgd: argument 'lr' must be at least 0")


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "no/such/file.net"],
        ["check", "specs"],
        ["check", MLP, "--no-such-option"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _, err = invoke(*args)
    assert code == 2, err
    assert "Traceback" not in err


SPECS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "specs").glob("*.net"))


@pytest.mark.parametrize("spec", SPECS)
def test_every_shipped_spec_checks(spec: str) -> None:
    code, out, err = invoke("check", spec)
    assert code == 0, err
    assert out.startswith(f"{spec}: model ")


def test_check_does_not_import_jax() -> None:
    # a fresh interpreter: the test session itself may have imported JAX already
    script = (
        "import sys\n"
        "from specc.cli import main\n"
        "try:\n"
        f"    main(['check', {MLP!r}], standalone_mode=False)\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "heavy = sorted(m for m in ('jax', 'jaxlib', 'flax', 'optax') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "print('no jax')\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "model MLP: ok" in r.stdout and "no jax" in r.stdout


def test_console_script_exit_codes(tmp_path: Path) -> None:
    """The installed `specc` entry point: 0 ok, 1 spec error, 2 usage error."""
    exe = Path(sys.executable).with_name("specc")
    if not exe.exists():
        pytest.skip("specc console script not installed next to this interpreter")
    bad = tmp_path / "bad.net"
    bad.write_text("model M {\n  input x: f32[N, 4]\n  h = x -> desne(3)\n  output h\n}\n")
    runs = {
        name: subprocess.run(
            [str(exe), "check", arg], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        for name, arg in (("ok", MLP), ("spec", str(bad)), ("usage", "missing.net"))
    }
    assert [runs[k].returncode for k in ("ok", "spec", "usage")] == [0, 1, 2]
    assert f"{bad}:3:12: name error: unknown op 'desne'" in runs["spec"].stderr
    assert "Traceback" not in runs["spec"].stderr + runs["usage"].stderr


@pytest.mark.parametrize(
    "args",
    [
        ["train", "specs/digits_mlp.net", "--out"],
        ["sweep", "specs/digits_mlp.net", "--set", "epochs=1,2", "--out"],
        ["compile", "specs/digits_mlp.net", "--emit", "ir", "-o"],
        ["dot", "specs/digits_mlp.net", "-o"],
        ["convert", "specs/digits_mlp.net", "--to", "yaml", "-o"],
        ["predict", "specs", "specs/digits_mlp.net", "-o"],
        ["export", "specs", "--to", "npz", "-o"],
        ["plot", "schedule", "specs/digits_mlp.net", "-o"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_an_empty_output_path_is_a_usage_error(args: list[str], tmp_path: Path, monkeypatch) -> None:
    """`--out "$OUT"` with OUT unset was the current folder: `specc train --out ''` trained into it, `convert -o
    ''` said 'cannot write .: Device or resource busy'. Now a usage error naming the option, nothing written."""
    monkeypatch.chdir(tmp_path)
    args = [str(ROOT / a) if a.startswith("specs") else a for a in args]
    r = CliRunner().invoke(main, [*args, ""])
    assert r.exit_code == 2, r.output
    assert "an empty path (an unset shell variable?); give a name" in r.output
    assert list(tmp_path.iterdir()) == []


def test_compile_refuses_json_with_emit() -> None:
    """`compile --emit ir --json` printed the IR and ignored --json without a word."""
    code, _, err = invoke("compile", MLP, "--emit", "ir", "--json")
    assert code == 2 and "--json prints the table as JSON and --emit ir writes the ir form: give one" in err


def test_check_of_a_file_shows_every_models_warnings(tmp_path: Path) -> None:
    """A file checked whole reported its first model's `softmax(axis=0)` only with `--model A`."""
    spec = tmp_path / "w.net"
    spec.write_text(
        "model A {\n  input x: f32[N, 64]\n  h = x -> softmax(axis=0)\n  output h\n}\n"
        "model B {\n  input x: f32[N, 64]\n  h = x -> dense(3)\n  output h\n}\n"
    )
    code, _, err = invoke("check", str(spec))
    assert code == 0 and f"{spec}:3:20: warning: softmax(axis=0) normalises over axis 0" in err, err
