"""`specc plot samples`: a grid of images from a trained generative model — a GAN's generator fed its drawn noise
(`input z: f32[N, 16] = normal()`), or a VAE's decoder fed latents from the prior N(0, I) in place of its
`sample_normal` value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpecError
from ..ir.graph import Graph, Node
from .subject import Subject, located, model_values, plot_error


@dataclass(frozen=True)
class Samples:
    """`images`: f32[n, H, W] or f32[n, H, W, C]; `latent`: the inputs or values drawn; `output`: the value shown."""

    output: str
    latent: tuple[str, ...]
    images: np.ndarray
    cols: int | None = None  # the grid's width where each row shows one value of an input (`--input y=0..9`)


def _depends_on(graph: Graph, target: int, sources: set[int]) -> bool:
    seen, stack = set(), [target]
    while stack:
        i = stack.pop()
        if i in sources:
            return True
        if i not in seen:
            seen.add(i)
            stack.extend(r.node for r in graph.nodes[i].inputs)
    return False


def latents(graph: Graph, latent: str | None) -> list[Node]:
    """The nodes drawn from the prior: `latent` (a drawn input or any value), else the model's drawn inputs, else
    its one `sample_normal` value."""
    nodes = {n.name: n for n in graph}
    if latent is not None:
        ref = graph.value_map.get(latent)
        if ref is not None:
            return [graph.nodes[ref.node]]
        if latent in nodes:
            return [nodes[latent]]
        raise plot_error(
            f"model {graph.model} has no value named '{latent}'", "name an input or a value: --latent z"
        )
    drawn = [graph.nodes[nid] for _, nid in graph.inputs if "draw" in graph.nodes[nid].attr]
    if drawn:
        return drawn
    sampled = [n for n in graph if n.op == "sample_normal"]
    if len(sampled) == 1:
        return sampled
    raise plot_error(
        f"model {graph.model} has no drawn input and {'several' if sampled else 'no'} sample_normal values",
        "name the latent value: --latent z (it is drawn from N(0, 1))",
    )


def image_shape(dims: tuple[int, ...]) -> tuple[int, ...] | None:
    """One example's shape as an image: [H, W], [H, W, 1|3], or a square [H·H] vector as [H, H]."""
    if len(dims) == 1:
        side = math.isqrt(dims[0])
        return (side, side) if side * side == dims[0] else None
    if len(dims) == 2 or (len(dims) == 3 and dims[2] in (1, 3)):
        return dims
    return None


def generate(
    subject: Subject,
    n: int = 64,
    *,
    output: str | None = None,
    latent: str | None = None,
    seed: int = 0,
    manifold: bool = False,
    fixed: dict[str, tuple[float, ...]] | None = None,
) -> Samples:
    """`n` images from the subject's generator: the latents drawn (seeded), the `output` value (default: the first
    model output that depends on them) computed from them and from `fixed`: the other inputs of a conditional
    generator (a class label), each example's value given by name (`{"y": (0, 1, ..., 9)}`: the values in equal
    consecutive runs, so that with `n` a multiple of their count each row of the grid shows one). `manifold`: a
    2-D latent walked on a regular grid of N(0, 1) quantiles instead (Kingma & Welling's figure; `n` rounded down
    to a square)."""
    graph = subject.graph
    drawn = latents(graph, latent)
    if manifold:
        sizes = [tuple(x.as_int() for x in d.type.dims[1:]) for d in drawn]
        if sizes != [(2,)]:
            raise plot_error(
                f"--manifold walks one 2-D latent; {', '.join(d.name for d in drawn)} is {drawn[0].type}",
                "draw random samples without --manifold",
            )
        side = max(math.isqrt(n), 1)
        n = side * side
    ids = {d.id for d in drawn}
    outputs = [name for name, r in graph.outputs if _depends_on(graph, r.node, ids)]
    name = output if output is not None else (outputs[0] if outputs else None)
    if name is None or name not in graph.value_map:
        raise plot_error(
            f"no output of model {graph.model} is made from {', '.join(d.name for d in drawn)}"
            if output is None
            else f"model {graph.model} has no value named '{output}'",
            "name the image value: --image fake",
        )
    t = graph.type_of(graph.value_map[name])
    dims = tuple(d.value if d.is_const else -1 for d in t.dims[1:])
    shape = image_shape(tuple(int(d) for d in dims)) if all(d > 0 for d in dims) else None
    if shape is None:
        raise located(
            plot_error(
                f"{name} is {t}: an example is not an image ([H, W], [H, W, 1|3] or a square vector)",
                "name the image value with --image",
                graph.nodes[graph.value_map[name].node].span,
            ),
            subject,
        )
    rng = np.random.default_rng(seed)
    inputs: dict[str, Any] = _fixed_inputs(graph, fixed or {}, n, {d.id for d in drawn})
    given: dict[str, Any] = {}
    for d in drawn:
        example = tuple(int(x.value) if x.is_const else 1 for x in d.type.dims[1:])
        z = manifold_grid(side) if manifold else _draw(rng, d, (n, *example))
        if d.op == "input":
            inputs[next(k for k, nid in graph.inputs if nid == d.id)] = z
        else:
            given[d.name] = z
    try:
        out = model_values(subject.model, inputs, [name], given)[name]
    except SpecError as e:  # the value needs a fed input too (a conditional generator)
        raise plot_error(
            e.diagnostics[0].message,
            "give a conditional generator's other inputs with --input NAME=VALUES (--input y=0..9 --n 100: a row "
            "for each class), or name a value made from the latent alone with --image",
        ) from None
    counts = {len(v) for v in (fixed or {}).values()}
    k = next(iter(counts)) if len(counts) == 1 else 0
    cols = n // k if k and n % k == 0 else None
    images = np.asarray(out, np.float32).reshape((n, *shape))
    return Samples(name, tuple(d.name for d in drawn), images, cols)


def parse_values(text: str) -> tuple[float, ...]:
    """`--input`'s VALUES: numbers and inclusive integer ranges, comma-separated (`0..9`, `0,3,7`, `-1.5,1.5`);
    ValueError with the part that is neither."""
    out: list[float] = []
    for part in text.split(","):
        lo, dots, hi = part.strip().partition("..")
        try:
            if dots:
                a, b = int(lo), int(hi)
                if b < a or b - a >= 1024:
                    raise ValueError
                out += range(a, b + 1)
            else:
                v = float(part)
                if not math.isfinite(v):
                    raise ValueError
                out.append(v)
        except ValueError:
            raise ValueError(part.strip() or "an empty value") from None
    return tuple(out)


def _fixed_inputs(
    graph: Graph, fixed: dict[str, tuple[float, ...]], n: int, drawn: set[int]
) -> dict[str, np.ndarray]:
    """The `fixed` inputs as arrays of `n` examples: each a model input, not drawn, of one number an example."""
    inputs = dict(graph.inputs)
    out = {}
    for name, values in fixed.items():
        nid = inputs.get(name)
        if nid is None or nid in drawn:
            given = [k for k, i in graph.inputs if i not in drawn and len(graph.nodes[i].type.dims) == 1]
            raise plot_error(
                f"--input {name}: model {graph.model} has no input '{name}' to give"
                + (" (it is drawn)" if nid is not None else ""),
                f"inputs to give: {', '.join(given)}"
                if given
                else "the model has no input besides its latents",
            )
        t = graph.nodes[nid].type
        if len(t.dims) != 1:
            raise plot_error(
                f"--input {name}: {name} is {t}, and --input gives one number an example",
                f"feed a label input (i32[N]) and compute the rest in the model, e.g. {name} -> one_hot(10)",
            )
        if not values or len(values) > n:
            raise plot_error(
                f"--input {name}: {len(values)} values for {n} samples", "give at most --n values"
            )
        integral = t.dtype.startswith(("i", "u"))
        if integral and any(v != int(v) for v in values):
            raise plot_error(
                f"--input {name}: {name} is {t}, its values whole numbers", "e.g. --input y=0..9"
            )
        column = [values[(i * len(values)) // n] for i in range(n)]
        out[name] = np.asarray(column, np.int32 if integral else np.float32)
    return out


def manifold_grid(side: int) -> np.ndarray:
    """f32[side², 2]: the latent plane at the N(0, 1) quantiles 0.05 … 0.95, row by row (z₂ falling, z₁ rising), so
    the grid of images reads as the plane."""
    from statistics import NormalDist

    q = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, side)]
    return np.array([[z1, z2] for z2 in reversed(q) for z1 in q], np.float32)


def _draw(rng: np.random.Generator, node: Node, shape: tuple[int, ...]) -> np.ndarray:
    """A drawn input's own distribution (`normal(mean, std)`, `uniform(low, high)`); N(0, 1) for a value."""
    fn = node.attr.get("draw") if node.op == "input" else None
    if fn is None:
        return rng.standard_normal(shape).astype(np.float32)
    kw = dict(fn.kwargs)
    if fn.name == "normal":
        return (kw["mean"] + kw["std"] * rng.standard_normal(shape)).astype(np.float32)
    return rng.uniform(kw["low"], kw["high"], shape).astype(np.float32)


def draw(s: Samples, title: str) -> Any:
    """The images in a near-square grid, grey (one channel) or colour, scaled to [0, 1] when outside it."""
    from .figure import new_figure

    n = len(s.images)
    cols = s.cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    images = s.images
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        images = (images - lo) / max(hi - lo, 1e-12)
    fig = new_figure(0.8 * cols + 0.4, 0.8 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            img = images[k]
            if img.ndim == 3 and img.shape[2] == 1:
                img = img[:, :, 0]
            ax.imshow(
                img, cmap="gray_r" if img.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest"
            )
    fig.suptitle(f"{title}: {s.output} from {', '.join(s.latent)}", fontsize=10)
    return fig
