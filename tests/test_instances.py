"""Named layer instances: one set of parameters wherever the name is applied (siamese towers, a GAN's
discriminator), counted once, lowered to one submodule, drawn as one instance used twice (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest

import specc
from specc.errors import SpecError

TOWER = """\
block Tower() {
  input v: [N, 64]
  e = v -> dense(32) -> relu -> dense(16)
  output e
}
"""

SHARED = (
    TOWER
    + """
model Siamese {
  input a: f32[N, 64]
  input b: f32[N, 64]
  T = Tower()
  ea = a -> T
  eb = b -> T
  d = sum((ea - eb) ** 2, axis=-1)
  output d
}
"""
)

UNSHARED = SHARED.replace("  T = Tower()\n", "").replace("-> T\n", "-> Tower()\n")


def graph(text: str):
    return specc.load("siamese.net", text=text).graph()


def test_siamese_count_is_half_the_unshared_one() -> None:
    tower = (64 * 32 + 32) + (32 * 16 + 16)
    assert graph(SHARED).total_params == tower
    assert graph(UNSHARED).total_params == 2 * tower


def test_second_use_shares_the_first_uses_nodes() -> None:
    g = graph(SHARED)
    sharing = [n for n in g.nodes if n.shares is not None]
    assert [g.nodes[n.shares].name for n in sharing] == ["T/e.dense", "T/e"]
    assert all(n.instance == "T" for n in g.nodes if "T" in n.name.split("/")[0].split("."))


def test_op_instance_shares_one_kernel() -> None:
    text = """
model M {
  input x: f32[N, 8]
  enc = dense(4)
  a = x -> enc
  b = x -> relu -> enc
  output a, b
}
"""
    g = graph(text)
    assert g.total_params == 8 * 4 + 4
    assert sum(1 for n in g.nodes if n.shares is not None) == 1


def test_lowering_has_one_submodule_and_equal_inputs_give_equal_embeddings() -> None:
    from flax import nnx

    m = specc.load("siamese.net", text=SHARED).build(nnx.Rngs(0))
    n_params = sum(int(np.prod(v.shape)) for _, v in nnx.to_flat_state(nnx.state(m, nnx.Param)))
    assert n_params == graph(SHARED).total_params
    x = np.random.default_rng(0).normal(size=(3, 64)).astype("f4")
    y = np.random.default_rng(1).normal(size=(3, 64)).astype("f4")
    assert np.all(np.asarray(m(a=x, b=x)["d"]) == 0)
    assert np.all(np.asarray(m(a=x, b=y)["d"]) > 0)


def test_emitted_flax_defines_each_shared_layer_once() -> None:
    from specc.backend.emit_flax import emit_flax

    src = emit_flax(graph(SHARED))
    assert src.count("nnx.Linear(") == 2
    assert src.count("self.T_e_dense(") == 2


def test_dot_draws_two_uses_tied_by_same_weights() -> None:
    dot = specc.load("siamese.net", text=SHARED).to_dot()
    assert dot.count("same weights") == 2
    assert "use 2 · shared weights" in dot


def test_applying_an_instance_to_another_shape_is_located() -> None:
    text = SHARED.replace("input b: f32[N, 64]", "input b: f32[N, 32]").replace(
        "input v: [N, 64]", "input v: [N, F]"
    )
    with pytest.raises(SpecError) as e:
        graph(text)
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (12, 13)
    assert "T shares one set of weights" in d.message and "f32[N, 32]" in d.message


def test_instance_options_are_fixed_at_its_definition() -> None:
    text = SHARED.replace("eb = b -> T", "eb = b -> T(features=3)")
    with pytest.raises(SpecError) as e:
        graph(text)
    assert "options were fixed where it was defined" in e.value.diagnostics[0].message
