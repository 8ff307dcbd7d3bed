"""Training support for `specc train`: data sets (NumPy only) and the training loop."""
