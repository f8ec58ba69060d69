"""The metric table: every metric a trial can report, stated once, with what each one is.

Every list of metric names in archbench derives from :data:`TABLE` (the leaderboard's columns and their
types, the cost metrics a measurement fills, the ones a constraint may check before training, the modes a
deployment must measure for an objective, the units ``archbench measure`` prints, ...)::

    names(source="measurement", timed=False)   # params, flops, model_bytes, peak_mem_mb, kv_cache_mb, ...
    names(needs_gpu=True)                      # the NVML energy metrics
    get("val_acc").direction                   # "max"
    of_column("ttft_ms@batch32").name          # "ttft_ms": a metric measured at a named workload

A measured metric that depends on the deployment's shape (not ``fixed``) is also recorded once per named
workload (``deploy.workloads``, see :mod:`archbench.deploy`) under ``metric@workload``, e.g.
``decode_ms_per_token@chat8k``: :func:`at_workload`, :func:`split_workload` and :func:`of_column` are the one
definition of those column names.

A metric that could not be measured is null with a reason, never 0 (see :mod:`archbench.trial`). Other
metrics may be reported (any extra one becomes a float column), but these are the ones archbench knows.
Imports nothing heavy: every part of the package may read it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from archbench.errors import UnknownNameError

SOURCES = ("validation", "training", "measurement")
MODES = ("prefill", "decode", "generate")  # the deployment modes a measurement times (see archbench.deploy)
MEASURES = ("quality", "training", "latency", "energy", "memory", "size", "roofline", "compile")
WORKLOAD_SEP = "@"  # decode_ms_per_token@chat8k: the metric measured at the workload named chat8k
WORKLOAD_NAME = re.compile(r"[A-Za-z0-9_]+")  # a workload's name: letters, digits and underscores


@dataclass(frozen=True)
class Metric:
    """One metric: its meaning, how it is read and who produces it."""

    name: str
    description: str
    unit: str  # "" when dimensionless (a ratio, a spread, a count)
    source: str  # validation (the trained model's quality) | training (the run) | measurement (archbench.latency)
    measures: str  # what it is about: quality | training | latency | energy | memory | size | roofline | compile
    mode: str | None = None  # measurement: the deployment mode whose measurement writes it (None: not measured)
    direction: str = "min"  # what an objective on it wants when it names no direction
    integer: bool = False  # a count (an Int64 column); otherwise a float
    timed: bool = False  # read off a clock, so a quick look (a funnel's screen) measures it less exactly
    needs_gpu: bool = False  # needs NVML (a GPU's energy counter); null on a CPU-only machine
    pretrain: bool = False  # a property of the deployed model that a constraint may bound before training
    fixed: bool = False  # measured, but the same at every deployment shape: not repeated per workload
    computed: bool = False  # from the architecture and the deployment alone, not read off archbench.latency
    headline: bool = False  # shown by default in ``archbench leaderboard`` tables

    def __post_init__(self) -> None:
        assert self.source in SOURCES, self
        assert self.measures in MEASURES, self
        assert self.direction in ("min", "max"), self
        assert (self.mode is None) == (self.source != "measurement") and self.mode in (None, *MODES), self
        measured_only = self.pretrain or self.needs_gpu or self.fixed or self.computed
        assert not measured_only or self.source == "measurement", self
        assert not (self.computed and self.timed), self


_FLAGS = {"max": ("direction", "max"), "int": ("integer", True), "timed": ("timed", True),
          "gpu": ("needs_gpu", True), "pretrain": ("pretrain", True), "headline": ("headline", True),
          "fixed": ("fixed", True), "computed": ("computed", True)}  # fmt: skip


def _m(name: str, unit: str, by: str, measures: str, flags: str, description: str) -> Metric:
    """A table row: ``by`` is the source, or the deployment mode of a measured metric; ``flags`` name the
    attributes that differ from their defaults (``max int timed gpu pretrain headline fixed computed``)."""
    source, mode = (by, None) if by in SOURCES else ("measurement", by)
    return Metric(name, description, unit, source, measures, mode, **dict(_FLAGS[f] for f in flags.split()))


# In leaderboard column order. timed: read off a clock; pretrain: a constraint may bound it before training.
# fmt: off
TABLE: tuple[Metric, ...] = (
    #  name                    unit         by            measures    flags
    _m("val_loss",             "nats",      "validation", "quality",  "headline",
       "validation loss of the float model (nats per token)"),
    _m("val_bpb",              "bits/byte", "validation", "quality",  "headline",
       "validation bits per byte of the float model (charlm)"),
    _m("val_acc",              "",          "validation", "quality",  "max headline",
       "validation accuracy of the float model (classification / recall)"),
    _m("val_loss_quant",       "nats",      "validation", "quality",  "",
       "validation loss after applying the architecture's quant"),
    _m("val_bpb_quant",        "bits/byte", "validation", "quality",  "",
       "validation bits per byte after quant"),
    _m("val_acc_quant",        "",          "validation", "quality",  "max",
       "validation accuracy after quant"),
    _m("train_time_s",         "s",         "training",   "training", "",
       "wall time of the training budget (s)"),
    _m("train_tokens_per_s",   "tokens/s",  "training",   "training", "max",
       "training throughput (tokens/s)"),
    _m("train_resumed_steps",  "",          "training",   "training", "int",
       "training steps that came from a shorter run's state (0: from scratch)"),
    _m("latency_ms",           "ms",        "prefill",    "latency",  "timed pretrain headline",
       "median inference latency (ms)"),
    _m("latency_p90_ms",       "ms",        "prefill",    "latency",  "timed pretrain",
       "90th percentile inference latency (ms)"),
    _m("latency_cv",           "",          "prefill",    "latency",  "timed",
       "coefficient of variation of the latency samples"),
    _m("latency_iqr_ms",       "ms",        "prefill",    "latency",  "timed",
       "interquartile range of the latency samples (ms)"),
    _m("latency_samples",      "",          "prefill",    "latency",  "timed int",
       "number of timed samples"),
    _m("energy_mj",            "mJ",        "prefill",    "energy",   "timed gpu pretrain headline",
       "energy per inference (mJ), NVML total-energy counter"),
    _m("energy_above_idle_mj", "mJ",        "prefill",    "energy",   "timed gpu pretrain",
       "energy per inference above idle power (mJ)"),
    _m("avg_power_w",          "W",         "prefill",    "energy",   "timed gpu pretrain",
       "average power during the energy window (W)"),
    _m("peak_mem_mb",          "MiB",       "prefill",    "memory",   "pretrain headline",
       "peak device memory of one inference (MiB)"),
    _m("params",               "",          "prefill",    "size",     "int pretrain headline fixed",
       "parameter count (shared and tied weights once)"),
    _m("flops",                "",          "prefill",    "size",     "int pretrain",
       "FLOPs per inference (torch's counter; attention counted from the mask)"),
    _m("model_bytes",          "B",         "prefill",    "size",     "int pretrain fixed",
       "model size in bytes after quant"),
    _m("roofline_fraction",    "",          "prefill",    "roofline", "timed max",
       "achieved fraction of the roofline floor time"),
    _m("prefill_ms",           "ms",        "prefill",    "latency",  "timed pretrain",
       "forward latency over the prompt (ms): latency_ms under its deployment name"),
    _m("decode_ms_per_token",  "ms",        "decode",     "latency",  "timed pretrain",
       "median time of one decode step from a warm KV cache (ms per token)"),
    _m("decode_p90_ms",        "ms",        "decode",     "latency",  "timed pretrain",
       "90th percentile of the decode step time (ms)"),
    _m("decode_cv",            "",          "decode",     "latency",  "timed",
       "coefficient of variation of the decode step samples"),
    _m("decode_samples",       "",          "decode",     "latency",  "timed int",
       "number of timed decode steps"),
    _m("ttft_ms",              "ms",        "generate",   "latency",  "timed pretrain",
       "time to first token of a generation: prefill of the prompt (ms)"),
    _m("tpot_ms",              "ms",        "generate",   "latency",  "timed pretrain",
       "time per output token of a generation after the first (ms)"),
    _m("generate_cv",          "",          "generate",   "latency",  "timed",
       "coefficient of variation of whole-generation times"),
    _m("generate_samples",     "",          "generate",   "latency",  "timed int",
       "number of timed generations"),
    _m("kv_cache_mb",          "MiB",       "decode",     "memory",   "pretrain",
       "size of the KV cache (or recurrent state) at the measured context (MiB)"),
    _m("kv_cache_bytes_per_token", "B",     "prefill",    "memory",   "pretrain computed",
       "decode-cache bytes of one sequence at the deployment's context, per token of it (analytic)"),
    _m("compile_s",            "s",         "prefill",    "compile",  "timed",
       "torch.compile time of the measured call (s); null when eager"),
)
# fmt: on

BY_NAME: dict[str, Metric] = {m.name: m for m in TABLE}
_FIELDS = frozenset(f.name for f in fields(Metric))


def get(name: str) -> Metric:
    """The metric called ``name``; unknown names raise with the known ones listed."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownNameError(f"unknown metric {name!r}; known: {', '.join(BY_NAME)}") from None


def names(**match: object) -> tuple[str, ...]:
    """The names of the metrics whose attributes equal ``match`` (all of them without), in table order."""
    unknown = sorted(set(match) - _FIELDS)
    if unknown:
        raise TypeError(f"Metric has no attribute {unknown[0]!r}; attributes: {', '.join(sorted(_FIELDS))}")
    return tuple(m.name for m in TABLE if all(getattr(m, k) == v for k, v in match.items()))


TRAINED_ONLY = (*names(source="validation"), *names(source="training"))  # only a trained model reports these


def at_workload(metric: str, workload: str) -> str:
    """The column of ``metric`` measured at the named ``workload``: ``metric@workload``."""
    return f"{metric}{WORKLOAD_SEP}{workload}"


def split_workload(column: str) -> tuple[str, str | None]:
    """``("ttft_ms", "batch32")`` for ``ttft_ms@batch32``; ``(column, None)`` for a column without a workload."""
    metric, sep, workload = column.partition(WORKLOAD_SEP)
    return (metric, workload) if sep else (column, None)


def of_column(column: str) -> Metric | None:
    """The known metric a column reports: its own, or the one measured at a workload (``metric@name``,
    a metric that is not ``fixed``); None for any other column."""
    metric, workload = split_workload(column)
    m = BY_NAME.get(metric)
    if workload is None:
        return m
    if m is None or m.source != "measurement" or m.fixed or not WORKLOAD_NAME.fullmatch(workload):
        return None
    return m


def units() -> dict[str, str]:
    """``{name: unit}`` for the metrics that have a unit."""
    return {m.name: m.unit for m in TABLE if m.unit}
