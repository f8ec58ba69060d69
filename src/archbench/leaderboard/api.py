"""``archbench.Leaderboard``: the Python API over the parquet store.

    lb = archbench.Leaderboard("runs/leaderboard")
    lb.append(rows)                                    # list of dicts / TrialResults or a polars DataFrame
    lb.scan()                                          # polars LazyFrame of every good part
    lb.pareto(["val_loss", "latency_ms"], task="charlm", budget="steps=400")
    lb.hypervolume(["val_loss", "latency_ms"], ref=[4.0, 20.0])
    lb.sql("SELECT arch_id, val_loss FROM results WHERE depth > 8")
    lb.pareto(["val_loss", "latency_ms"], feasible=True, where="peak_mem_mb<=40000")
    lb.pick(minimize="val_loss", under={"latency_ms": 20})   # the best row under a bound
    lb.knee(["val_loss", "latency_ms"])                      # the front's point of largest trade-off

Query methods see ``status == "ok"`` rows unless ``status`` says otherwise (``"all"`` or None: every
row). Storage contract: see :mod:`archbench.leaderboard.store` (atomic, durable, multi-process appends).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from archbench.constraints import ConstraintsArg, parse_constraints
from archbench.errors import ConfigError
from archbench.leaderboard import maintenance
from archbench.leaderboard.filters import Filters
from archbench.leaderboard.objectives import DEFAULT_OBJECTIVES, Objective, check_columns, parse_objectives
from archbench.leaderboard.pareto import annotate, group_columns
from archbench.leaderboard.schema import canonicalize
from archbench.leaderboard.store import LeaderboardWarning, Store

ENV_VAR = "ARCHBENCH_LEADERBOARD"
DEFAULT_ROOT = "runs/leaderboard"

T = TypeVar("T")
ObjectivesArg = str | Sequence[str | Objective | tuple[str, str]]


def default_root() -> Path:
    """``$ARCHBENCH_LEADERBOARD`` if set, else ``runs/leaderboard``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_ROOT)


class Leaderboard:
    """A leaderboard directory. Safe to share between processes and machines; appends never block reads."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self._store = Store(self.root)

    def __repr__(self) -> str:
        return f"Leaderboard({str(self.root)!r})"

    # ---- storage ----------------------------------------------------------------------------------
    def exists(self) -> bool:
        """True once something has been appended here."""
        return self._store.exists()

    def append(self, rows: pl.DataFrame | Sequence[Any]) -> int:
        """Append rows (dicts, TrialResults or a DataFrame) as one new part; returns once they are durable.

        Returns the number of rows written. All rows land or none do.
        """
        df = canonicalize(rows)
        if df.height == 0:
            return 0
        self._store.write(df)
        return df.height

    def scan(self) -> pl.LazyFrame:
        """A LazyFrame over every good part, in the current schema (bad parts skipped with a warning)."""
        return self._store.scan()

    def __len__(self) -> int:
        """Rows a reader sees (from the parts' footers; cheap)."""
        return sum(p.rows or 0 for p in self._store.visible_parts(warn=False))

    def check(self, deep: bool = True) -> maintenance.CheckReport:
        """Verify every part (footer, schema version and, if ``deep``, every data page)."""
        return maintenance.check(self._store, deep=deep)

    def fix(self, report: maintenance.CheckReport | None = None) -> maintenance.FixReport:
        """Move bad parts to ``quarantine/``; delete superseded parts and stale temporary files."""
        return maintenance.fix(self._store, report or self.check())

    def compact(self, small_rows: int = 100_000, target_rows: int = 1_000_000) -> maintenance.CompactReport:
        """Merge small parts into bigger ones, atomically and losing nothing."""
        return maintenance.compact(self._store, small_rows=small_rows, target_rows=target_rows)

    def _robust(self, run: Callable[[], T]) -> T:
        """``run()``, made robust to what other processes and disks do to the parts meanwhile.

        A compaction may delete parts between listing and reading: the first retry lists afresh. A part
        whose footer is fine but whose data is damaged is set aside (with a warning) and the query run
        again, so one bad part never makes the good rows unreadable.
        """
        for _ in range(2):
            try:
                return run()
            except (pl.exceptions.ComputeError, OSError) as exc:
                error = exc
        damaged = self._store.find_damaged()
        if not damaged:
            msg = " ".join(str(error).split())[:300]
            raise ConfigError(f"reading the leaderboard failed: {msg}") from None
        names = ", ".join(p.name for p in damaged)
        warnings.warn(
            f"skipped {len(damaged)} damaged part(s) ({names}); run `archbench leaderboard check`",
            LeaderboardWarning,
            stacklevel=3,
        )
        return run()

    # ---- queries ----------------------------------------------------------------------------------
    def query(
        self,
        *,
        task: str | Sequence[str] | None = None,
        study: str | Sequence[str] | None = None,
        budget: str | Sequence[str] | None = None,
        hardware: str | None = None,
        status: str | Sequence[str] | None = "ok",
        where: ConstraintsArg = None,
        feasible: bool = False,
        data_digest: str | Sequence[str] | None = None,
    ) -> pl.LazyFrame:
        """The rows that pass the filters (``hardware`` is a case-insensitive glob on device_name).

        ``budget="steps=40"`` (or a list) keeps rows trained at these budgets (``""``: rows without one).
        ``data_digest="3f2a"`` (or a list) keeps rows whose data digest starts so (``"unknown"``: rows
        written before it was recorded).

        ``where="latency_ms<=20"`` (or a list, or ``{"latency_ms": 20}``) keeps rows whose stored metrics meet
        every constraint (a null metric fails); ``feasible=True`` keeps rows judged feasible (see
        :class:`Filters`). Every query method below takes these too.
        """
        f = Filters.make(task, study, hardware, status, where, feasible, budget=budget, data_digest=data_digest)
        return f.apply(self.scan())

    def top(self, k: int | None = 20, by: str | Objective | None = None, **filters: Any) -> pl.DataFrame:
        """The ``k`` best rows by ``by`` (``"val_loss"``, ``"val_acc:max"``), or the latest ``k`` without it.

        Rows where ``by`` is null are left out (a missing metric is never ranked).
        """

        def run() -> pl.DataFrame:
            lf = self.query(**filters)
            if by is None:
                lf = lf.sort("created_at", descending=True, nulls_last=True)
            else:
                obj = Objective.parse(by)
                check_columns([obj], lf.collect_schema(), what="metric")
                lf = lf.filter(pl.col(obj.name).is_not_null() & pl.col(obj.name).is_not_nan())
                lf = lf.sort(obj.name, descending=obj.maximise, nulls_last=True)
            return (lf.head(k) if k else lf).collect()

        return self._robust(run)

    def pareto(
        self,
        objectives: ObjectivesArg = DEFAULT_OBJECTIVES,
        *,
        mix_hardware: bool = False,
        all_rows: bool = False,
        **filters: Any,
    ) -> pl.DataFrame:
        """The non-dominated rows per (task, budget, device_name, data_digest) group (no device with ``mix_hardware``).

        Rows of different budgets or data are never compared: each has its own front (a null
        ``data_digest``, rows from before it was recorded, is data of its own).

        With ``all_rows`` every row comes back with ``pareto_front`` and ``pareto_rank`` (0 on the
        front, null where an objective is missing); otherwise only the front, with ``pareto_rank`` 0.
        ``feasible=True`` gives the front among feasible rows; ``where="latency_ms<=20"`` the front among
        rows meeting query-time constraints (see :meth:`query`).
        """
        objs = parse_objectives(objectives, minimum=2)
        lf = self.query(**filters)
        check_columns(objs, lf.collect_schema())
        groups = group_columns(mix_hardware)
        names = [o.name for o in objs]
        order = [*groups, *names]
        desc = [False] * len(groups) + [o.maximise for o in objs]
        if all_rows:
            rows = self._robust(lambda: self.query(**filters).collect())
            df = annotate(rows, objs, mix_hardware=mix_hardware, rank=True)
            return df.sort(["pareto_rank", *order], descending=[False, *desc], nulls_last=True)

        def front_rows() -> pl.DataFrame:
            # Find the front on the few columns it needs, then read whole rows only for front points:
            # the filter on the first objective's values is pushed into the parquet scan.
            keys = annotate(self.query(**filters).select(order).collect(), objs, mix_hardware=mix_hardware)
            keys = keys.filter(pl.col("pareto_front")).drop("pareto_front").unique()
            wanted = self.query(**filters).filter(pl.col(names[0]).is_in(keys[names[0]].implode()))
            return wanted.collect().join(keys, on=order, how="semi", nulls_equal=True)

        front = self._robust(front_rows)
        return front.with_columns(pl.lit(0, dtype=pl.Int64).alias("pareto_rank")).sort(order, descending=desc)

    def hypervolume(
        self,
        objectives: ObjectivesArg = DEFAULT_OBJECTIVES,
        ref: Sequence[float] | None = None,
        *,
        mix_hardware: bool = False,
        **filters: Any,
    ) -> pl.DataFrame:
        """pymoo's hypervolume per (task, budget, device_name, data_digest) group (no device with ``mix_hardware``).

        ``ref`` is in the objectives' own units (default: see hypervolume.py).
        """
        from archbench.leaderboard.hypervolume import hypervolume_table

        objs = parse_objectives(objectives, minimum=1)
        lf = self.query(**filters)
        check_columns(objs, lf.collect_schema())
        cols = [*group_columns(mix_hardware), *(o.name for o in objs)]
        df = self._robust(lambda: self.query(**filters).select(cols).collect())
        return hypervolume_table(df, objs, ref=ref, mix_hardware=mix_hardware)

    def sql(self, query: str, **filters: Any) -> pl.DataFrame:
        """Run a read-only SELECT/WITH ``query``; the filtered rows are the table ``results``."""
        from archbench.leaderboard.sql import run_sql

        return self._robust(lambda: run_sql(self.query(**filters), query))

    def plot(self, out: str | os.PathLike[str], objectives: ObjectivesArg = DEFAULT_OBJECTIVES, **kwargs: Any) -> Path:
        """Scatter of every row with each (budget, device) front drawn; a pair grid for 3+ objectives. PNG or HTML."""
        from archbench.leaderboard.plot import plot_front

        mix = kwargs.pop("mix_hardware", False)
        objs = parse_objectives(objectives, minimum=2)
        lf = self.query(**kwargs)
        check_columns(objs, lf.collect_schema())
        df = self._robust(lambda: self.query(**kwargs).collect())
        return plot_front(df, objs, Path(out), mix_hardware=mix, source=str(self.root))

    def pick(
        self,
        minimize: str | None = None,
        maximize: str | None = None,
        *,
        under: Mapping[str, float] | None = None,
        where: ConstraintsArg = None,
        mix_hardware: bool = False,
        **filters: Any,
    ) -> dict[str, Any]:
        """The best single row by ``minimize`` or ``maximize`` among rows meeting the bounds.

        ``under={"latency_ms": 20}`` means ``latency_ms <= 20``; ``where`` adds any constraints
        (``"val_acc>=0.5,params<1e6"``); a row with a bounded metric null never qualifies. Rows are the
        query's (status ok by default; ``feasible=True`` narrows to feasible ones) and must come from one
        task, one budget, one ``data_digest`` and one device (``mix_hardware`` allows several devices).
        Ties: lower latency_ms, then arch_id.
        No qualifying row: a one-line ConfigError with how many rows were considered and how close the
        best of them comes to each bound.
        """
        from archbench.leaderboard.pick import pick_row

        if (minimize is None) == (maximize is None):
            raise ConfigError("say what to pick by: give exactly one of minimize= or maximize= (a metric)")
        objective = Objective(minimize, "min") if minimize is not None else Objective(str(maximize), "max")
        constraints = (*parse_constraints(under), *parse_constraints(where))
        lf = self.query(**filters)
        check_columns([objective], lf.collect_schema(), what="metric")
        check_columns([Objective(c.metric) for c in constraints], lf.collect_schema(), what="constraint metric")
        df = self._robust(lambda: self.query(**filters).collect())
        return pick_row(df, objective, constraints, mix_hardware=mix_hardware)

    def knee(
        self, objectives: ObjectivesArg = DEFAULT_OBJECTIVES, *, mix_hardware: bool = False, **filters: Any
    ) -> dict[str, Any]:
        """The knee of the Pareto front: the row of largest trade-off, with its ``knee_distance``.

        Method: normal-boundary-intersection knee (Das 1999). Each objective is scaled to [0, 1] over
        the front (min/max senses respected); the knee is the front point farthest from the hyperplane
        through the front's extreme points, on the side of the ideal point (in 2-D: farthest from the
        line joining the two ends of the front). A front of one point returns it; of two, the one best
        in the first objective. The filters (``feasible``, ``where`` too) must leave one task, budget,
        data digest and device (``mix_hardware``: one task, budget and data digest).
        """
        from archbench.leaderboard.pick import knee_row

        objs = parse_objectives(objectives, minimum=2)
        front = self.pareto(objs, mix_hardware=mix_hardware, **filters)
        return knee_row(front, objs, mix_hardware=mix_hardware)

    def export(
        self,
        arch_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        row: Mapping[str, Any] | None = None,
        **filters: Any,
    ) -> str:
        """The config YAML of ``arch_id`` (a unique prefix will do) with its latest row's provenance.

        Written atomically to ``path`` when given. Among several rows of the arch the latest passing
        ``filters`` (default: status ok) is used, or ``row`` when given (a row from :meth:`pick` or
        :meth:`knee`: ``lb.export(r["arch_id"], "best.yaml", row=r)``).
        """
        from archbench.leaderboard.export import export_config

        rows = self.arch_rows(arch_id, **filters)
        text, _ = export_config(rows, str(self.root), Path(path) if path is not None else None, row=row)
        return text

    def arch_rows(self, arch_id: str, **filters: Any) -> pl.DataFrame:
        """The rows of ``arch_id`` (a unique prefix will do) passing ``filters``; one line when there are none."""
        from archbench.leaderboard.export import resolve_arch_id

        full = self._robust(lambda: resolve_arch_id(self.scan(), arch_id))
        rows = self.query(**filters).filter(pl.col("arch_id") == full).collect()
        if rows.height == 0:
            statuses = self.scan().filter(pl.col("arch_id") == full).select("status").unique().collect()
            have = ", ".join(sorted(statuses["status"].to_list()))
            raise ConfigError(
                f"architecture {full} has no rows passing the filters (its statuses: {have}); try --status all"
            )
        return rows

    def check_filters(self, **filters: Any) -> Filters:
        """Parse ``filters`` and refuse a task, study, budget or hardware glob that matches no row at all."""
        f = Filters.make(**filters)
        self._robust(lambda: f.check_known(self.scan()))
        return f
