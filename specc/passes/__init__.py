"""Passes over the IR: verification and counting (shape inference runs as the graph is built, in ir/build.py)."""
