"""The live view of a search: a rich progress bar with done / failed / running, elapsed time and the
current front's size and hypervolume; at the end a table of the front."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from archbench.leaderboard.hypervolume import default_ref, hypervolume_of, to_minimisation
from archbench.leaderboard.objectives import Objective
from archbench.leaderboard.pareto import nondominated


def front_of(values: np.ndarray, objectives: Sequence[Objective]) -> np.ndarray:
    """Mask of the non-dominated rows of ``values`` (objectives' own senses)."""
    return nondominated(values, [o.maximise for o in objectives])


def front_hypervolume(values: np.ndarray, objectives: Sequence[Objective]) -> float:
    """Hypervolume of ``values`` against the leaderboard's documented default reference point."""
    if len(values) == 0:
        return 0.0
    pts = to_minimisation(values, objectives)
    return hypervolume_of(pts, default_ref(pts))


class SearchProgress:
    """A rich progress bar; ``update`` after every finished trial."""

    def __init__(self, study: str, total: int, enabled: bool = True, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=self.console,
            disable=not enabled,
        )
        self._task = self._progress.add_task(study, total=total, stats="")

    def __enter__(self) -> SearchProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._progress.stop()

    def update(self, done: int, failed: int, running: int, front: int, hv: float) -> None:
        stats = f"failed {failed}  running {running}  front {front}  HV {hv:.4g}"
        self._progress.update(self._task, completed=done, stats=stats)

    def note(self, text: str) -> None:
        if self.enabled:
            self._progress.console.print(text)


def front_table(rows: Sequence[dict[str, Any]], objectives: Sequence[Objective], title: str) -> Table:
    """A rich table of front rows (dicts with trial, arch_id, describe and the objective values)."""
    table = Table(title=title)
    table.add_column("trial", justify="right")
    table.add_column("arch_id")
    for o in objectives:
        table.add_column(f"{o.name} ({o.sense})", justify="right")
    table.add_column("architecture")
    for row in rows:
        cells = [f"{row[o.name]:.4g}" if isinstance(row[o.name], float) else str(row[o.name]) for o in objectives]
        table.add_row(str(row["trial"]), row["arch_id"], *cells, row["describe"])
    return table
