"""Print a query's DataFrame as a table (rich), CSV, JSON (an array of row objects) or Markdown."""

from __future__ import annotations

import io
import math
import sys
from typing import Any, TextIO

import polars as pl

from archbench.errors import ConfigError

FORMATS = ("table", "csv", "json", "markdown")


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return str(value)


def _flatten(df: pl.DataFrame) -> pl.DataFrame:
    """CSV cannot hold nested values: lists become their JSON text."""
    nested = [n for n, t in df.schema.items() if t.is_nested()]
    return df.with_columns([pl.col(n).map_elements(lambda v: str(list(v)), return_dtype=pl.String) for n in nested])


def render(df: pl.DataFrame, fmt: str, out: TextIO | None = None, title: str | None = None) -> None:
    """Write ``df`` to ``out`` (stdout) in ``fmt``. Nulls print as ``—`` in tables, empty in CSV, null in JSON."""
    out = out or sys.stdout
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}: allowed {', '.join(FORMATS)}")
    if fmt == "csv":
        out.write(_flatten(df).write_csv())
    elif fmt == "json":
        buf = io.StringIO()
        df.write_json(buf)
        out.write(buf.getvalue().rstrip("\n") + "\n")
    elif fmt == "markdown":
        out.write(markdown(df))
    else:
        _rich_table(df, out, title)


def markdown(df: pl.DataFrame) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(c) for c in df.columns) + " |"]
    aligns = ["---:" if t.is_numeric() else "---" for t in df.dtypes]
    lines.append("| " + " | ".join(aligns) + " |")
    for row in df.iter_rows():
        lines.append("| " + " | ".join(esc(_cell(v)) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _rich_table(df: pl.DataFrame, out: TextIO, title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False, header_style="bold")
    for name, dtype in df.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left", overflow="fold")
    for row in df.iter_rows():
        table.add_row(*(_cell(v) for v in row))
    width = None if out.isatty() else max(120, 14 * max(1, df.width))
    Console(file=out, width=width, soft_wrap=False).print(table)
