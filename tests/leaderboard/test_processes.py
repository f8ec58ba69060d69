"""Real processes: a writer killed with SIGKILL mid-append, and 8 writers (plus a compactor) at once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from archbench.leaderboard import Leaderboard

WORKER = str(Path(__file__).with_name("_worker.py"))


@pytest.mark.slow
def test_sigkill_mid_append_loses_no_acknowledged_row_and_shows_no_partial_one(tmp_path) -> None:
    root = tmp_path / "lb"
    batch = 3000
    rng = random.Random(0)
    acked: dict[str, set[int]] = {}
    for run in range(4):
        study = f"run{run}"
        proc = subprocess.Popen(
            [sys.executable, WORKER, "forever", str(root), str(batch), study], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        acked[study] = set()
        while len(acked[study]) < 3:
            line = proc.stdout.readline()
            assert line, "the writer died on its own"
            acked[study].add(int(line.split()[1]))
        time.sleep(rng.uniform(0.0, 0.04))  # land somewhere inside a later append
        os.kill(proc.pid, signal.SIGKILL)
        acked[study] |= {int(line.split()[1]) for line in proc.stdout}  # printed before the kill
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        lb = Leaderboard(root)
        assert lb.scan().collect().height % batch == 0  # readable, and only whole appends are visible
    report = Leaderboard(root).check()
    assert report.ok and all(p.rows == batch for p in report.good)
    df = Leaderboard(root).scan().collect()
    assert df.select("study", "trial").n_unique() == df.height  # no row twice
    for study, done in acked.items():
        rows = df.filter(pl.col("study") == study)
        present = set(rows["seed"].unique().to_list())
        # Every acknowledged append is there; beyond them at most the one in flight at the kill.
        assert done <= present <= done | {max(done) + 1}
        for b in present:
            trials = rows.filter(pl.col("seed") == b)["trial"].sort().to_list()
            assert trials == list(range(b * batch, (b + 1) * batch))  # whole, never partial
    assert df["val_loss"].null_count() == 0 and df["error"].str.len_chars().min() == 200


@pytest.mark.slow
def test_eight_processes_appending_500_rows_each_end_with_exactly_4000(tmp_path) -> None:
    root, start, stop = tmp_path / "lb", tmp_path / "start", tmp_path / "stop"
    compactor = subprocess.Popen(
        [sys.executable, WORKER, "compact", str(root), str(stop)], stdout=subprocess.PIPE, text=True
    )
    # Batches of 1 to 50 rows: hundreds of appends race each other and the compactor.
    writers = [
        subprocess.Popen(
            [sys.executable, WORKER, "append", str(root), str(w), "500", str([1, 5, 10, 50][w % 4]), str(start)]
        )
        for w in range(8)
    ]
    time.sleep(1.0)
    start.touch()
    for p in writers:
        assert p.wait(timeout=120) == 0
    stop.touch()
    out, _ = compactor.communicate(timeout=60)
    assert compactor.returncode == 0
    lb = Leaderboard(root)
    df = lb.scan().collect()
    assert df.height == 4000 == len(lb)
    assert df.select("study", "trial").n_unique() == 4000
    assert sorted(df["study"].unique().to_list()) == [f"w{w}" for w in range(8)]
    assert all(df.filter(pl.col("study") == f"w{w}")["trial"].sort().to_list() == list(range(500)) for w in range(8))
    assert lb.check().ok
    merges = int(out.split()[1])
    assert merges >= 1  # the compactor really ran alongside the writers
