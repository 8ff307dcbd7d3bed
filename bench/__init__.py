"""specc's benchmarks: `python -m bench` runs the training suite (specc vs hand-written Flax NNX vs PyTorch)."""
