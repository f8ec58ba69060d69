"""Read-only SQL over the leaderboard through Polars' SQL engine; the table is called ``results``."""

from __future__ import annotations

import re

import polars as pl

from archbench.errors import ConfigError

TABLE = "results"
_COMMENT = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_STRING = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


def check_read_only(query: str) -> str:
    """The query without comments if it is one SELECT / WITH statement; otherwise a ConfigError."""
    text = _COMMENT.sub(" ", query).strip().rstrip(";").strip()
    if not text:
        raise ConfigError("empty SQL query: write SELECT ... FROM results")
    first = text.split(None, 1)[0].upper()
    if first not in ("SELECT", "WITH"):
        raise ConfigError(f"only read-only queries are allowed (SELECT or WITH), not {first}")
    if ";" in _STRING.sub("''", text):
        raise ConfigError("only one SQL statement is allowed")
    return text


def run_sql(lf: pl.LazyFrame, query: str) -> pl.DataFrame:
    """Run a read-only ``query`` against ``lf`` registered as ``results``."""
    text = check_read_only(query)
    ctx = pl.SQLContext({TABLE: lf}, register_globals=False)
    try:
        out = ctx.execute(text, eager=False)
        return out.collect() if isinstance(out, pl.LazyFrame) else out
    except pl.exceptions.ComputeError:
        raise  # may be a damaged part: the caller decides
    except (pl.exceptions.PolarsError, ValueError, TypeError) as exc:
        msg = " ".join(str(exc).split()).split(" Resolved plan")[0][:400] or type(exc).__name__
        raise ConfigError(f"SQL error: {msg}") from None
