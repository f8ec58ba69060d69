"""What a study may rank and judge on, checked before anything runs: its objectives and constraint metrics
(metrics a trial reports, numeric architecture fields, or measured metrics at a named workload of
``deploy.workloads``), and the deployment it measures against the space (lengths below ``max_seq_len``, a
named workload's length above some window of the space's windowed patterns)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from archbench.errors import ConfigError
from archbench.leaderboard.objectives import Objective
from archbench.metrics import names, of_column, split_workload
from archbench.search_space.architecture import Architecture
from archbench.search_space.registries import ATTENTION
from archbench.trial import METRICS

if TYPE_CHECKING:
    from archbench.search.config import SearchConfig

NOT_ON_CPU = names(needs_gpu=True)


def check_objectives(
    objectives: Sequence[Objective], device_kind: str | None, what: str = "objective", workloads: Sequence[str] = ()
) -> None:
    """Objectives (and constraint metrics) must be metrics a trial reports or numeric Architecture fields, or
    a measured metric at one of the named ``workloads`` (``ttft_ms@batch32``), and measurable on this device."""
    numeric_fields = [f for f, v in Architecture().to_dict().items() if isinstance(v, int | float)]
    known = [*METRICS, *numeric_fields]
    for o in objectives:
        metric, workload = split_workload(o.name)
        if workload is not None:
            _check_workload_metric(o.name, what, workloads)
            o = Objective(metric, o.sense)
        if o.name not in known:
            close = difflib.get_close_matches(o.name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{what} {o.name!r} is not a metric{hint}; known: {', '.join(known)}")
        if device_kind == "cpu" and o.name in NOT_ON_CPU:
            raise ConfigError(
                f"{what} {o.name} cannot be measured on this CPU-only cluster (no NVML energy counter); "
                "use latency_ms, peak_mem_mb, params, flops or model_bytes, or run on GPUs"
            )


def _check_workload_metric(column: str, what: str, workloads: Sequence[str]) -> None:
    """``metric@workload`` must name a known workload and a metric measured per workload."""
    metric, workload = split_workload(column)
    if workload not in workloads:
        known = ", ".join(workloads) or "none (define them: deploy.workloads={NAME: {batch: B, context: C}})"
        raise ConfigError(f"{what} {column!r}: no workload {workload!r} in deploy.workloads; known: {known}")
    if of_column(column) is None:
        per_workload = ", ".join(names(source="measurement", fixed=False))
        raise ConfigError(
            f"{what} {column!r}: {metric} is not measured per workload; metrics measured at a workload: {per_workload}"
        )


def check_metrics(config: SearchConfig, device_kind: str | None) -> None:
    """The study's objectives and constraint metrics, checked by :func:`check_objectives`."""
    workloads = [str(w.name) for w in config.deploy.workloads]
    check_objectives(config.objectives, device_kind, workloads=workloads)
    constrained = tuple(Objective(c.metric) for c in config.constraints)
    check_objectives(constrained, device_kind, what="constraint", workloads=workloads)


def _choices(fields: Mapping[str, Any], name: str) -> list[Any]:
    """A space field's choices (a fixed value is one choice; a field left out, the Architecture's default)."""
    value = fields.get(name, getattr(Architecture(), name))
    return list(value) if isinstance(value, list) else [value]


def check_deployment(config: SearchConfig) -> None:
    """The deployment measured (with its named workloads) must fit every sequence length of the space, and
    a named workload must be longer than some window of it (:meth:`~archbench.deploy.Deploy.check_windows`)."""
    fields = config.space.to_dict()["fields"]
    for max_seq_len in _choices(fields, "max_seq_len"):
        config.measured_deploy.check_fits(int(max_seq_len))
    windowed = [a for a in _choices(fields, "attention") if ATTENTION.meta(a).get("uses_window")]
    config.measured_deploy.check_windows(windowed, [int(w) for w in _choices(fields, "window") if w])
