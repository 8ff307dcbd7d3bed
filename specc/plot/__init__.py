"""specc.plot: the lectures' figures from a spec or a run — decision boundaries, per-layer activations and gradient
norms, learning-rate schedules, samples of generative models, a sweep's curves. Each module computes the numbers
(testable) and draws them with matplotlib, imported on first use; `specc plot` (cli.py) writes PNG, SVG or PDF."""
