"""The leaderboard's versioned row schema: column types, canonicalisation of appended rows, migrations.

One row per trial (see :meth:`archbench.trial.TrialResult.to_row`): the Architecture's fields as
columns, the run's identity, status, metrics, hardware fingerprint, run settings (recipe, deployment,
archbench version: :mod:`archbench.run_settings`) and timestamps.

Every part file records the schema version it was written with (parquet key-value metadata
``archbench.schema_version``). Parts written by an older version are read through :data:`MIGRATIONS`;
columns added since simply read as null.

History:
    1: the pre-release layout, which used TrialResult's own field names ``reason`` and ``finished_at``.
    2: those columns are ``error`` and ``created_at`` (as ``TrialResult.to_row`` writes them).
    3: ``kv_heads`` (grouped-query attention); a part without it was multi-head.

Nullable columns added within version 3, read as null from the parts written before them: ``rung`` (the
rung of a multi-fidelity funnel; null for a single-fidelity search), ``gpu_other_processes`` (compute
processes other than the measuring one that NVML saw on its GPU), ``measure_effort`` (``full`` or
``screen``: a funnel's quick first look; null: measured before it existed, in full) and, on a funnel's
top-rung rows measured again in full, ``screen_latency_ms`` and ``screen_stop_reason`` (the quick look),
``weights`` (where the trained float model's safetensors were kept; null: not kept),
``train_schedule`` and ``train_recipe`` (the whole training recipe; null: a row from before it was recorded,
whose recipe is unknown, so the search's cache never reuses it), ``kv_cache_bytes_per_token``. Dynamic
columns: a metric measured at a named workload is ``metric@workload`` (``decode_ms_per_token@chat8k``),
typed as its metric (:func:`workload_columns`), present only in the parts of studies that measured it.
Read rules for the older rows (:func:`migrate` applies them to parts of every version): a trained row
without ``train_schedule`` is ``cosine``, the only schedule there was before the column existed; a row
without the layer layout (``global_every``, ``global_last``) was uniform (0, false), the value every older
architecture had.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import polars as pl

from archbench.errors import ConfigError
from archbench.metrics import names, of_column, split_workload
from archbench.run_settings import COLUMNS as RUN_COLUMNS
from archbench.search_space.architecture import Architecture
from archbench.trial import METRICS, STATUSES, utc_now
from archbench.version import archbench_version

SCHEMA_VERSION = 3
VERSION_KEY = "archbench.schema_version"

IDENTITY: dict[str, pl.DataType] = {
    "arch_id": pl.String(),
    "study": pl.String(),
    "trial": pl.Int64(),
    "task": pl.String(),
    "budget": pl.String(),
    "data_digest": pl.String(),  # the data trained and validated on (Task.digest); null: before it was recorded
    "rung": pl.Int64(),
    "seed": pl.Int64(),
    "status": pl.String(),
    "error": pl.String(),
    "feasible": pl.Boolean(),
    "violation": pl.Float64(),
    "cached": pl.Boolean(),
    "null_reasons": pl.String(),
}
# The hardware fingerprint: the keys every row should carry (others may be added freely).
HARDWARE: dict[str, pl.DataType] = {
    "device_name": pl.String(),
    "device_kind": pl.String(),
    "gpu_other_processes": pl.Int64(),
    "screen_latency_ms": pl.Float64(),
    "screen_stop_reason": pl.String(),
}
# Files a trial left behind: the trained float weights (archbench.interop.weights), as a path.
ARTIFACTS: dict[str, pl.DataType] = {"weights": pl.String()}
TIMES: dict[str, pl.DataType] = {"started_at": pl.String(), "created_at": pl.String()}
COUNT_METRICS = frozenset(names(integer=True))  # Int64 columns; the other metrics are Float64
# Direction of the known metrics when an objective gives none ("val_acc" is better high).
MAXIMISED = frozenset(names(direction="max"))

_PY_TO_POLARS: dict[Any, pl.DataType] = {int: pl.Int64(), float: pl.Float64(), str: pl.String(), bool: pl.Boolean()}
# How the trial was run (archbench.run_settings): recipe, deployment, measurement effort, archbench version.
RUN_SETTINGS: dict[str, pl.DataType] = {name: _PY_TO_POLARS[t] for name, t in RUN_COLUMNS.items()}


def arch_columns() -> dict[str, pl.DataType]:
    """The Architecture's fields with their column types (``int | None`` is a nullable Int64)."""
    hints = typing.get_type_hints(Architecture)
    out: dict[str, pl.DataType] = {}
    for name in Architecture.field_names():
        hint = hints[name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        out[name] = _PY_TO_POLARS[args[0]]
    return out


def metric_columns() -> dict[str, pl.DataType]:
    return {name: pl.Int64() if name in COUNT_METRICS else pl.Float64() for name in METRICS}


def workload_columns(columns: Iterable[str]) -> dict[str, pl.DataType]:
    """Of ``columns``, those of a metric measured at a named workload (``decode_ms_per_token@chat8k``:
    dynamic, one per workload a study names), with their metric's type."""
    out: dict[str, pl.DataType] = {}
    for name in columns:
        metric = of_column(name)
        if metric is not None and split_workload(name)[1] is not None:
            out[name] = pl.Int64() if metric.integer else pl.Float64()
    return out


def base_schema() -> dict[str, pl.DataType]:
    """Every column a row of the current version has, in display order."""
    return {**IDENTITY, **arch_columns(), **metric_columns(), **HARDWARE, **RUN_SETTINGS, **ARTIFACTS, **TIMES}


def arch_fields() -> tuple[str, ...]:
    return Architecture.field_names()


# ---- migrations ------------------------------------------------------------------------------------


def _v1_to_v2(lf: pl.LazyFrame) -> pl.LazyFrame:
    names = lf.collect_schema().names()
    renames = {old: new for old, new in (("reason", "error"), ("finished_at", "created_at")) if old in names}
    return lf.rename(renames)


def _v2_to_v3(lf: pl.LazyFrame) -> pl.LazyFrame:
    """kv_heads arrived with grouped-query attention: a row written before it was multi-head."""
    names = lf.collect_schema().names()
    if "heads" not in names:
        return lf
    if "kv_heads" not in names:
        return lf.with_columns(pl.col("heads").alias("kv_heads"))
    return lf.with_columns(pl.col("kv_heads").fill_null(pl.col("heads")))


# MIGRATIONS[v] turns a frame of version v into version v + 1.
MIGRATIONS: dict[int, Callable[[pl.LazyFrame], pl.LazyFrame]] = {1: _v1_to_v2, 2: _v2_to_v3}


def migrate(lf: pl.LazyFrame, version: int) -> pl.LazyFrame:
    """``lf`` (a part of schema ``version``) in the current version's layout, older rows read by the rules
    of the columns added within it (:func:`_read_older_rows`)."""
    for v in range(version, SCHEMA_VERSION):
        lf = MIGRATIONS[v](lf)
    return _read_older_rows(lf)


def _read_older_rows(lf: pl.LazyFrame) -> pl.LazyFrame:
    """Rows written before ``train_schedule`` was recorded were trained (``train_time_s`` set) under the
    only schedule there was, ``cosine``. Their ``train_recipe`` stays null: the learning rate and the rest
    of the recipe they were trained with are unknown."""
    names = lf.collect_schema().names()
    if "depth" in names:  # an architecture row: no layout column means one pattern on every layer
        lf = lf.with_columns(
            (pl.col(c).fill_null(v) if c in names else pl.lit(v, dtype=t)).alias(c)
            for c, v, t in (("global_every", 0, pl.Int64()), ("global_last", False, pl.Boolean()))
        )
    if "train_time_s" not in names:
        return lf
    schedule = pl.col("train_schedule") if "train_schedule" in names else pl.lit(None, pl.String())
    trained = pl.col("train_time_s").is_not_null()
    cosine = pl.when(schedule.is_null() & trained).then(pl.lit("cosine")).otherwise(schedule.cast(pl.String()))
    return lf.with_columns(cosine.alias("train_schedule"))


def known_version(version: int) -> bool:
    return version == SCHEMA_VERSION or (
        1 <= version < SCHEMA_VERSION and all(v in MIGRATIONS for v in range(version, SCHEMA_VERSION))
    )


# ---- canonicalisation of appended rows ---------------------------------------------------------------


def _row_dict(row: Any) -> dict[str, Any]:
    if hasattr(row, "to_row"):  # a TrialResult
        return row.to_row()
    if not isinstance(row, Mapping):
        raise ConfigError(f"a leaderboard row must be a mapping or a TrialResult, got {type(row).__name__}")
    return dict(row)


def _frame_from_rows(rows: Iterable[Any]) -> pl.DataFrame:
    dicts = [_row_dict(r) for r in rows]
    if not dicts:
        return pl.DataFrame()
    names: dict[str, None] = {}
    for d in dicts:
        names.update(dict.fromkeys(d))
    columns = {}
    for name in names:
        values = [d.get(name) for d in dicts]
        values = [None if isinstance(v, float) and math.isnan(v) else v for v in values]
        try:
            columns[name] = pl.Series(name, values, strict=False)
        except (TypeError, pl.exceptions.PolarsError):
            columns[name] = pl.Series(name, [None if v is None else str(v) for v in values], dtype=pl.String())
    return pl.DataFrame(columns)


def canonicalize(rows: pl.DataFrame | Sequence[Any]) -> pl.DataFrame:
    """Rows in the current schema: known columns cast to their types, missing ones null, defaults filled.

    Raises :class:`ConfigError` for a row without ``task`` or with an unknown ``status``, and for a value
    that cannot be cast to its column's type. NaN in a float column becomes null (a metric that was not
    measured is null, never a number).
    """
    df = rows.clone() if isinstance(rows, pl.DataFrame) else _frame_from_rows(rows)
    if df.height == 0:
        return df
    schema = base_schema()
    if "arch_id" not in df.columns or df["arch_id"].null_count():
        df = _fill_arch_id(df)
    for name in ("task", "status"):
        if name not in df.columns or df[name].null_count():
            raise ConfigError(f"every leaderboard row needs a {name!r} value")
    bad = sorted(set(df["status"].cast(pl.String).unique().to_list()) - set(STATUSES))
    if bad:
        raise ConfigError(f"unknown status {bad[0]!r}: allowed {', '.join(STATUSES)}")
    exprs = [pl.col(n).cast(t, strict=True) for n, t in workload_columns(df.columns).items() if df[n].dtype != t]
    for name, dtype in schema.items():
        if name not in df.columns:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif df[name].dtype != dtype:
            exprs.append(pl.col(name).cast(dtype, strict=True))
    try:
        df = df.with_columns(exprs) if exprs else df
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(f"a leaderboard value has the wrong type: {str(exc).splitlines()[0]}") from None
    fill = {"study": "", "budget": "", "error": "", "null_reasons": "{}", "cached": False}
    df = df.with_columns(
        [pl.col(k).fill_null(v) for k, v in fill.items()]
        + [
            pl.col("archbench_version").fill_null(archbench_version()),
            pl.col("created_at").fill_null(utc_now()),
        ]
    )
    floats = [n for n, t in df.schema.items() if t in (pl.Float32(), pl.Float64())]
    if floats:
        df = df.with_columns([pl.col(n).fill_nan(None) for n in floats])
    extra = [n for n in df.columns if n not in schema]
    return df.select([*schema, *extra])


def _fill_arch_id(df: pl.DataFrame) -> pl.DataFrame:
    """Compute ``arch_id`` from the architecture columns where a row lacks one."""
    fields = [f for f in arch_fields() if f in df.columns]
    ids = df["arch_id"].to_list() if "arch_id" in df.columns else [None] * df.height
    out = []
    for given, rec in zip(ids, df.select(fields).iter_rows(named=True), strict=True):
        if given is not None:
            out.append(given)
            continue
        try:
            out.append(Architecture.from_dict({k: v for k, v in rec.items() if v is not None}).arch_id)
        except Exception as exc:  # an ArchitectureError names the field
            raise ConfigError(f"a row has no arch_id and its architecture fields are invalid: {exc}") from None
    return df.with_columns(pl.Series("arch_id", out, dtype=pl.String()))


# ---- reading parts with different schemas -------------------------------------------------------------


def _is_int(t: pl.DataType) -> bool:
    return t.is_integer()


def union_schema(schemas: Sequence[Mapping[str, pl.DataType]]) -> dict[str, pl.DataType]:
    """One schema for parts whose columns differ: base columns first, then extras in first-seen order.

    A column whose type differs between parts becomes Int64 (all integers), Float64 (all numeric) or
    String (anything else); a column that is null everywhere in one part takes the others' type.
    """
    seen: dict[str, list[pl.DataType]] = {}
    for schema in schemas:
        for name, dtype in schema.items():
            seen.setdefault(name, []).append(dtype)
    base = base_schema()
    order = [*base, *(n for n in seen if n not in base)]
    out: dict[str, pl.DataType] = {}
    for name in order:
        types = {t for t in seen.get(name, []) if t != pl.Null()}
        if name in base and (not types or types == {base[name]}):
            out[name] = base[name]
        elif not types:
            out[name] = pl.Null()
        elif len(types) == 1:
            out[name] = next(iter(types))
        elif all(_is_int(t) for t in types):
            out[name] = pl.Int64()
        elif all(t.is_numeric() for t in types):
            out[name] = pl.Float64()
        else:
            out[name] = pl.String()
    return out


def conform(lf: pl.LazyFrame, target: Mapping[str, pl.DataType]) -> pl.LazyFrame:
    """``lf`` with exactly ``target``'s columns and types (absent columns are null)."""
    have = lf.collect_schema()
    exprs = []
    for name, dtype in target.items():
        if name not in have:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
        elif have[name] != dtype:
            exprs.append(pl.col(name).cast(dtype, strict=False))
        else:
            exprs.append(pl.col(name))
    return lf.select(exprs)
