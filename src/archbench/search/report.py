"""What a finished search leaves (:class:`SearchOutcome`) and the end-of-search report (:func:`print_outcome`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archbench.leaderboard import Leaderboard
from archbench.leaderboard.objectives import Objective
from archbench.search.calibration import RungMap
from archbench.search.progress import front_hypervolume, front_of, front_table
from archbench.search_space.architecture import Architecture

if TYPE_CHECKING:
    from archbench.search.config import SearchConfig
    from archbench.search.weights import KeptWeights


@dataclass(frozen=True)
class SearchOutcome:
    """What a finished search leaves: its study, counts, front rows, hypervolume and the plot path."""

    study: str
    study_dir: Path
    leaderboard: Path
    trials: int
    ok: int
    failed: int
    cached: int
    front: tuple[dict[str, Any], ...]
    hypervolume: float
    plot: Path | None
    wall_s: float
    rungs: tuple[tuple[str, int], ...] = ()  # a funnel's (budget, rows) per rung; the front is the last's
    screen_error: tuple[float, ...] = ()  # a funnel's top rows: screen_latency_ms / latency_ms - 1
    calibration: tuple[RungMap, ...] = ()  # search.calibrate: each lower rung's map onto the top rung's scale
    weights: KeptWeights | None = None  # search.keep_weights: where the kept weights are


def outcome_of(
    config: SearchConfig,
    study: str,
    lb: Leaderboard,
    by_rung: dict[int, dict[int, dict[str, Any]]],
    values: dict[int, tuple[float, ...]],
    started: float,
    calibration: tuple[RungMap, ...] = (),
) -> SearchOutcome:
    """Counts over the study's candidates (``by_rung[0]``, its rows ``{rung: {trial: row}}``); the front and
    hypervolume of ``values`` (the top rung's), and the front's plot."""
    funnel = config.fidelity.halving
    rows, top_rows = by_rung.get(0, {}), by_rung.get(config.fidelity.top, {})
    numbers = sorted(values)
    pts = np.array([values[n] for n in numbers], dtype=float).reshape(-1, len(config.objectives))
    mask = front_of(pts, config.objectives) if len(pts) else np.zeros(0, dtype=bool)
    front = []
    for n, on in zip(numbers, mask, strict=True):
        if on and n in top_rows:
            row = top_rows[n]
            arch = Architecture.from_dict({k: row[k] for k in Architecture.field_names()})
            front.append({"trial": n, "arch_id": row["arch_id"], "describe": arch.describe(),
                          **{o.name: row[o.name] for o in config.objectives}})  # fmt: skip
    key = config.objectives[0].name
    front.sort(key=lambda r: r[key], reverse=config.objectives[0].maximise)
    plot = None
    if config.plot and len(config.objectives) >= 2 and values:
        where = f"rung>={config.fidelity.top}" if funnel else None
        try:
            plot = lb.plot(config.study_dir / "front.png", list(config.objectives), study=study, where=where)
        except Exception:  # a plot is a convenience; the search's results are already safe
            plot = None
    ok = sum(r["status"] == "ok" for r in rows.values())
    budgets = config.fidelity.budgets(config.budget) if funnel else ()
    return SearchOutcome(
        study=study,
        study_dir=config.study_dir,
        leaderboard=Path(config.leaderboard),
        trials=len(rows),
        ok=ok,
        failed=len(rows) - ok,
        cached=sum(bool(r.get("cached")) for r in rows.values()),
        front=tuple(front),
        hypervolume=front_hypervolume(pts, config.objectives) if len(pts) else 0.0,
        plot=plot,
        wall_s=time.monotonic() - started,
        rungs=tuple((b, len(by_rung.get(r, {}))) for r, b in enumerate(budgets)),
        screen_error=tuple(
            r["screen_latency_ms"] / r["latency_ms"] - 1
            for r in top_rows.values()
            if r["status"] == "ok" and r.get("screen_latency_ms") and r.get("latency_ms")
        ),
        calibration=calibration,
    )


def print_outcome(outcome: SearchOutcome, objectives: Sequence[Objective]) -> None:
    """The end-of-search report: the front as a table, counts, and where the plot, rows and weights are."""
    from rich.console import Console

    console = Console()
    title = f"front of study {outcome.study}" + (f" (top rung, {outcome.rungs[-1][0]})" if outcome.rungs else "")
    console.print(front_table(outcome.front, objectives, title))
    console.print(
        f"{outcome.trials} trials ({outcome.ok} ok, {outcome.failed} failed, {outcome.cached} cached) "
        f"in {outcome.wall_s:.0f} s; hypervolume {outcome.hypervolume:.4g}"
    )
    if outcome.rungs:
        console.print("funnel: " + ", ".join(f"rung {r} ({b}) {n} rows" for r, (b, n) in enumerate(outcome.rungs)))
    if outcome.screen_error:
        errors = np.abs(outcome.screen_error)
        console.print(
            f"rung 0's quick latency vs the top rung's full measurement: median |error| {np.median(errors):.1%}, "
            f"largest {errors.max():.1%} over {len(errors)} rows (screen_latency_ms)"
        )
    for m in outcome.calibration:
        fit = "" if m.r2 is None else f", R^2 {m.r2:.2f}"
        console.print(
            f"calibration: {m.objective} at the top rung ~ {m.intercept:.3g} + {m.slope:.3g} x rung {m.rung}'s "
            f"(fitted on {m.n} trials{fit})"
        )
    console.print(f"leaderboard: {outcome.leaderboard}   study state: {outcome.study_dir}")
    if outcome.weights is not None:
        console.print(outcome.weights.line(), soft_wrap=True)
    if outcome.plot:
        console.print(f"front plot: {outcome.plot}")
