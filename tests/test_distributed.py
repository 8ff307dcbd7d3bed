"""Data parallelism across processes: two local processes under jax.distributed (CPU collectives over gloo) train
the same losses as one process (issue 10)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent / "specs_train"

RUN = """
import json, sys
from pathlib import Path
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
from specc.train.loop import maybe_initialize_distributed
maybe_initialize_distributed()
import specc
from specc.train.spec import build_config
from specc.train.loop import train_and_evaluate
spec = specc.load(sys.argv[1]); cfg = build_config(spec, spec.graph(), ["epochs=2", "batch=32"])
r = train_and_evaluate(cfg, Path(sys.argv[2]), verbose=False, lowering=sys.argv[3])
print("RESULT", json.dumps([jax.process_count(), [[h["loss"], h["val_loss"], h["accuracy"]] for h in r.history]]))
print("NOTES", json.dumps(r.notes))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def result(out: str) -> tuple[int, list[list[float]]]:
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    count, hist = json.loads(line[len("RESULT ") :])
    return count, hist


@pytest.mark.slow
def test_two_processes_train_like_one(tmp_path: Path) -> None:
    spec = str(HERE / "tiny_dropout.net")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    for k in ("JAX_COORDINATOR_ADDRESS", "XLA_FLAGS"):
        env.pop(k, None)
    one = subprocess.run(
        [sys.executable, "-c", RUN, spec, str(tmp_path / "one"), "auto"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    port = free_port()
    procs = [
        subprocess.Popen(
            # --lowering measure keeps the rule over several processes: the same program as `auto` above
            [sys.executable, "-c", RUN, spec, str(tmp_path / "two"), "measure"],
            env={
                **env,
                "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}",
                "JAX_NUM_PROCESSES": "2",
                "JAX_PROCESS_ID": str(i),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    n1, h1 = result(one.stdout)
    assert n1 == 1
    for out in outs:
        n2, h2 = result(out)
        assert n2 == 2
        assert "--lowering measure times on one process only" in out
        np.testing.assert_allclose(np.array(h2), np.array(h1), rtol=1e-5)
    assert (tmp_path / "two" / "run.json").is_file() and (tmp_path / "two" / "metrics.jsonl").is_file()


FSDP = """
import json, sys
from pathlib import Path
import jax
import specc
from specc.train.spec import build_config
from specc.train.loop import train_and_evaluate
spec = specc.load(sys.argv[1])
out = {}
for shard, n in (("replicate", 1), ("replicate", 4), ("fsdp", 4)):
    cfg = build_config(spec, spec.graph(), ["epochs=2", "batch=32", f"shard={shard}"])
    r = train_and_evaluate(cfg, Path(sys.argv[2]) / f"{shard}{n}", devices=n, verbose=False)
    out[f"{shard}{n}"] = [[h["loss"], h["val_loss"], h["accuracy"]] for h in r.history]
# where the parameters live under fsdp: a kernel split four ways
from specc.train import loop
mesh = loop._Mesh(4, jax.sharding.Mesh(jax.devices()[:4], ("batch",)), fsdp=True)
placed = mesh.place({"params": {"k": jax.numpy.zeros((64, 32))}, "n": jax.numpy.int32(0)})
out["kernel_shard"] = list(placed["params"]["k"].addressable_shards[0].data.shape)
out["scalar_shard"] = list(placed["n"].addressable_shards[0].data.shape)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_four_devices_replicated_or_fsdp_train_like_one(tmp_path: Path) -> None:
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", FSDP, str(HERE / "tiny_dropout.net"), str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # data parallel over 4 devices, parameters copied or split, equals one device
    np.testing.assert_allclose(np.array(got["replicate4"]), np.array(got["replicate1"]), rtol=1e-5)
    np.testing.assert_allclose(np.array(got["fsdp4"]), np.array(got["replicate1"]), rtol=1e-5)
    assert got["kernel_shard"] == [16, 32]
    assert got["scalar_shard"] == []


@pytest.mark.slow
def test_a_batch_beyond_the_data_is_cut_to_a_multiple_of_the_devices(tmp_path: Path) -> None:
    """batch 5000 on 1,436 training examples over 3 devices: the batch became the 1,436, and then 'batch 1436 does
    not split evenly over 3 devices', a batch the user never gave; it is 1,434 now, said in the banner."""
    spec = tmp_path / "m.net"
    spec.write_text(
        "model M {\n  input x: f32[N, 64]\n  input y: i32[N]\n  z = x -> dense(10)\n  output z\n}\n"
        "train {\n  data = digits(split=1436)\n  loss = cross_entropy(z, y)\n  batch = 5000\n  epochs = 1\n}\n"
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    out = subprocess.run(
        [sys.executable, "-m", "specc", "train", str(spec), "--devices", "3", "--out", str(tmp_path / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "using 1434 (a multiple of the 3 devices)" in out.stderr + out.stdout
    assert "done: 1 epoch(s), step 1" in out.stderr + out.stdout


DRAWN = """
import json, re
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
import specc
from specc.train.loop import _Sampler, drawn_inputs
graph = specc.load("g.net", text=(
    "model G {\\n  input x: f32[N, 4]\\n  input z: f32[N, 96] = normal()\\n"
    "  h = z -> dense(8)\\n  output h\\n}\\n"
)).graph()
drawn = drawn_inputs(graph)
mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
x = jax.device_put(np.ones((64, 4), np.float32), NamedSharding(mesh, PartitionSpec("batch")))
w = jnp.ones((96, 8))
out = {}
for label, m in (("whole", None), ("split", mesh)):
    sampler = _Sampler(graph, drawn, ("x",), 0, m)
    # the value the fakes' layers read, through a matmul and a mean that no fed input constrains
    f = jax.jit(lambda key, x: jnp.mean(sampler(key, {"x": x})["z"] @ w))
    key = sampler.train_key(jnp.int32(3), 0)
    hlo = f.lower(key, x).compile().as_text()
    out[label] = [sorted(set(re.findall(r"f32\\[(\\d+),96\\]", hlo))), float(f(key, x))]
    out[label + "_z"] = np.asarray(jax.jit(lambda key, x: sampler(key, {"x": x})["z"])(key, x)).tolist()
print(json.dumps(out))
"""


def test_a_drawn_input_is_split_over_the_devices_with_the_same_values(tmp_path: Path) -> None:
    """A GAN's noise `z = normal()` drawn whole on every device ran the generator, and the discriminator on its
    fakes, on the whole batch there: a DCGAN's epoch took 2x one device's on 2 devices and 4x on 4. Each device
    draws its own rows now, the values the whole draw gives."""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", DRAWN], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["split"][0] == ["32"], got["split"][0]  # each device's program holds its 32 rows, never all 64
    assert got["whole"][0] == ["64"]
    np.testing.assert_array_equal(np.array(got["split_z"]), np.array(got["whole_z"]))
    np.testing.assert_allclose(got["split"][1], got["whole"][1], rtol=1e-6)
