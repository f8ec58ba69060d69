"""Workload columns (metric@name) in the leaderboard: typed, and usable in pareto, pick, where and the CLI."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from archbench.leaderboard import Leaderboard
from archbench.leaderboard.schema import workload_columns
from tests.leaderboard.rows import make_rows


def _rows() -> list[dict[str, object]]:
    rows = make_rows(30, seed=4, study="w", device_name="cpu: test", status="ok")
    for i, row in enumerate(rows):
        row["decode_ms_per_token@chat"] = 1.0 + (i * 7 % 30) / 10
        row["decode_samples@chat"] = 10 + i  # a count stays an integer column
        row["kv_cache_bytes_per_token@chat"] = None if i == 3 else 100.0 + i
    return rows


@pytest.fixture
def board(tmp_path: Path) -> Leaderboard:
    lb = Leaderboard(tmp_path / "lb")
    lb.append(_rows())
    lb.append(make_rows(5, seed=5, study="old", device_name="cpu: test", status="ok"))  # a part without them
    return lb


def test_workload_columns_are_typed_as_their_metric(board: Leaderboard) -> None:
    schema = board.query().collect_schema()
    assert schema["decode_ms_per_token@chat"] == pl.Float64() and schema["decode_samples@chat"] == pl.Int64()
    assert workload_columns(["ttft_ms@b", "params@b", "val_loss", "mine@b"]) == {"ttft_ms@b": pl.Float64()}
    df = board.query(study="old").collect()
    assert df["decode_ms_per_token@chat"].null_count() == df.height  # read as null from a part without them


def test_pareto_pick_and_where_on_a_workload_column(board: Leaderboard) -> None:
    front = board.pareto("val_loss:min,decode_ms_per_token@chat:min", study="w")
    assert front.height >= 1 and front["decode_ms_per_token@chat"].null_count() == 0
    row = board.pick(minimize="val_loss", under={"decode_ms_per_token@chat": 2.0}, study="w")
    assert row["decode_ms_per_token@chat"] <= 2.0
    kept = board.query(study="w", where="decode_ms_per_token@chat<=2").collect()
    assert 0 < kept.height < 30 and (kept["decode_ms_per_token@chat"] <= 2).all()


def test_the_cli_shows_and_bounds_workload_columns(board: Leaderboard, capsys: pytest.CaptureFixture[str]) -> None:
    from archbench.cli.main import main

    root = ["--root", str(board.root)]
    assert main(["leaderboard", "pareto", *root, "--objectives", "val_loss,decode_ms_per_token@chat"]) == 0
    assert "decode_ms_per_token@chat" in capsys.readouterr().out
    pick = ["--minimize", "val_loss", "--under", "decode_ms_per_token@chat=2"]
    pick += ["--where", "kv_cache_bytes_per_token@chat<200"]
    assert main(["leaderboard", "pick", *root, *pick]) == 0
    assert "decode_ms_per_token@chat" in capsys.readouterr().out
    assert main(["leaderboard", "pareto", *root, "--objectives", "val_loss,decode_ms_per_token@chta"]) == 2
    err = capsys.readouterr().err
    assert "unknown objective 'decode_ms_per_token@chta' (did you mean 'decode_ms_per_token@chat'?)" in err
