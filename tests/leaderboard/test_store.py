"""The parquet store: appends, types, schema versions, bad parts, check, fix and compact."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from archbench.errors import ConfigError
from archbench.leaderboard import SCHEMA_VERSION, Leaderboard, LeaderboardWarning, base_schema
from archbench.leaderboard.store import Store
from archbench.search_space.architecture import Architecture
from archbench.trial import TrialResult
from tests.leaderboard.rows import make_rows


def test_append_dicts_frames_and_trial_results(lb: Leaderboard) -> None:
    assert lb.append(make_rows(10)) == 10
    assert lb.append(pl.DataFrame(make_rows(5, seed=9))) == 5
    tr = TrialResult(
        Architecture(depth=3),
        task="charlm",
        status="ok",
        metrics={"val_loss": 2.0, "energy_mj": None, "my_metric": 7.5},
        null_reasons={"energy_mj": "no NVML on this machine"},
        hardware={"device_name": "cpu", "device_kind": "cpu", "cpu_model": "EPYC"},
    )
    assert lb.append([tr]) == 1
    assert lb.append([]) == 0
    df = lb.scan().collect()
    assert df.height == 16 == len(lb)
    schema = base_schema()
    assert list(df.columns[: len(schema)]) == list(schema)
    assert {"my_metric", "cpu_model"} <= set(df.columns)
    for name, dtype in schema.items():
        assert df.schema[name] == dtype, name
    row = df.filter(pl.col("arch_id") == tr.arch_id).row(0, named=True)
    assert row["energy_mj"] is None  # never 0
    assert json.loads(row["null_reasons"]) == {"energy_mj": "no NVML on this machine"}
    assert row["my_metric"] == 7.5 and row["depth"] == 3 and row["archbench_version"]
    assert df.filter(pl.col("my_metric").is_not_null()).height == 1  # null in the parts that lack it


def test_nan_becomes_null_and_missing_arch_id_is_computed(lb: Leaderboard) -> None:
    arch = Architecture(depth=2, width=64, heads=2)
    lb.append([{"task": "t", "status": "ok", "val_loss": float("nan"), "latency_ms": 3.0, **arch.to_dict()}])
    row = lb.scan().collect().row(0, named=True)
    assert row["val_loss"] is None and row["latency_ms"] == 3.0
    assert row["arch_id"] == arch.arch_id


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"arch_id": "a", "task": "t", "status": "great"}, "unknown status 'great'"),
        ({"arch_id": "a", "status": "ok"}, "needs a 'task'"),
        ({"arch_id": "a", "task": "t", "status": "ok", "val_loss": "low"}, "wrong type"),
        ({"task": "t", "status": "ok", "depth": 0}, "depth"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(lb: Leaderboard, row, match) -> None:
    with pytest.raises(ConfigError, match=match):
        lb.append([row])
    assert len(lb) == 0


def test_extra_column_types_are_unified_across_parts(lb: Leaderboard) -> None:
    lb.append([{"arch_id": "a", "task": "t", "status": "ok", "sm_count": 132, "note": "x"}])
    lb.append([{"arch_id": "b", "task": "t", "status": "ok", "sm_count": 108.5, "note": 3}])
    df = lb.scan().collect().sort("arch_id")
    assert df["sm_count"].dtype == pl.Float64 and df["sm_count"].to_list() == [132.0, 108.5]
    assert df["note"].dtype == pl.String and df["note"].to_list() == ["x", "3"]


def _write_raw(path, table: pa.Table, version: int | None) -> None:
    meta = {} if version is None else {b"archbench.schema_version": str(version).encode()}
    pq.write_table(table.replace_schema_metadata(meta), path)


def test_reads_a_part_written_by_schema_version_1(lb: Leaderboard) -> None:
    assert SCHEMA_VERSION == 3
    lb.append(make_rows(3))
    old = pa.table(
        {
            "arch_id": ["0123456789ab"],
            "task": ["charlm"],
            "status": ["failed"],
            "reason": ["diverged at step 3"],  # v1 name of `error`
            "finished_at": ["2025-01-01T00:00:00+00:00"],  # v1 name of `created_at`
            "depth": [4],
            "val_loss": [None],
        },
        schema=pa.schema(
            [
                ("arch_id", pa.string()),
                ("task", pa.string()),
                ("status", pa.string()),
                ("reason", pa.string()),
                ("finished_at", pa.string()),
                ("depth", pa.int32()),
                ("val_loss", pa.float64()),
            ]
        ),
    )
    _write_raw(lb.root / "parts" / "p-0-old.parquet", old, version=1)
    df = lb.query(status="all").collect()
    assert df.height == 4 and "reason" not in df.columns and "finished_at" not in df.columns
    row = df.filter(pl.col("arch_id") == "0123456789ab").row(0, named=True)
    assert row["error"] == "diverged at step 3" and row["created_at"] == "2025-01-01T00:00:00+00:00"
    assert row["depth"] == 4 and row["val_loss"] is None and row["latency_ms"] is None
    assert df.schema["depth"] == pl.Int64
    assert lb.check().ok


def test_rows_written_before_kv_heads_read_as_multi_head(lb: Leaderboard) -> None:
    """Schema 2 had no kv_heads: such rows are multi-head attention, kv_heads = heads."""
    lb.append(make_rows(2))
    old = pa.table({"arch_id": ["aaaaaaaaaaaa"], "task": ["charlm"], "status": ["ok"], "heads": [4], "depth": [2]})
    _write_raw(lb.root / "parts" / "p-0-v2.parquet", old, version=2)
    df = lb.query(status="all").collect()
    row = df.filter(pl.col("arch_id") == "aaaaaaaaaaaa").row(0, named=True)
    assert row["kv_heads"] == 4 and df.height == 3 and df["kv_heads"].null_count() == 0
    assert lb.check().ok


def test_bad_parts_are_skipped_named_and_never_deleted(lb: Leaderboard) -> None:
    lb.append(make_rows(20))
    lb.append(make_rows(7, seed=5))
    parts = lb.root / "parts"
    good = sorted(parts.glob("p-*.parquet"))
    (parts / "p-1-garbage.parquet").write_bytes(b"not parquet at all")
    data = good[0].read_bytes()
    (parts / "p-2-truncated.parquet").write_bytes(data[: len(data) // 2])
    _write_raw(parts / "p-3-future.parquet", pa.table({"arch_id": ["x"]}), version=SCHEMA_VERSION + 1)
    _write_raw(parts / "p-4-foreign.parquet", pa.table({"arch_id": ["x"]}), version=None)
    # A part whose footer is fine but whose data pages are damaged: only a deep check finds it.
    damaged = bytearray(good[1].read_bytes())
    for i in range(8, len(damaged) // 3):
        damaged[i] = 0xAB
    (parts / "p-5-pages.parquet").write_bytes(bytes(damaged))
    (parts / ".tmp-p-6-inflight.parquet").write_bytes(b"half")

    # Readers skip the four parts whose footer is bad at once, and the page-damaged one when reading fails.
    with pytest.warns(LeaderboardWarning) as caught:
        assert lb.top(None, status="all").height == 27
        assert lb.sql("SELECT count(*) AS n FROM results", status="all")["n"][0] == 27
        assert lb.pareto(["val_loss", "latency_ms"], all_rows=True).height == lb.query().collect().height
    messages = " ".join(str(w.message) for w in caught)
    assert "skipped 4 bad part" in messages and "1 damaged part(s) (p-5-pages.parquet)" in messages
    report = lb.check()
    problems = {p.name: p.problem for p in report.bad}
    assert set(problems) == {
        "p-1-garbage.parquet",
        "p-2-truncated.parquet",
        "p-3-future.parquet",
        "p-4-foreign.parquet",
        "p-5-pages.parquet",
    }
    assert "newer archbench" in problems["p-3-future.parquet"]
    assert "not written here" in problems["p-4-foreign.parquet"]
    assert "data pages" in problems["p-5-pages.parquet"] or "rows" in problems["p-5-pages.parquet"]
    assert report.rows == 27 and not report.ok
    assert [p.name for p in report.temp_files] == [".tmp-p-6-inflight.parquet"]
    assert len(list(parts.iterdir())) == 8  # nothing deleted by check
    fixed = lb.fix(report)
    assert len(fixed.quarantined) == 5 and fixed.removed_temp == ()  # a fresh temp file may be a live writer
    assert sorted(p.name for p in (lb.root / "quarantine").iterdir()) == sorted(problems)
    assert lb.check().ok and lb.scan().collect().height == 27


def test_compact_merges_atomically_and_loses_nothing(lb: Leaderboard) -> None:
    for i in range(12):
        lb.append(make_rows(10 + i, seed=i))
    before = lb.scan().collect().sort("created_at", "trial", "seed")
    report = lb.compact(small_rows=1000, target_rows=60)
    assert 0 < report.rows <= before.height and report.parts_after < 12 and report.parts_before == 12
    after = lb.scan().collect().sort("created_at", "trial", "seed")
    assert after.equals(before)
    assert len(list((lb.root / "parts").glob("p-*"))) <= 1  # a chunk of one part is left alone
    assert lb.check().ok
    # Compacting again merges the compacted parts themselves.
    lb.compact(small_rows=1000, target_rows=10_000)
    assert len(list((lb.root / "parts").glob("*.parquet"))) == 1
    assert lb.scan().collect().sort("created_at", "trial", "seed").equals(before)


def test_a_compaction_interrupted_before_deleting_shows_no_row_twice(lb: Leaderboard) -> None:
    lb.append(make_rows(10, seed=1))
    lb.append(make_rows(10, seed=2))
    store = Store(lb.root)
    sources = store.visible_parts()
    merged = store.scan(sources).collect()
    store.write(merged, prefix="c", replaces=tuple(p.name for p in sources))  # then "crash": sources stay
    assert lb.scan().collect().height == 20
    report = lb.check()
    assert sorted(report.superseded) == sorted(p.name for p in sources) and report.rows == 20
    lb.fix(report)
    assert len(list((lb.root / "parts").iterdir())) == 1 and len(lb) == 20


def test_compact_refuses_while_locked(lb: Leaderboard) -> None:
    lb.append(make_rows(3))
    lb.append(make_rows(3))
    (lb.root / "compact.lock").write_text("host=elsewhere pid=1")
    with pytest.raises(ConfigError.__mro__[1], match="another compaction"):
        lb.compact()
    assert len(lb) == 6


def test_empty_and_missing_leaderboards(tmp_path) -> None:
    lb = Leaderboard(tmp_path / "nothing")
    assert not lb.exists() and len(lb) == 0
    assert lb.scan().collect().columns == list(base_schema())
    assert lb.pareto(["val_loss", "latency_ms"]).height == 0
    assert lb.check().ok


def test_root_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ARCHBENCH_LEADERBOARD", str(tmp_path / "env"))
    assert Leaderboard().root == tmp_path / "env"
    monkeypatch.delenv("ARCHBENCH_LEADERBOARD")
    assert str(Leaderboard().root) == os.path.join("runs", "leaderboard")


def test_leaderboard_does_not_import_torch() -> None:
    code = (
        "import sys, archbench, archbench.leaderboard, archbench.cli.leaderboard\n"
        "from archbench.leaderboard import plot, sql, hypervolume, export, maintenance, render\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('clean')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"
