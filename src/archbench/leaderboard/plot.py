"""Scatter of every row with each device's Pareto front drawn and labelled (matplotlib, no display).

Fronts are per budget, data and device: when the rows hold several budgets, each (device, budget) group is
its own series (own colour, a marker per budget, the budget in its legend label); rows of several
``data_digest`` values (null: unknown) are series of their own too, the digest in the label. Two objectives: one
scatter, the front as a staircase per series, front points labelled with their arch_id. Three or
more: a pair grid (scatter per pair, histograms on the diagonal) with the k-objective front outlined.
``.png``/``.svg``/``.pdf`` are written by matplotlib; ``.html`` is a self-contained page with the
figure inline (SVG) and the table of front rows.
"""

from __future__ import annotations

import html
import io
import os
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from archbench.errors import ConfigError
from archbench.leaderboard.objectives import Objective
from archbench.leaderboard.pareto import annotate, complete_expr, with_groups

IMAGE_SUFFIXES = (".png", ".svg", ".pdf")
SUFFIXES = (*IMAGE_SUFFIXES, ".html")
MAX_LABELS = 25  # per series, so a large front stays readable
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one per budget when there are several
_SERIES = "__series__"
_MARKER = "__marker__"


def _label(o: Objective) -> str:
    return f"{o.name} ({'lower' if o.sense == 'min' else 'higher'} is better)"


def _budget_label(budget: str) -> str:
    return budget or "no budget"


def _with_series(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with the legend label of each row's series and its marker.

    One series per device; per (device, budget) when ``df`` holds several budgets, labelled with both; and
    per data when it holds several ``data_digest`` values (``data 3f2a9c1e``, ``data unknown`` for rows from
    before the digest was recorded), so that each series is one front.
    """
    df = with_groups(df)
    label = pl.col("device_name")
    budgets = sorted(df["budget"].unique().to_list())
    if len(budgets) > 1:
        label = pl.format("{} @ {}", label, pl.col("budget").replace("", _budget_label("")))
    if df["data_digest"].n_unique() > 1:
        label = pl.format("{} / data {}", label, pl.col("data_digest").str.slice(0, 8).fill_null("unknown"))
    if len(budgets) <= 1:
        return df.with_columns(label.alias(_SERIES), pl.lit(MARKERS[0]).alias(_MARKER))
    markers = {b: MARKERS[i % len(MARKERS)] for i, b in enumerate(budgets)}
    return df.with_columns(
        label.alias(_SERIES), pl.col("budget").replace_strict(markers, return_dtype=pl.String()).alias(_MARKER)
    )


def _figure(df: pl.DataFrame, objs: Sequence[Objective], title: str):  # -> matplotlib Figure
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    devices = sorted(df[_SERIES].unique().to_list())  # one series per device (and budget)
    cmap = plt.get_cmap("tab10" if len(devices) <= 10 else "tab20")
    colors = {d: cmap(i % cmap.N) for i, d in enumerate(devices)}
    names = [o.name for o in objs]
    k = len(objs)
    if k == 2:
        fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
        axes = [[None, ax]]
        _pair(ax, df, objs[0], objs[1], devices, colors, labels=True)
        ax.set_xlabel(_label(objs[0]))
        ax.set_ylabel(_label(objs[1]))
        ax.legend(fontsize=8, loc="best")
    else:
        fig, axes = plt.subplots(k, k, figsize=(2.8 * k, 2.8 * k), layout="constrained", squeeze=False)
        for i in range(k):
            for j in range(k):
                ax = axes[i][j]
                if i == j:
                    for d in devices:
                        sub = df.filter(pl.col(_SERIES) == d)[names[i]].to_numpy()
                        ax.hist(sub, bins=30, alpha=0.5, color=colors[d])
                else:
                    _pair(ax, df, objs[j], objs[i], devices, colors, labels=False)
                if i == k - 1:
                    ax.set_xlabel(_label(objs[j]), fontsize=8)
                if j == 0:
                    ax.set_ylabel(_label(objs[i]), fontsize=8)
                ax.tick_params(labelsize=7)
        handles, labels = axes[0][1].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside upper right", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return fig


def _pair(ax, df, ox: Objective, oy: Objective, devices, colors, labels: bool) -> None:
    for d in devices:
        sub = df.filter(pl.col(_SERIES) == d)
        marker = sub[_MARKER][0]
        rest = sub.filter(~pl.col("pareto_front"))
        front = sub.filter(pl.col("pareto_front"))
        ax.scatter(
            rest[ox.name],
            rest[oy.name],
            s=12,
            alpha=0.35,
            color=colors[d],
            marker=marker,
            label=f"{d} ({sub.height} rows)",
        )
        ax.scatter(
            front[ox.name],
            front[oy.name],
            s=30,
            color=colors[d],
            marker=marker,
            edgecolors="black",
            linewidths=0.8,
            label=f"{d} front ({front.height})",
            zorder=3,
        )
        if labels and front.height:
            # The staircase bounds the region the front dominates (steps after a point when x is minimised).
            stair = front.sort([ox.name, oy.name], descending=[False, oy.maximise])
            ax.plot(
                stair[ox.name],
                stair[oy.name],
                color=colors[d],
                linewidth=1.2,
                drawstyle="steps-post" if ox.sense == "min" else "steps-pre",
            )
            for row in stair.head(MAX_LABELS).iter_rows(named=True):
                ax.annotate(
                    str(row["arch_id"])[:8],
                    (row[ox.name], row[oy.name]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
    ax.grid(alpha=0.3)


def _html(svg: str, front: pl.DataFrame, title: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in front.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape('' if v is None else (f'{v:.6g}' if isinstance(v, float) else str(v)))}</td>"
            for v in row
        )
        + "</tr>"
        for row in front.iter_rows()
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 6px;font-size:12px}</style></head><body>"
        f"<h2>{html.escape(title)}</h2>{svg}<h3>Pareto front ({front.height} rows)</h3>"
        f"<table><tr>{head}</tr>{body}</table></body></html>\n"
    )


def plot_front(
    df: pl.DataFrame, objs: Sequence[Objective], out: Path, mix_hardware: bool = False, source: str = ""
) -> Path:
    """Draw ``df``'s rows and fronts to ``out``; returns the path written."""
    if out.suffix.lower() not in SUFFIXES:
        raise ConfigError(f"--out {out}: the file must end in {', '.join(SUFFIXES)}")
    tasks = sorted(t for t in df["task"].unique().to_list() if t is not None)
    if len(tasks) > 1:
        raise ConfigError(
            f"rows from several tasks ({', '.join(tasks)}): fronts across tasks mean nothing; pick one with --task"
        )
    names = [o.name for o in objs]
    df = df.with_columns(pl.col("device_name").fill_null("unknown device"), pl.col("budget").fill_null(""))
    df = df.filter(complete_expr(objs))
    if df.height == 0:
        raise ConfigError(f"no rows with all of {', '.join(names)} to plot")
    df = annotate(df.with_columns([pl.col(n).cast(pl.Float64) for n in names]), objs, mix_hardware=mix_hardware)
    df = _with_series(df)
    budgets = sorted(df["budget"].unique().to_list())
    scope = _budget_label(budgets[0]) if len(budgets) == 1 else f"{len(budgets)} budgets, a front each"
    title = f"{tasks[0]} ({scope}): {', '.join(map(str, objs))} — {df.height} rows"
    title += f" — {source}" if source else ""
    if mix_hardware:
        title += " (front across devices)"
    import matplotlib.pyplot as plt

    fig = _figure(df, objs, title)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    try:
        if out.suffix.lower() == ".html":
            buf = io.StringIO()
            fig.savefig(buf, format="svg")
            svg = buf.getvalue()
            svg = svg[svg.find("<svg") :]
            front = (
                df.filter(pl.col("pareto_front"))
                .select(["arch_id", "budget", "device_name", *names])
                .sort(["budget", "device_name", names[0]])
            )
            tmp.write_text(_html(svg, front, title))
        else:
            fig.savefig(tmp, dpi=130)
        os.replace(tmp, out)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return out
