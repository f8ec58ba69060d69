"""`leaderboard sql` reads the table `results` only: Polars' table functions and file paths are refused in
one line, on real files that Polars itself would read."""

from __future__ import annotations

import os
import warnings

import polars as pl
import pytest

from archbench.cli.main import main
from archbench.leaderboard.sql import check_read_only

SECRET = "secret-7f3a"


@pytest.fixture
def files(tmp_path) -> dict[str, str]:
    """One real file per Polars reader, each holding SECRET, outside the leaderboard."""
    frame = pl.DataFrame({"arch_id": [SECRET], "val_loss": [1.0]})
    paths = {kind: str(tmp_path / f"other.{kind}") for kind in ("csv", "parquet", "ipc", "json")}
    frame.write_csv(paths["csv"])
    frame.write_parquet(paths["parquet"])
    frame.write_ipc(paths["ipc"])
    frame.write_ndjson(paths["json"])  # Polars' read_json reads JSON lines
    return paths


def _attacks(f: dict[str, str]) -> list[str]:
    return [
        f"SELECT * FROM read_csv('{f['csv']}')",
        f"SELECT * FROM read_parquet('{f['parquet']}')",
        f"SELECT * FROM read_ipc('{f['ipc']}')",
        f"SELECT * FROM read_json('{f['json']}')",
        f"select arch_id from READ_CSV('{f['csv']}') limit 1",
        f"SELECT arch_id FROM results UNION ALL SELECT arch_id FROM read_parquet('{f['parquet']}')",
        f"SELECT * FROM results WHERE arch_id IN (SELECT arch_id FROM read_csv('{f['csv']}'))",
        f"SELECT r.arch_id FROM results r JOIN read_csv('{f['csv']}') t ON r.arch_id = t.arch_id",
        f"SELECT * FROM results, read_csv('{f['csv']}') AS t",
        f"WITH t AS (SELECT * FROM read_csv('{f['csv']}')) SELECT * FROM t",
        f"WITH read_csv AS (SELECT * FROM results) SELECT * FROM read_csv('{f['csv']}')",
        f"SELECT (SELECT max(arch_id) FROM read_ipc('{f['ipc']}')) AS m FROM results",
    ]


def test_polars_alone_would_read_these_files(files, tmp_path) -> None:
    """The attacks are real: Polars' SQL engine, unguarded, opens the other file (each query runs with it
    and fails once it is moved away); the plain ones return its contents."""
    ctx = pl.SQLContext({"results": pl.LazyFrame({"arch_id": ["x"], "val_loss": [0.0]})})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        attacks = _attacks(files)
        for query in attacks[:5]:
            assert SECRET in str(ctx.execute(query).collect().to_dicts()), query
        for query in attacks:
            ctx.execute(query).collect()
        moved = tmp_path / "moved"
        moved.mkdir()
        for path in files.values():
            os.rename(path, moved / os.path.basename(path))
        for query in attacks:
            with pytest.raises((OSError, pl.exceptions.PolarsError)):
                ctx.execute(query).collect()


def test_table_functions_are_refused_in_one_line(filled, files, capsys) -> None:
    for query in _attacks(files):
        code = main(["leaderboard", "sql", query, "--root", str(filled.root)])
        out, err = capsys.readouterr()
        assert code == 2, query
        assert err.startswith("archbench: error: ") and len(err.strip().splitlines()) == 1, err
        assert "table functions (read_csv, read_parquet, ...) and file paths are refused" in err or (
            "names starting with read_ are Polars' file readers" in err
        ), err
        assert SECRET not in out and out == ""


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * FROM '/etc/hostname'",
        'SELECT * FROM "/etc/hostname"',
        "SELECT * FROM main.results",
        "SELECT * FROM other_table",
        "SELECT * FROM generate_series(1, 3) AS t(a)",
        "SELECT * FROM unnest([1, 2]) AS t(a)",
    ],
)
def test_paths_other_tables_and_other_functions_are_refused(query) -> None:
    with pytest.raises(Exception, match="SQL may read only the table results") as info:
        check_read_only(query)
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("query", "rows"),
    [
        ("WITH t AS (SELECT arch_id FROM results) SELECT count(*) AS n FROM t", 1),
        ("SELECT 'read_csv(''/etc/hostname'')' AS s, arch_id FROM results LIMIT 2", 2),  # a string, not a call
        ("SELECT arch_id FROM results -- read_csv('/etc/hostname')", 240),
        ("SELECT arch_id FROM results; -- a trailing comment", 240),
        ("SELECT depth // 2 AS half, depth::float AS d FROM results ORDER BY ALL LIMIT 3", 3),
        ("SELECT COLUMNS('^val_.*$') FROM results LIMIT 1", 1),
        ("SELECT a.arch_id FROM results a JOIN results b ON a.arch_id = b.arch_id LIMIT 5", 5),
    ],
)
def test_queries_over_results_still_run(filled, query, rows) -> None:
    assert filled.sql(query, status="all").height == rows
