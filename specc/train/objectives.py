"""Which parameters each objective trains, and in which order objectives run: the plan the train step follows.

An objective trains the layers of the instances its `params` names (a named instance, a block instance, or a named
value and the layers that compute it), or every layer no other objective and no `freeze` claims. Layers that no
objective trains are frozen. Objectives without `after` alternate on every batch (each runs its `steps` updates in
turn); `after = OTHER` makes a later stage that starts when OTHER's stage has run its epochs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import WARNING, Diagnostic, SpecError
from .spec import CallSpec, Objective, TrainConfig


@dataclass(frozen=True)
class Stage:
    """Objectives (indices into config.objectives) that alternate on every batch for `epochs` epochs."""

    objectives: tuple[int, ...]
    epochs: int


@dataclass(frozen=True)
class ObjectivePlan:
    """One objective with the layer keys (entries of SpecModule.layers) whose parameters it updates."""

    objective: Objective
    keys: frozenset[str]


def _dotted_prefixes(name: str) -> list[str]:
    """`a.b.c` → a, a.b, a.b.c: a value's name covers the nodes of its chain (`h.dense` of `h = x -> dense ->
    relu`), an instance's label its nested ones."""
    parts = name.split(".")
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def _covering(node: Any, model: str) -> set[str]:
    """The names that cover `node` in `params`/`freeze`: the model, its named instance, its value (and the
    chain's), and each enclosing block instance and block."""
    out = {model, *_dotted_prefixes(node.name)}
    if node.instance:
        out.add(node.instance)
    for s in node.scope:
        out.update(_dotted_prefixes(s.instance))
        out.add(s.block)
    return out


def _matches(node: Any, name: str, model: str) -> bool:
    """Whether `name` (the model, a named instance, a block or block instance, a value) covers `node`."""
    return name in _covering(node, model)


def _weights_of(node: Any) -> int | None:
    """The node whose parameters `node` runs: itself, the first use of its named instance, or None (none)."""
    owner = getattr(node, "shares", None)
    return owner if owner is not None else node.id if node.params else None


def layers_of(graph: Any, names: Iterable[str], keys: dict[int, str]) -> dict[str, frozenset[str]]:
    """Layer keys (that own parameters) of each named instance or value; one walk over the graph."""
    found: dict[str, set[str]] = {name: set() for name in names}
    for n in graph.nodes:
        if (owner := _weights_of(n)) is not None:
            for name in _covering(n, graph.model) & found.keys():
                found[name].add(keys[owner])
    return {name: frozenset(v) for name, v in found.items()}


def weighted_names(graph: Any) -> set[str]:
    """Every name `params`/`freeze` may give that covers at least one layer with parameters."""
    out: set[str] = set()
    for n in graph.nodes:
        if _weights_of(n) is not None:
            out |= _covering(n, graph.model)
    return out


def cut_copies(graph: Any, name: str, keys: dict[int, str]) -> tuple[str, int, int] | None:
    """(layer key, copies named, copies in all) when `name` covers only some copies of a rolled repeat's stacked
    layer (one key for all its copies: docs/language.md, "Long repeats compile once"), else None."""
    owners: dict[str, int] = {}
    covered: dict[str, int] = {}
    for n in graph.nodes:
        if n.params and getattr(n, "shares", None) is None:
            owners[keys[n.id]] = owners.get(keys[n.id], 0) + 1
            if _matches(n, name, graph.model):
                covered[keys[n.id]] = covered.get(keys[n.id], 0) + 1
    return next(((k, c, owners[k]) for k, c in covered.items() if c < owners[k]), None)


def _claims(
    objectives: Sequence[Objective], by_name: dict[str, frozenset[str]], trainable: frozenset[str]
) -> list[frozenset[str]]:
    """The layers each objective trains before `freeze`: those its `params` name, or (no `params`) every layer
    that no objective's `params` names."""
    named = frozenset().union(*(by_name[p] for o in objectives for p in (o.params or ())))
    return [
        trainable - named if o.params is None else frozenset().union(*(by_name[p] for p in o.params))
        for o in objectives
    ]


def plan_objectives(
    config: TrainConfig, graph: Any, freeze: Sequence[str] = (), keys: dict[int, str] | None = None
) -> tuple[ObjectivePlan, ...]:
    """Each objective's trained layers; a located SpecError when one trains nothing or two train the same, or
    names some copies of a rolled repeat but not all. `keys`: the layers' keys (default: the Flax module's, which
    imports JAX; `specc check` gives reroll.layer_keys')."""
    if keys is None:
        from ..backend.flax import layer_keys

        keys = layer_keys(graph)
    trainable = frozenset(keys[n.id] for n in graph.nodes if n.params)
    named = [p for o in config.objectives for p in (o.params or ())] + list(freeze)
    by_name = layers_of(graph, named, keys)
    frozen = frozenset().union(*(by_name[f] for f in freeze)) if freeze else frozenset()
    claimed: dict[
        tuple[int, str], str
    ] = {}  # (stage, layer) → objective: alternating objectives own disjoint layers
    stage_of = {i: k for k, st in enumerate(stages(config)) for i in st.objectives}
    plans = []
    errors = []
    where = [(p, o.span_of(p)) for o in config.objectives for p in (o.params or ())]
    for name, span in [*where, *((f, config.span("freeze") or config.span("train")) for f in freeze)]:
        if (cut := cut_copies(graph, name, keys)) is not None:
            key, some, every = cut
            errors.append(
                SpecError.one(
                    "value error",
                    f"{name} is {some} of the {every} copies of a long repeat, whose layers are stacked into one "
                    f"({key}): they train or freeze together",
                    span,
                    "name the whole repeat (its value or enclosing instance), or make the copies you treat apart "
                    "differ (a different block or argument)",
                )
            )
    for index, o in enumerate(config.objectives):
        if o.params is None:
            continue
        mine = frozenset().union(*(by_name[p] for p in o.params)) if o.params else frozenset()
        if not o.params:
            errors.append(
                SpecError.one(
                    "value error",
                    f"objective {o.name}: params = [] names no layers to train",
                    o.span_of("params"),
                    "name instances that hold layers with weights, e.g. params = D",
                )
            )
        for k in sorted(mine):
            slot = (stage_of[index], k)
            if slot in claimed and claimed[slot] != o.name:
                errors.append(
                    SpecError.one(
                        "value error",
                        f"objectives {claimed[slot]} and {o.name} both train layer {k} in the same stage",
                        o.span,
                        "alternating objectives own separate layers; split the instances, or make one a stage "
                        "with `after`",
                    )
                )
                break
            claimed[slot] = o.name
    if errors:
        diags = [d for e in errors for d in e.diagnostics]
        raise SpecError(diags, dict(config.sources))
    for o, mine in zip(config.objectives, _claims(config.objectives, by_name, trainable), strict=True):
        if mine and not mine - frozen:
            # everything it would train is frozen: its loss could never fall (`freeze = [M]`, the model's name)
            errors.append(
                SpecError.one(
                    "value error",
                    ("the loss" if o.name == "main" else f"objective {o.name}")
                    + f" trains nothing: freeze holds every one of the {len(mine)} layer(s) with weights it would train",
                    config.span("freeze") or o.span,
                    "freeze only the layers to keep (`freeze = [body]`), and leave some to train",
                )
            )
        trained = mine - frozen
        if trained and (reached := _loss_reaches(o, graph, keys)) is not None and not reached & trained:
            errors.append(
                SpecError.one(
                    "value error",
                    ("the loss" if o.name == "main" else f"objective {o.name}'s loss")
                    + " depends on none of the layers it trains"
                    + (f" ({', '.join(o.params)})" if o.params else "")
                    + ": their gradient is zero and they would never change",
                    o.span,
                    "compute the loss from values those layers produce (a generator's loss reads the critic's "
                    "verdict on its fakes, d_fake), or train the layers the loss reads",
                )
            )
        plans.append(ObjectivePlan(o, trained))
    if errors:
        diags = [d for e in errors for d in e.diagnostics]
        raise SpecError(diags, dict(config.sources))
    return tuple(plans)


def _loss_reaches(objective: Objective, graph: Any, keys: dict[int, str]) -> frozenset[str] | None:
    """The layer keys whose parameters the objective's loss is computed from; None where a term reads the
    parameters themselves (l1, l2), so every layer counts."""
    from .losses import LOSSES

    names: list[str] = []
    for _, call in objective.terms:
        if call.name == "value":
            names.append(call["name"])
            continue
        lf = LOSSES.get(call.name)
        if lf is None or lf.penalty:
            return None
        names += [v for a in lf.tensor_args if isinstance(v := call.kw.get(a.name), str)]
    return _computed_from(graph, names, keys)


def _computed_from(graph: Any, names: Iterable[str], keys: dict[int, str]) -> frozenset[str]:
    """The layer keys whose parameters the model values `names` are computed from."""
    values = graph.value_map
    todo = [values[n].node for n in names if n in values]
    seen: set[int] = set()
    reached: set[str] = set()
    while todo:
        nid = todo.pop()
        if nid in seen:
            continue
        seen.add(nid)
        n = graph.nodes[nid]
        owner = n.shares if n.shares is not None else nid
        if owner in keys:
            reached.add(keys[owner])
        todo += [r.node for r in n.inputs]
    return frozenset(reached)


def _stage_epochs(own: int | None, train: int) -> int:
    """An objective's stage length: its own `epochs` (0 skips the stage), else the train section's."""
    return train if own is None else own


def stages(config: TrainConfig) -> tuple[Stage, ...]:
    """The objectives in run order: the alternating ones first, then each `after` chain in order."""
    objs = config.objectives
    index = {o.name: i for i, o in enumerate(objs)}
    level: dict[int, int] = {}

    def depth(i: int, seen: tuple[int, ...] = ()) -> int:
        if i in level:
            return level[i]
        after = objs[i].after
        d = (
            0
            if after is None or after not in index or index[after] in seen
            else depth(index[after], (*seen, i)) + 1
        )
        level[i] = d
        return d

    for i in range(len(objs)):
        depth(i)
    out = []
    for d in sorted(set(level.values())):
        members = tuple(i for i in range(len(objs)) if level[i] == d)
        epochs = max(_stage_epochs(objs[i].epochs, config.epochs) for i in members)
        out.append(Stage(members, epochs))
    return tuple(out)


def stage_at(plan: Sequence[Stage], epoch: int) -> tuple[int, Stage] | None:
    """The stage that global epoch `epoch` (0-based) belongs to, with its index; None past the last."""
    start = 0
    for i, s in enumerate(plan):
        if epoch < start + s.epochs:
            return i, s
        start += s.epochs
    return None


def total_epochs(plan: Sequence[Stage]) -> int:
    return sum(s.epochs for s in plan)


def moved_stage(
    plan: Sequence[Stage], history: Sequence[dict[str, Any]]
) -> tuple[int, int, int | None] | None:
    """(epoch, its stage then, its stage now; 1-based, None past the plan's end) for the first epoch of a resumed
    run's history that `plan` puts in another stage than the one that trained it, else None. Stage lengths come
    from the epochs (`--epochs` on resume changes those that take the train section's), so a longer first stage
    would otherwise train the teacher again after the student."""
    for record in history:
        if "stage" not in record:
            continue
        epoch = int(record["epoch"])
        now = stage_at(plan, epoch - 1)
        now_index = now[0] + 1 if now is not None else None
        if now_index != int(record["stage"]):
            return epoch, int(record["stage"]), now_index
    return None


def trained_teachers(graph: Any, objectives: Sequence[Objective], freeze: Sequence[str]) -> list[Diagnostic]:
    """A warning for each instance started from an earlier run (`T = Teacher() from "runs/Teacher"`) that an
    objective trains while its loss reads the instance only through a target (`kl_div(s_hot, t_soft)`): the loss
    then pulls the teacher toward the student too. Valid (docs/training.md), but a teacher is almost always meant
    to stay as it was trained; one on the prediction's side too (a pretrained body fine-tuned) is left alone."""
    keys = {n.id: str(n.id) for n in graph.nodes}  # node ids stand in for the layer keys, which need JAX
    trainable = frozenset(keys[n.id] for n in graph.nodes if n.params)
    names = [p for o in objectives for p in (o.params or ())] + list(freeze)
    by_name = layers_of(graph, [*names, *(inst for inst, _, _ in graph.pretrained)], keys)
    frozen = frozenset().union(*(by_name[f] for f in freeze))
    trains = list(zip(objectives, _claims(objectives, by_name, trainable), strict=True))
    out = []
    for inst, run, span in graph.pretrained:
        teacher = by_name[inst]
        found = next(
            (
                (o, call, target)
                for o, mine in trains
                if teacher & (mine - frozen)
                for _, call in o.terms
                if (target := _target_only(graph, call, teacher, keys)) is not None
            ),
            None,
        )
        if found is None:
            continue
        o, call, target = found
        loss = "the loss" if o.name == "main" else f"objective {o.name}'s loss"
        out.append(
            Diagnostic(
                WARNING,
                f"{inst} starts from {run}'s trained weights, and {loss} trains it too: {call.name}'s target "
                f"{target} (line {call.span.line}) is computed by {inst}, so every step also moves {inst} "
                "toward the prediction it is compared with",
                span,
                f"add `freeze = [{inst}]` to the train section to keep {inst} as it was trained",
            )
        )
    return out


def _target_only(graph: Any, call: CallSpec, layers: frozenset[str], keys: dict[int, str]) -> str | None:
    """The target of loss `call` (`t_soft` in `kl_div(s_hot, t_soft)`) when it is computed by `layers` and the
    prediction is not, else None."""
    from .losses import LOSSES

    lf = LOSSES.get(call.name)
    target = call.kw.get(lf.target) if lf is not None and lf.target else None
    if lf is None or not isinstance(target, str) or not layers & _computed_from(graph, [target], keys):
        return None
    preds = [v for a in lf.tensor_args if a.name != lf.target and isinstance(v := call.kw[a.name], str)]
    return None if layers & _computed_from(graph, preds, keys) else target
