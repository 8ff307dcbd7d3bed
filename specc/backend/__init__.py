"""Back ends: the checked graph lowered to Flax NNX (`flax`), compiled with XLA (`compile`), emitted as Flax source
(`emit_flax`), drawn as DOT (`dot`). Importing this package imports nothing heavy; each module imports JAX itself.
"""
