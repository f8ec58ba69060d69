"""Read-only SQL over the leaderboard through Polars' SQL engine; the table is called ``results``.

A query may read ``results`` and the names its own ``WITH`` defines, nothing else: Polars' SQL also
resolves table functions in a FROM clause (``read_csv('/any/path')``, ``read_parquet``, ``read_json``,
``read_ipc``), which would read any file the process can. The query is parsed (sqlglot, in DuckDB's
dialect, the closest to Polars': ``//``, ``::``, ``COLUMNS(...)``, ``ORDER BY ALL``) and every relation
in it must be a plain name of those; Polars' own parser is then asked which relations it sees, so a
query the two parsers read differently is refused rather than trusted.
"""

from __future__ import annotations

import logging

import polars as pl
import sqlglot
from sqlglot import exp

from archbench.errors import ConfigError

TABLE = "results"
_DIALECT = "duckdb"
# sqlglot logs a warning when it reads a statement it does not know as a bare command (EXPLAIN ...);
# the refusal below is the one line the user sees.
logging.getLogger("sqlglot").setLevel(logging.ERROR)


def check_read_only(query: str) -> str:
    """``query`` if it is one SELECT / WITH statement that reads only ``results`` (and its own WITH
    names); otherwise a ConfigError in one line."""
    try:
        parsed = sqlglot.parse(query, read=_DIALECT)
        statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]  # not comments
    except sqlglot.errors.SqlglotError as exc:
        first = " ".join(str(exc).split())[:200]
        raise ConfigError(f"SQL error: cannot parse the query ({first})") from None
    if not statements:
        raise ConfigError("empty SQL query: write SELECT ... FROM results")
    if len(statements) > 1:
        raise ConfigError("only one SQL statement is allowed")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        kind = tree.key.upper() if tree.key != "command" else str(tree.this).upper()
        raise ConfigError(f"only read-only queries are allowed (SELECT or WITH), not {kind}")
    allowed = _read_only_relations(tree)
    _check_polars_agrees(query, allowed)
    return query.strip().rstrip(";").strip()


def _read_only_relations(tree: exp.Expression) -> set[str]:
    """The relation names ``tree`` may read (``results`` and its WITH names), after checking that every
    relation in it is one of them and that nothing in a FROM or JOIN is a function or a file."""
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    shadowing = sorted(name for name in ctes if name.lower().startswith("read_"))
    if shadowing:  # Polars calls read_csv(...) its file reader even where a WITH defines read_csv
        raise ConfigError(f"WITH name {shadowing[0]!r}: names starting with read_ are Polars' file readers")
    allowed = {TABLE, *ctes}
    for node in tree.find_all(exp.Table):
        if not isinstance(node.this, exp.Identifier):
            raise _refused(node.this.sql(_DIALECT))
        if node.args.get("db") or node.args.get("catalog") or node.name not in allowed:
            raise _refused(node.sql(_DIALECT))
    for node in tree.find_all(exp.From, exp.Join, exp.Lateral):
        source = node.this
        if isinstance(source, exp.Func | exp.Unnest | exp.Values | exp.Literal):
            raise _refused(source.sql(_DIALECT))
    return allowed


def _check_polars_agrees(query: str, allowed: set[str]) -> None:
    """Polars' own parser must see only ``allowed`` relations (it also lists table functions by name)."""
    from polars._plr import PySQLContext  # what pl.sql uses to find the frames a query names

    try:
        seen = PySQLContext.table_identifiers(query, include_schema=True, unique=True)
    except Exception as exc:  # a query Polars cannot parse fails in execution with Polars' message
        if isinstance(exc, pl.exceptions.PolarsError | ValueError):
            return
        raise
    for name in seen:
        if name not in allowed:
            raise _refused(name)


def _refused(what: str) -> ConfigError:
    return ConfigError(
        f"SQL may read only the table {TABLE} (and names its WITH defines), not {what[:120]}: "
        "table functions (read_csv, read_parquet, ...) and file paths are refused"
    )


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
