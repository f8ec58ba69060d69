"""``archbench leaderboard ...``: thin wrappers over :class:`archbench.Leaderboard` (``archbench export`` is
:mod:`archbench.cli.export`). Over 400 lines: its nine verbs share one set of query options and helpers
(``_query_args``, ``_filters``, ``_emit``), and each verb's parser stays beside its command.

    archbench leaderboard show        [--top K] [--by METRIC[:min|max]] [--columns A,B|all]
    archbench leaderboard pareto      [--objectives val_loss:min,latency_ms:min] [--all] [--mix-hardware]
    archbench leaderboard pick        --minimize METRIC | --maximize METRIC [--under METRIC=BOUND ...] [--export F]
    archbench leaderboard knee        [--objectives val_loss:min,latency_ms:min] [--export FILE.yaml]
    archbench leaderboard hypervolume [--objectives ...] [--ref V1,V2,...] [--mix-hardware]
    archbench leaderboard sql         "SELECT ... FROM results WHERE ..."
    archbench leaderboard plot        --out FILE.png|FILE.html [--objectives A,B[,C...]] [--mix-hardware]
    archbench leaderboard check       [--fix] [--quick]
    archbench leaderboard compact     [--small-rows N] [--target-rows N]

Fronts, hypervolume, pick and knee are per task, budget, data and device: rows trained at different
budgets or on different data are never compared (--budget steps=40 picks one). Query verbs take --task,
--study, --budget (exact training budgets), --data-digest PREFIX (``unknown``: rows from before the digest
was recorded), --hardware GLOB (on device_name), --status (default ok; "all" for every row), --where
"latency_ms<=20,params<=1e6" (constraints on stored metrics; a null metric fails), --feasible (rows
judged feasible) and --format table|csv|json|markdown; all verbs take --root DIR (default
$ARCHBENCH_LEADERBOARD or runs/leaderboard).
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from archbench.cli.argtypes import nonnegative_int, positive_int
from archbench.errors import ConfigError
from archbench.metrics import names

QUICK_LOOK = names(headline=True)  # the headline metric of each kind (archbench.metrics)
ARCH_LOOK = ("depth", "width", "heads", "attention", "quant")


# ---- shared plumbing ----------------------------------------------------------------------------------


@contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        print(f"archbench: warning: {w.message}", file=sys.stderr)


@contextmanager
def _querying(args: argparse.Namespace) -> Iterator[tuple[Any, dict[str, Any]]]:
    """The leaderboard and the checked filters that ``args`` give; warnings while querying go to stderr."""
    lb = _open(args)
    with _warnings_to_stderr():
        yield lb, _checked_filters(lb, args)


def _open(args: argparse.Namespace, must_exist: bool = True) -> Any:
    from archbench.leaderboard import ENV_VAR, Leaderboard

    lb = Leaderboard(args.root)
    if must_exist and not lb.exists():
        where = "--root" if args.root else f"{ENV_VAR}" if _env_set() else "the default"
        raise ConfigError(f"no leaderboard at {lb.root} ({where}); point --root or ${ENV_VAR} at one")
    return lb


def _env_set() -> bool:
    import os

    from archbench.leaderboard import ENV_VAR

    return bool(os.environ.get(ENV_VAR))


def _filters(args: argparse.Namespace, steer: bool = True) -> dict[str, Any]:
    """The query filters from the flags; ``steer=False`` leaves out --where and --feasible."""
    out = {
        "task": args.task,
        "study": args.study,
        "budget": args.budget,
        "data_digest": args.data_digest,
        "hardware": args.hardware,
        "status": args.status,
    }
    if steer:
        out.update(where=getattr(args, "where", None), feasible=getattr(args, "feasible", False))
    return out


def _checked_filters(lb: Any, args: argparse.Namespace) -> dict[str, Any]:
    filters = _filters(args)
    lb.check_filters(**filters)
    return filters


def _select(df: Any, requested: str | None, default: list[str], fmt: str) -> Any:
    """The columns to print: ``--columns`` if given, else every column for csv/json, else ``default``."""
    if requested == "all" or (requested is None and fmt in ("csv", "json")):
        return df
    if requested is None:
        return df.select([c for c in dict.fromkeys(default) if c in df.columns])
    wanted = [c.strip() for c in requested.split(",") if c.strip()]
    for c in wanted:
        if c not in df.columns:
            close = difflib.get_close_matches(c, df.columns, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown column {c!r}{hint}; use --columns all to see every column")
    return df.select(wanted)


def _present(df: Any, names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` that are columns of ``df`` with at least one value."""
    return [n for n in names if n in df.columns and df[n].null_count() < df.height]


def _emit(df: Any, args: argparse.Namespace, title: str) -> None:
    from archbench.leaderboard.render import render

    render(df, args.format, title=title)
    if df.height == 0:
        hint = "; rows never judged against constraints count as feasible only with --where" if _feasible(args) else ""
        print(f"archbench: no rows match ({title}){hint}", file=sys.stderr)


def _feasible(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "feasible", False)) and not getattr(args, "where", None)


def _describe(args: argparse.Namespace) -> str:
    from archbench.leaderboard import Filters

    return Filters.make(**_filters(args)).describe()


# ---- verbs --------------------------------------------------------------------------------------------


def cmd_show(args: argparse.Namespace) -> int:
    from archbench.leaderboard import Objective

    with _querying(args) as (lb, filters):
        df = lb.top(args.top or None, by=args.by, **filters)
    by = [Objective.parse(args.by).name] if args.by else []
    extra = ["error"] if args.status != "ok" else []
    default = ["arch_id", "study", "trial", "task", "budget", "device_name", "status", *ARCH_LOOK, *by]
    default += _present(df, QUICK_LOOK) + extra
    order = f"top {args.top} by {args.by}" if args.by else f"latest {args.top or 'all'}"
    _emit(_select(df, args.columns, default, args.format), args, f"{order}: {_describe(args)}")
    return 0


def cmd_pareto(args: argparse.Namespace) -> int:
    from archbench.leaderboard import parse_objectives

    objs = parse_objectives(args.objectives, minimum=2)
    with _querying(args) as (lb, filters):
        df = lb.pareto(objs, mix_hardware=args.mix_hardware, all_rows=args.all, **filters)
    rank = ["pareto_rank", "pareto_front"] if args.all else ["pareto_rank"]
    data = ["data_digest"] if df["data_digest"].n_unique() > 1 else []  # several fronts: say which data
    default = ["arch_id", "study", "task", "budget", "device_name", *data, *ARCH_LOOK, *(o.name for o in objs), *rank]
    what = "all rows ranked" if args.all else "Pareto front"
    scope = "per task, budget and data (hardware mixed)" if args.mix_hardware else "per task, budget, data and device"
    title = f"{what} of {', '.join(map(str, objs))}, {scope}: {_describe(args)}"
    _emit(_select(df, args.columns, default, args.format), args, title)
    return 0


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 4.0,20") from None


def cmd_hypervolume(args: argparse.Namespace) -> int:
    from archbench.leaderboard import parse_objectives

    objs = parse_objectives(args.objectives, minimum=1)
    with _querying(args) as (lb, filters):
        df = lb.hypervolume(objs, ref=args.ref, mix_hardware=args.mix_hardware, **filters)
    _emit(df, args, f"hypervolume of {', '.join(map(str, objs))}: {_describe(args)}")
    return 0


def cmd_sql(args: argparse.Namespace) -> int:
    with _querying(args) as (lb, filters):
        df = lb.sql(args.query, **filters)
    _emit(df, args, f"sql: {_describe(args)}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from archbench.leaderboard import parse_objectives

    objs = parse_objectives(args.objectives, minimum=2)
    with _querying(args) as (lb, filters):
        path = lb.plot(args.out, objs, mix_hardware=args.mix_hardware, **filters)
    print(f"wrote {path}")
    return 0


def _bounds(items: list[str] | None) -> dict[str, float]:
    """``--under latency_ms=20 --under params=1e6`` as ``{"latency_ms": 20.0, "params": 1e6}``."""
    out: dict[str, float] = {}
    for item in items or []:
        metric, sep, number = item.partition("=")
        metric = metric.strip()
        try:
            bound = float(number) if sep and metric else math.nan
        except ValueError:
            bound = math.nan
        if not math.isfinite(bound):
            raise ConfigError(f"--under {item!r}: write METRIC=BOUND with a finite number, e.g. --under latency_ms=20")
        if metric in out:
            raise ConfigError(f"--under {metric} is given twice")
        out[metric] = bound
    return out


def _one_row(lb: Any, row: dict[str, Any], args: argparse.Namespace, shown: list[str], title: str) -> None:
    """Print the chosen ``row``; with --export also write its config (as `archbench export` would)."""
    import polars as pl

    df = pl.from_dicts([row], infer_schema_length=1)
    default = ["arch_id", "study", "trial", "task", "budget", "device_name", *ARCH_LOOK, *shown]
    default += _present(df, QUICK_LOOK)
    _emit(_select(df, args.columns, default, args.format), args, title)
    if args.export:
        lb.export(row["arch_id"], args.export, row=row, **_filters(args, steer=False))
        print(f"wrote {args.export} (arch {row['arch_id']})", file=sys.stderr)


def cmd_pick(args: argparse.Namespace) -> int:
    from archbench.constraints import parse_constraints

    under = _bounds(args.under)
    bounds = [*parse_constraints(under), *parse_constraints(args.where)]
    with _querying(args) as (lb, filters):
        filters.pop("where")
        row = lb.pick(
            args.minimize, args.maximize, under=under, where=args.where, mix_hardware=args.mix_hardware, **filters
        )
    metric = args.minimize or args.maximize
    how = f"lowest {metric}" if args.minimize else f"highest {metric}"
    title = f"{how} with {', '.join(map(str, bounds)) or 'no bounds'}: {_describe(args)}"
    _one_row(lb, row, args, [metric, *(c.metric for c in bounds)], title)
    return 0


def cmd_knee(args: argparse.Namespace) -> int:
    from archbench.leaderboard import parse_objectives

    objs = parse_objectives(args.objectives, minimum=2)
    with _querying(args) as (lb, filters):
        row = lb.knee(objs, mix_hardware=args.mix_hardware, **filters)
    title = (
        f"knee of the front of {', '.join(map(str, objs))} (Das 1999, normal boundary intersection): {_describe(args)}"
    )
    _one_row(lb, row, args, [*(o.name for o in objs), "knee_distance"], title)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    import polars as pl

    from archbench.leaderboard.render import render

    lb = _open(args)
    report = lb.check(deep=not args.quick)
    print(
        f"{report.root}: {len(report.good)} good parts, {report.rows:,} rows; {len(report.bad)} bad parts; "
        f"{len(report.superseded)} superseded parts; {len(report.temp_files)} temporary files"
    )
    if report.bad:
        table = pl.DataFrame(
            {
                "part": [p.name for p in report.bad],
                "rows": [p.rows for p in report.bad],
                "problem": [p.problem for p in report.bad],
            },
            schema={"part": pl.String(), "rows": pl.Int64(), "problem": pl.String()},
        )
        render(table, args.format, title="bad parts (skipped by readers)")
    if args.fix:
        fixed = lb.fix(report)
        print(
            f"fixed: moved {len(fixed.quarantined)} bad parts to {lb.root / 'quarantine'}, removed "
            f"{len(fixed.removed_superseded)} superseded parts and {len(fixed.removed_temp)} stale temporary files"
        )
        return 0
    if report.bad:
        print(
            "archbench: the good rows stay readable; `archbench leaderboard check --fix` moves bad parts aside",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    lb = _open(args)
    with _warnings_to_stderr():
        rep = lb.compact(small_rows=args.small_rows, target_rows=args.target_rows)
    if not rep.new_parts:
        print(f"nothing to compact ({rep.parts_before} parts)")
    else:
        print(
            f"merged {rep.merged_parts} parts ({rep.rows:,} rows) into {len(rep.new_parts)}; "
            f"parts: {rep.parts_before} -> {rep.parts_after}"
        )
    return 0


# ---- parser -------------------------------------------------------------------------------------------


def _root(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root", metavar="DIR", help="leaderboard directory (default $ARCHBENCH_LEADERBOARD or runs/leaderboard)"
    )


def _query_args(p: argparse.ArgumentParser, fmt: bool = True, steer: bool = True) -> None:
    _root(p)
    p.add_argument("--task", help="only these tasks (comma-separated)")
    p.add_argument("--study", help="only these studies (comma-separated)")
    p.add_argument("--budget", help='only these training budgets (comma-separated), e.g. "steps=40"')
    p.add_argument(
        "--data-digest",
        metavar="PREFIX",
        help="only rows of this data: data_digest prefixes (or unknown)",
    )
    p.add_argument("--hardware", metavar="GLOB", help='device_name glob, case-insensitive (e.g. "NVIDIA H100*")')
    p.add_argument("--status", default="ok", help="statuses to include, comma-separated, or all (default ok)")
    if steer:
        p.add_argument(
            "--where",
            metavar="CONSTRAINTS",
            help='only rows meeting these, e.g. "latency_ms<=20,params<=1e6" (a null metric fails)',
        )
        p.add_argument("--feasible", action="store_true", help="only rows judged feasible against their constraints")
    if fmt:
        p.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table", help="output format")


def _objectives(p: argparse.ArgumentParser) -> None:
    from archbench.leaderboard.objectives import DEFAULT_OBJECTIVES

    p.add_argument(
        "--objectives", default=DEFAULT_OBJECTIVES, help=f"NAME[:min|max],... (default {DEFAULT_OBJECTIVES})"
    )
    p.add_argument(
        "--mix-hardware", action="store_true", help="a front per task, budget and data across devices (not comparable!)"
    )


def _verb(
    verbs: Any,
    name: str,
    help: str,
    func: Any,
    *,
    objectives: bool = False,
    columns: bool = False,
    export: str | None = None,
    fmt: bool = True,
) -> argparse.ArgumentParser:
    """A verb over the query arguments, with the options several verbs share: ``--objectives`` (and
    ``--mix-hardware``), ``--export`` of the ``export`` row and ``--columns``."""
    p = verbs.add_parser(name, help=help)
    _query_args(p, fmt=fmt)
    if objectives:
        _objectives(p)
    if export:
        p.add_argument("--export", metavar="FILE.yaml", help=f"also write the {export} row's config (as `export` does)")
    if columns:
        p.add_argument("--columns", help="comma-separated columns to print, or all")
    p.set_defaults(func=func)
    return p


def add_parser(sub: Any) -> None:
    """Register ``leaderboard`` (with its verbs) on the top-level subparsers."""
    lb = sub.add_parser("leaderboard", help="query, plot and maintain the results leaderboard")
    verbs = lb.add_subparsers(dest="leaderboard_command", required=True, metavar="ACTION")

    show = _verb(verbs, "show", "the best (or latest) rows", cmd_show, columns=True)
    show.add_argument(
        "--top", type=nonnegative_int, default=20, metavar="K", help="how many rows (default 20; 0 = all)"
    )
    show.add_argument(
        "--by", metavar="METRIC", help="rank by this metric (NAME or NAME:min|max); default: latest first"
    )

    pareto = _verb(verbs, "pareto", "the non-dominated rows per task, budget, data and device", cmd_pareto,
                   objectives=True, columns=True)  # fmt: skip
    pareto.add_argument("--all", action="store_true", help="every row, with its Pareto rank (0 = front)")

    hv = _verb(verbs, "hypervolume", "hypervolume of each front (pymoo)", cmd_hypervolume, objectives=True)
    hv.add_argument(
        "--ref", type=_floats, metavar="V1,V2,...", help="reference point (default: worst value + 10%% of the range)"
    )

    sql = _verb(verbs, "sql", "a read-only SQL query over the table `results`", cmd_sql)
    sql.add_argument("query", help='e.g. "SELECT arch_id, val_loss FROM results WHERE depth > 8"')

    plot = _verb(verbs, "plot", "scatter of all rows with the fronts drawn (pair grid for 3+ objectives)", cmd_plot,
                 objectives=True, fmt=False)  # fmt: skip
    plot.add_argument("--out", required=True, metavar="FILE", help="FILE.png, .svg, .pdf or .html")

    pick = _verb(verbs, "pick", "the best row under bounds, e.g. lowest val_loss with latency_ms<=20", cmd_pick,
                 columns=True, export="picked")  # fmt: skip
    by = pick.add_mutually_exclusive_group(required=True)
    by.add_argument("--minimize", metavar="METRIC", help="pick the row with the lowest METRIC")
    by.add_argument("--maximize", metavar="METRIC", help="pick the row with the highest METRIC")
    pick.add_argument(
        "--under", action="append", metavar="METRIC=BOUND", help="METRIC <= BOUND (repeat for several bounds)"
    )
    pick.add_argument("--mix-hardware", action="store_true", help="allow rows from several devices")

    _verb(verbs, "knee", "the front's point of largest trade-off (Das 1999 NBI knee)", cmd_knee, objectives=True,
          columns=True, export="knee")  # fmt: skip

    check = verbs.add_parser("check", help="verify every part; name the bad ones")
    _root(check)
    check.add_argument("--quick", action="store_true", help="read footers only, not every data page")
    check.add_argument(
        "--fix", action="store_true", help="move bad parts to quarantine/, drop leftovers of interrupted writes"
    )
    check.add_argument("--format", choices=("table", "csv", "json", "markdown"), default="table")
    check.set_defaults(func=cmd_check)

    compact = verbs.add_parser("compact", help="merge small parts into big ones (atomic, loses nothing)")
    _root(compact)
    compact.add_argument("--small-rows", type=positive_int, default=100_000, help="merge parts below this many rows")
    compact.add_argument("--target-rows", type=positive_int, default=1_000_000, help="rows per merged part at most")
    compact.set_defaults(func=cmd_compact)
