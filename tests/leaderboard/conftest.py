from __future__ import annotations

import pytest

from archbench.leaderboard import Leaderboard
from tests.leaderboard.rows import make_rows


@pytest.fixture
def lb(tmp_path) -> Leaderboard:
    return Leaderboard(tmp_path / "lb")


@pytest.fixture
def filled(tmp_path) -> Leaderboard:
    """A leaderboard of 3 parts, two tasks and three devices."""
    board = Leaderboard(tmp_path / "filled")
    board.append(make_rows(120, seed=1, study="a"))
    board.append(make_rows(80, seed=2, study="b"))
    board.append(make_rows(40, seed=3, study="c", task="copy"))
    return board
