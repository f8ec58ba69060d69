"""Row filters shared by every query: task, study, budget, data (a ``data_digest`` prefix), hardware glob (on
device_name), status, and the steering filters: constraints on stored metrics (``where``) and feasibility
(``feasible``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from archbench.constraints import Constraint, ConstraintsArg, constraints_expr, parse_constraints
from archbench.errors import ConfigError
from archbench.leaderboard.objectives import Objective, check_columns
from archbench.trial import STATUSES

ALL_STATUSES = "all"


def _split(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s.strip() for s in items if s.strip())


def _split_budget(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """Like :func:`_split`, but ``""`` (the budget of old rows) is a value: ``budget=""`` selects those rows."""
    if value is None:
        return ()
    if isinstance(value, str):
        return _split(value) or ("",)
    return tuple(dict.fromkeys(s.strip() for s in value))


UNKNOWN = "unknown"  # the data_digest filter's name for rows written before the digest was recorded (null)


def _digest_expr(prefix: str) -> pl.Expr:
    if prefix == UNKNOWN:
        return pl.col("data_digest").is_null()
    return pl.col("data_digest").fill_null("").str.starts_with(prefix)


def glob_to_regex(pattern: str) -> str:
    """A shell glob (``*``, ``?``, ``[abc]``) as an anchored, case-insensitive regex for Polars."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in pattern[i + 2 :]:
            j = pattern.index("]", i + 2)
            body = pattern[i + 1 : j]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = j
        else:
            out.append(re.escape(c))
        i += 1
    return "(?i)^" + "".join(out) + "$"


@dataclass(frozen=True)
class Filters:
    """Which rows a query sees. Empty tuples mean "any"; ``status`` defaults to ``ok`` only.

    ``budget``: training budgets (``"steps=40"``), compared exactly; ``""`` is the budget of rows that
    recorded none.

    ``data_digest``: prefixes of the data's digest (``3f2a`` keeps rows whose ``data_digest`` starts so);
    ``unknown`` keeps the rows written before the digest was recorded (null).

    ``where``: every constraint must hold on the row's stored metrics (a null metric fails).
    ``feasible``: only rows judged feasible (``feasible`` true); a row never judged (null) counts as
    feasible only when ``where`` is given and it passes ``where``. A row judged infeasible never does.
    """

    task: tuple[str, ...] = ()
    study: tuple[str, ...] = ()
    hardware: str | None = None  # glob on device_name, case-insensitive
    status: tuple[str, ...] = ("ok",)
    where: tuple[Constraint, ...] = ()
    feasible: bool = False
    budget: tuple[str, ...] = ()
    data_digest: tuple[str, ...] = ()

    @classmethod
    def make(
        cls,
        task: str | Sequence[str] | None = None,
        study: str | Sequence[str] | None = None,
        hardware: str | None = None,
        status: str | Sequence[str] | None = "ok",
        where: ConstraintsArg = None,
        feasible: bool = False,
        budget: str | Sequence[str] | None = None,
        data_digest: str | Sequence[str] | None = None,
    ) -> Filters:
        """Filters from user values: comma-separated lists allowed; ``status="all"`` (or None) keeps every status."""
        statuses = _split(status)
        if ALL_STATUSES in statuses or status is None:
            statuses = ()
        for s in statuses:
            if s not in STATUSES:
                close = difflib.get_close_matches(s, STATUSES, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown status {s!r}{hint}: allowed {', '.join(STATUSES)} or all")
        return cls(
            _split(task),
            _split(study),
            hardware or None,
            statuses,
            parse_constraints(where),
            bool(feasible),
            _split_budget(budget),
            _split(data_digest),
        )

    def expr(self) -> pl.Expr:
        conds = [pl.lit(True)]
        if self.task:
            conds.append(pl.col("task").is_in(list(self.task)))
        if self.study:
            conds.append(pl.col("study").is_in(list(self.study)))
        if self.budget:
            conds.append(pl.col("budget").is_in(list(self.budget)))
        if self.data_digest:
            conds.append(pl.any_horizontal([_digest_expr(d) for d in self.data_digest]))
        if self.hardware:
            conds.append(pl.col("device_name").fill_null("").str.contains(glob_to_regex(self.hardware)))
        if self.status:
            conds.append(pl.col("status").is_in(list(self.status)))
        if self.where:
            conds.append(constraints_expr(self.where))
        if self.feasible:
            judged = pl.col("feasible").fill_null(bool(self.where))  # unjudged rows: feasible if they pass where
            conds.append(judged)
        return pl.all_horizontal(conds)

    def apply(self, lf: pl.LazyFrame) -> pl.LazyFrame:
        if self.where:
            metrics = [Objective(c.metric) for c in self.where]
            check_columns(metrics, lf.collect_schema(), what="constraint metric")
        active = self.task or self.study or self.budget or self.data_digest or self.hardware or self.status
        active = active or self.where or self.feasible
        return lf.filter(self.expr()) if active else lf

    def check_known(self, lf: pl.LazyFrame) -> None:
        """Refuse a task, study, budget or hardware glob that matches nothing in the whole leaderboard (a typo)."""
        checks = [("task", self.task), ("study", self.study), ("budget", self.budget)]
        needed = [c for c, values in checks if values] + (["device_name"] if self.hardware else [])
        needed += ["data_digest"] if self.data_digest else []
        if not needed:
            return
        known = lf.select([pl.col(c).unique().implode() for c in needed]).collect().row(0, named=True)
        for column, values in checks:
            if not values:
                continue
            present = sorted(v for v in known[column] if v is not None)
            for v in values:
                if v not in present:
                    close = difflib.get_close_matches(v, present, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    listed = ", ".join(repr(p) for p in present[:20]) or "none"
                    raise ConfigError(f"no rows with {column} {v!r}{hint}; {column}s in the leaderboard: {listed}")
        if self.data_digest:
            digests = sorted(v for v in known["data_digest"] if v is not None)
            have_unknown = any(v is None for v in known["data_digest"])
            for d in self.data_digest:
                if not (have_unknown if d == UNKNOWN else any(v.startswith(d) for v in digests)):
                    listed = ", ".join(digests[:20] + ([UNKNOWN] if have_unknown else [])) or "none"
                    raise ConfigError(f"--data-digest {d!r} matches no row's data_digest; digests: {listed}")
        if self.hardware:
            devices = sorted(v for v in known["device_name"] if v is not None)
            rx = re.compile(glob_to_regex(self.hardware).removeprefix("(?i)"), re.IGNORECASE)
            if not any(rx.match(d) for d in devices):
                listed = ", ".join(repr(d) for d in devices[:20]) or "none"
                raise ConfigError(f"--hardware {self.hardware!r} matches no device_name; devices: {listed}")

    def describe(self) -> str:
        parts = []
        if self.task:
            parts.append(f"task={','.join(self.task)}")
        if self.study:
            parts.append(f"study={','.join(self.study)}")
        if self.budget:
            parts.append(f"budget={','.join(b or repr(b) for b in self.budget)}")
        if self.data_digest:
            parts.append(f"data_digest={','.join(self.data_digest)}")
        if self.hardware:
            parts.append(f"hardware={self.hardware}")
        parts.append(f"status={','.join(self.status) if self.status else 'all'}")
        if self.where:
            parts.append(f"where={','.join(map(str, self.where))}")
        if self.feasible:
            parts.append("feasible")
        return " ".join(parts)
