"""Fronts never mix data: pareto, hypervolume, pick, knee and plot are per data_digest as they are per budget;
rows without a digest (written before it was recorded) are "unknown", a group of their own; ``--data-digest``
filters by prefix. On a real parquet leaderboard with rows of two digests and nulls."""

from __future__ import annotations

import io

import polars as pl
import pytest

from archbench.cli.main import main
from archbench.errors import ConfigError
from archbench.leaderboard import Leaderboard
from archbench.leaderboard.plot import _with_series
from archbench.search.trial_evaluators import LookupEvaluator
from tests.leaderboard.test_budget_groups import SHORT, row

A, B = "aaaa1111aaaa1111", "bbbb2222bbbb2222"
OBJS = "val_loss,latency_ms"


# Corpus A's front is trials 0-1 (2 is dominated); corpus B's rows (easier data: lower loss) would dominate
# all of A's if mixed; the unknown rows (null digest) would dominate B's.
VALUES = [(A, 2.0, 1.0), (A, 1.5, 2.0), (A, 2.5, 3.0), (B, 1.0, 0.9), (B, 1.2, 2.5), (None, 0.5, 0.5), (None, 0.6, 0.4)]


@pytest.fixture
def board(tmp_path) -> Leaderboard:
    lb = Leaderboard(tmp_path / "lb")
    lb.append([row(t, SHORT, loss, ms, data_digest=d) for t, (d, loss, ms) in enumerate(VALUES)])
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
        with pytest.raises(
            ConfigError, match=rf"rows from 3 data_digests \({A}, {B}, unknown\); pick one with --data-"
        ):
            call()
    assert board.pick(minimize="val_loss", data_digest="aaaa")["trial"] == 1
    assert board.pick(minimize="val_loss", data_digest="unknown")["trial"] == 5
    assert board.knee(OBJS, data_digest="bbbb")["trial"] == 3


def test_the_cli_filters_and_draws_a_series_per_data(board: Leaderboard, capsys) -> None:
    assert main(["leaderboard", "pareto", "--root", str(board.root), "--format", "csv"]) == 0
    out = pl.read_csv(io.StringIO(capsys.readouterr().out))
    assert "data_digest" in out.columns and sorted(out["trial"].to_list()) == [0, 1, 3, 5, 6]
    args = ["leaderboard", "pick", "--root", str(board.root), "--minimize", "val_loss", "--data-digest", "bbbb"]
    assert main(args) == 0 and "000000000003" in capsys.readouterr().out
    assert main([*args[:-1], "zzz"]) == 2 and capsys.readouterr().err.count("\n") == 1
    series = _with_series(board.query().collect())["__series__"].unique().sort().to_list()
    assert series == [f"cpu: AMD EPYC 7B13 / data {d}" for d in ("aaaa1111", "bbbb2222", "unknown")]


def test_a_lookup_table_of_several_data_needs_one_picked(board: Leaderboard) -> None:
    with pytest.raises(ConfigError, match=r"on 3 data \(aaaa1111aaaa1111, bbbb2222bbbb2222, unknown\): pick one with"):
        LookupEvaluator.load(str(board.root), "charlm", SHORT)
    chosen = LookupEvaluator.load(str(board.root), "charlm", SHORT, data="bbbb")
    assert sorted(chosen.rows) == [f"{3:012x}", f"{4:012x}"] and chosen.data_digest() == B
