"""Lazy package exports: names load on first use, and behave as the eager imports they replace."""

from __future__ import annotations

import subprocess
import sys

import pytest

import archbench


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


@pytest.mark.slow
def test_an_export_keeps_its_name_over_its_same_named_submodule() -> None:
    """``archbench.evaluators.evaluate`` is the function, even when the module evaluate.py loaded first."""
    code = (
        "import archbench.evaluators.evaluate as first, sys\n"
        "from archbench.evaluators import evaluate\n"
        "mod = sys.modules['archbench.evaluators.evaluate']\n"
        "print(callable(evaluate), evaluate is mod.evaluate, first is evaluate, type(mod).__name__)"
    )
    assert _run(code) == "True True True module"


def test_names_load_on_first_use_and_are_listed() -> None:
    code = (
        "import sys, archbench, archbench.evaluators as ev\n"
        "print('archbench.leaderboard' in sys.modules, 'torch' in sys.modules, 'Leaderboard' in dir(archbench), "
        "'evaluate' in dir(ev))\n"
        "archbench.Leaderboard, ev.TASKS\n"
        "print('archbench.leaderboard' in sys.modules, 'archbench.evaluators.task' in sys.modules)"
    )
    assert _run(code).splitlines() == ["False False True True", "True True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'archbench' has no attribute 'nope'"):
        archbench.nope  # noqa: B018
    assert archbench.build is archbench.search_space.build
