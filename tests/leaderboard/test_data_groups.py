"""Fronts never mix data: pareto, hypervolume, pick, knee and plot are per data_digest as they are per budget;
rows without a digest (written before it was recorded) are "unknown", a group of their own; ``--data-digest``
filters by prefix. On a real parquet leaderboard with rows of two digests and nulls."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from archbench.cli.main import main
from archbench.errors import ConfigError
from archbench.leaderboard import Leaderboard
from archbench.leaderboard.plot import _with_series
from archbench.search.trial_evaluators import LookupEvaluator

A, B = "aaaa1111aaaa1111", "bbbb2222bbbb2222"
OBJS = "val_loss,latency_ms"


def row(trial: int, digest: str | None, val_loss: float, latency_ms: float) -> dict[str, Any]:
    return {
        "arch_id": f"{trial:012x}", "study": "s", "trial": trial, "task": "text", "budget": "steps=40",
        "status": "ok", "depth": 2 + trial, "width": 64, "heads": 2, "val_loss": val_loss,
        "latency_ms": latency_ms, "device_name": "cpu: test", "device_kind": "cpu", "data_digest": digest,
        "created_at": f"2026-11-01T00:00:{trial:02d}.000000+00:00",
    }  # fmt: skip


# Corpus A's front is trials 0-1 (2 is dominated); corpus B's rows (easier data: lower loss) would dominate
# all of A's if mixed; the unknown rows (null digest) would dominate B's.
ROWS = [
    row(0, A, 2.0, 1.0),
    row(1, A, 1.5, 2.0),
    row(2, A, 2.5, 3.0),
    row(3, B, 1.0, 0.9),
    row(4, B, 1.2, 2.5),
    row(5, None, 0.5, 0.5),
    row(6, None, 0.6, 0.4),
]


@pytest.fixture
def board(tmp_path) -> Leaderboard:
    lb = Leaderboard(tmp_path / "lb")
    lb.append(ROWS)
    return lb


def test_each_digest_and_unknown_has_its_own_front(board: Leaderboard) -> None:
    assert sorted(board.pareto(OBJS)["trial"].to_list()) == [0, 1, 3, 5, 6]
    assert sorted(board.pareto(OBJS, mix_hardware=True)["trial"].to_list()) == [0, 1, 3, 5, 6]
    ranked = board.pareto(OBJS, all_rows=True)
    ranks = dict(zip(ranked["trial"].to_list(), ranked["pareto_rank"].to_list(), strict=True))
    assert ranks == {0: 0, 1: 0, 2: 1, 3: 0, 4: 1, 5: 0, 6: 0}
    table = board.hypervolume(OBJS, ref=[3.0, 4.0])
    by = {r["data_digest"]: r for r in table.iter_rows(named=True)}
    assert set(by) == {A, B, None} and [by[d]["front"] for d in (A, B, None)] == [2, 1, 2]
    assert by[B]["hypervolume"] == pytest.approx((3.0 - 1.0) * (4.0 - 0.9))


def test_the_data_digest_filter_takes_prefixes_and_unknown(board: Leaderboard) -> None:
    assert sorted(board.query(data_digest="aaaa").collect()["trial"].to_list()) == [0, 1, 2]
    assert sorted(board.query(data_digest="unknown").collect()["trial"].to_list()) == [5, 6]
    assert sorted(board.query(data_digest=["bbbb", "unknown"]).collect()["trial"].to_list()) == [3, 4, 5, 6]
    with pytest.raises(ConfigError, match=r"--data-digest 'cccc' matches no row's data_digest; digests: aaaa"):
        board.check_filters(data_digest="cccc")


def test_pick_and_knee_across_data_are_refused_and_run_on_one(board: Leaderboard) -> None:
    for call in (lambda: board.pick(minimize="val_loss"), lambda: board.knee(OBJS)):
        with pytest.raises(ConfigError, match=rf"rows from 3 data_digests \({A}, {B}, unknown\); pick one with --data-"):
            call()
    assert board.pick(minimize="val_loss", data_digest="aaaa")["trial"] == 1
    assert board.pick(minimize="val_loss", data_digest="unknown")["trial"] == 5
    assert board.knee(OBJS, data_digest="bbbb")["trial"] == 3


def test_the_cli_filters_and_plots_a_series_per_data(board: Leaderboard, tmp_path, capsys) -> None:
    assert main(["leaderboard", "pareto", "--root", str(board.root), "--format", "csv"]) == 0
    out = pl.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    assert "data_digest" in out.columns and sorted(out["trial"].to_list()) == [0, 1, 3, 5, 6]
    args = ["leaderboard", "pick", "--root", str(board.root), "--minimize", "val_loss", "--data-digest", "bbbb"]
    assert main(args) == 0 and "000000000003" in capsys.readouterr().out
    assert main([*args[:-1], "zzz"]) == 2 and capsys.readouterr().err.count("\n") == 1
    series = _with_series(board.query().collect())["__series__"].unique().sort().to_list()
    assert series == ["cpu: test / data aaaa1111", "cpu: test / data bbbb2222", "cpu: test / data unknown"]
    assert board.plot(tmp_path / "f.png", OBJS).is_file()


def test_a_lookup_table_of_several_data_needs_one_picked(board: Leaderboard) -> None:
    with pytest.raises(ConfigError, match=r"on 3 data \(aaaa1111aaaa1111, bbbb2222bbbb2222, unknown\): pick one with"):
        LookupEvaluator.load(str(board.root), "text", "steps=40")
    chosen = LookupEvaluator.load(str(board.root), "text", "steps=40", data="bbbb")
    assert sorted(chosen.rows) == [f"{3:012x}", f"{4:012x}"] and chosen.data_digest() == B
