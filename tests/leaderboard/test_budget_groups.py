"""Fronts never mix budgets: pareto, hypervolume, pick, knee and plot are per (task, budget, device),
and ``budget`` / ``--budget`` filters like task and study."""

from __future__ import annotations

import io
from typing import Any

import polars as pl
import pytest

from archbench.cli.main import main
from archbench.errors import ConfigError
from archbench.leaderboard import Filters, Leaderboard, Objective
from archbench.leaderboard.pareto import annotate, group_columns
from archbench.leaderboard.plot import _figure, _with_series

CPU = "cpu: AMD EPYC 7B13"
SHORT, LONG = "steps=40", "steps=360"
OBJS = "val_loss,latency_ms"


def row(trial: int, budget: str, val_loss: float, latency_ms: float, device: str = CPU, **extra: Any) -> dict[str, Any]:
    return {
        "arch_id": f"{trial:012x}",
        "study": "s",
        "trial": trial,
        "task": "charlm",
        "budget": budget,
        "status": "ok",
        "depth": 2 + trial,
        "width": 64,
        "heads": 2,
        "val_loss": val_loss,
        "latency_ms": latency_ms,
        "device_name": device,
        "device_kind": "cpu",
        "created_at": f"2026-11-01T00:00:{trial:02d}.000000+00:00",
        **extra,
    }


# The short rung's front is trials 0-2 (3 is dominated by 1); one long-budget row beats all of them.
ROWS = [
    row(0, SHORT, 2.0, 1.0),
    row(1, SHORT, 1.5, 2.0),
    row(2, SHORT, 1.2, 4.0),
    row(3, SHORT, 1.8, 3.0),
    row(4, LONG, 0.9, 0.8),
    row(5, LONG, 1.0, 2.0),
]


@pytest.fixture
def rungs(tmp_path) -> Leaderboard:
    board = Leaderboard(tmp_path / "rungs")
    board.append(ROWS)
    return board


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_group_columns_include_the_budget() -> None:
    assert group_columns() == ["task", "budget", "device_name", "data_digest"]  # issue 21: data_digest too
    assert group_columns(mix_hardware=True) == ["task", "budget", "data_digest"]


def test_a_long_budget_row_does_not_remove_the_short_budgets_front(rungs) -> None:
    front = rungs.pareto(OBJS)
    assert sorted(front["trial"].to_list()) == [0, 1, 2, 4]  # trial 4 would dominate everything if mixed
    assert sorted(front.filter(pl.col("budget") == SHORT)["trial"].to_list()) == [0, 1, 2]
    mixed = rungs.pareto(OBJS, mix_hardware=True)  # mixing devices never mixes budgets
    assert sorted(mixed["trial"].to_list()) == [0, 1, 2, 4]
    ranked = rungs.pareto(OBJS, all_rows=True)
    ranks = dict(zip(ranked["trial"].to_list(), ranked["pareto_rank"].to_list(), strict=True))
    assert ranks == {0: 0, 1: 0, 2: 0, 3: 1, 4: 0, 5: 1}


def test_empty_budget_is_a_budget_of_its_own(tmp_path) -> None:
    board = Leaderboard(tmp_path / "old")
    board.append([*ROWS, row(6, "", 0.5, 0.5)])  # an old row without a budget beats every other
    assert sorted(board.pareto(OBJS)["trial"].to_list()) == [0, 1, 2, 4, 6]
    assert board.pareto(OBJS, budget="")["trial"].to_list() == [6]
    assert Filters.make(budget="").describe().startswith("budget=''")
    with pytest.raises(ConfigError, match="3 budgets \\('', steps=360, steps=40\\); pick one with --budget"):
        board.pick(minimize="val_loss")


def test_annotate_compares_rows_of_one_budget_only() -> None:
    df = pl.DataFrame(ROWS).select("task", "budget", "device_name", "val_loss", "latency_ms")
    front = annotate(df, [Objective("val_loss"), Objective("latency_ms")])["pareto_front"].to_list()
    assert front == [True, True, True, False, True, False]


def test_hypervolume_reports_one_row_per_budget(rungs) -> None:
    table = rungs.hypervolume(OBJS, ref=[3.0, 5.0])
    assert table.columns[:3] == ["task", "budget", "device_name"]
    assert sorted(table["budget"].to_list()) == [LONG, SHORT]
    by_budget = {r["budget"]: r for r in table.iter_rows(named=True)}
    assert by_budget[SHORT]["rows"] == 4 and by_budget[SHORT]["front"] == 3
    assert by_budget[LONG]["rows"] == 2 and by_budget[LONG]["front"] == 1
    assert by_budget[LONG]["hypervolume"] == pytest.approx((3.0 - 0.9) * (5.0 - 0.8))
    assert rungs.hypervolume(OBJS, ref=[3.0, 5.0], mix_hardware=True).height == 2


@pytest.mark.parametrize("mix_hardware", [False, True])
def test_pick_and_knee_across_budgets_are_refused_in_one_line(rungs, mix_hardware: bool) -> None:
    for call in (
        lambda: rungs.pick(minimize="val_loss", mix_hardware=mix_hardware),
        lambda: rungs.knee(OBJS, mix_hardware=mix_hardware),
    ):
        refused = f"rows from 2 budgets \\({LONG}, {SHORT}\\); pick one with --budget"
        with pytest.raises(ConfigError, match=refused) as e:
            call()
        assert "\n" not in str(e.value)
    assert rungs.pick(minimize="val_loss", budget=SHORT)["trial"] == 2
    assert rungs.pick(minimize="val_loss", budget=LONG)["trial"] == 4
    assert rungs.knee(OBJS, budget=SHORT)["trial"] == 1


def test_budget_filter_in_python(rungs) -> None:
    assert set(rungs.query(budget=SHORT).collect()["budget"].to_list()) == {SHORT}
    assert rungs.query(budget=f"{SHORT},{LONG}").collect().height == 6
    assert rungs.query(budget=[LONG]).collect()["trial"].to_list() == [4, 5]
    assert sorted(rungs.pareto(OBJS, budget=SHORT)["trial"].to_list()) == [0, 1, 2]
    assert rungs.top(1, by="val_loss", budget=SHORT)["trial"].to_list() == [2]
    assert rungs.hypervolume(OBJS, budget=LONG)["budget"].to_list() == [LONG]
    assert rungs.sql("SELECT count(*) AS n FROM results", budget=SHORT)["n"].item() == 4
    assert Filters.make(budget=f"{SHORT}, {LONG}").describe() == f"budget={SHORT},{LONG} status=ok"
    assert rungs.check_filters(budget=SHORT).budget == (SHORT,)
    with pytest.raises(ConfigError, match="no rows with budget 'steps=41' \\(did you mean 'steps=40'\\?\\)") as e:
        rungs.check_filters(budget="steps=41")
    assert f"budgets in the leaderboard: '{LONG}', '{SHORT}'" in str(e.value)


def test_budget_filter_on_the_cli(rungs, capsys, tmp_path) -> None:
    root = ("--root", str(rungs.root))
    code, out, err = run(capsys, "leaderboard", "pareto", *root, "--budget", SHORT, "--format", "csv")
    assert code == 0, err
    df = pl.read_csv(io.StringIO(out))
    assert set(df["budget"].to_list()) == {SHORT} and sorted(df["trial"].to_list()) == [0, 1, 2]
    code, out, err = run(capsys, "leaderboard", "pareto", *root, "--format", "csv")
    assert code == 0 and sorted(pl.read_csv(io.StringIO(out))["trial"].to_list()) == [0, 1, 2, 4]
    code, out, err = run(capsys, "leaderboard", "hypervolume", *root, "--budget", f"{SHORT},{LONG}", "--format", "csv")
    assert code == 0 and pl.read_csv(io.StringIO(out)).height == 2
    code, out, err = run(capsys, "leaderboard", "pick", *root, "--minimize", "val_loss", "--budget", LONG)
    assert code == 0 and "000000000004" in out and LONG in out
    code, out, err = run(capsys, "leaderboard", "show", *root, "--budget", SHORT, "--format", "csv")
    assert code == 0 and pl.read_csv(io.StringIO(out)).height == 4
    code, out, err = run(capsys, "export", "000000000004", *root, "--budget", LONG)
    assert code == 0 and "000000000004" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pareto", "--budget", "steps=41"], "no rows with budget 'steps=41' (did you mean 'steps=40'?)"),
        (["pick", "--minimize", "val_loss"], "rows from 2 budgets (steps=360, steps=40); pick one with --budget"),
        (["knee"], "the front has rows from 2 budgets"),
    ],
)
def test_cli_budget_errors_are_one_line_exit_2(rungs, capsys, argv: list[str], message: str) -> None:
    code, _out, err = run(capsys, "leaderboard", *argv, "--root", str(rungs.root))
    assert code == 2
    assert err.startswith("archbench: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_plot_tells_budgets_apart(rungs, tmp_path) -> None:
    objs = [Objective("val_loss"), Objective("latency_ms")]
    df = annotate(pl.DataFrame(ROWS), objs)
    fig = _figure(_with_series(df), objs, "t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert f"{CPU} @ {SHORT} front (3)" in labels and f"{CPU} @ {LONG} front (1)" in labels
    one = _with_series(df.filter(pl.col("budget") == SHORT))["__series__"].unique().to_list()
    assert one == [CPU]  # one budget: labels stay the device's
    page = rungs.plot(tmp_path / "f.html", OBJS).read_text()
    assert "Pareto front (4 rows)" in page and f"<td>{LONG}</td>" in page and "2 budgets" in page
    assert rungs.plot(tmp_path / "f.png", OBJS, budget=SHORT).exists()
