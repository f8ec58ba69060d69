"""Settings whose default changed or that were removed: studies recorded under the old ones still resume as
they were recorded, or end in one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archbench import ConfigError
from archbench.search import run_search
from archbench.search.fidelity import FidelityConfig
from archbench.search.study import recorded
from tests.search.test_driver import sleep_config

FUNNEL = FidelityConfig("halving", (1, 3, 9), 3)  # search.calibrate left to its default


def test_a_new_funnel_is_calibrated_and_records_it(tmp_path: Path) -> None:
    config = sleep_config(tmp_path, n_trials=30, budget="steps=10", fidelity=FUNNEL, evaluator_options={"seconds": 0})
    outcome = run_search(config)
    assert json.loads((outcome.study_dir / "study.json").read_text())["fidelity"]["calibrate"] is True
    assert outcome.calibration  # the maps it told stopped candidates through
    assert run_search(sleep_config(tmp_path, n_trials=31, budget="steps=10", fidelity=FUNNEL,
                                   evaluator_options={"seconds": 0})).trials == 31  # fmt: skip


def test_a_funnel_recorded_before_calibration_was_the_default_resumes_uncalibrated(tmp_path: Path) -> None:
    """Its study.json has no calibrate (what archbench wrote for an uncalibrated funnel, and all there was):
    the same command resumes it as it ran, telling each candidate its own rung's values."""
    old = FidelityConfig("halving", (1, 3, 9), 3, calibrate=False)
    first = run_search(sleep_config(tmp_path, n_trials=20, budget="steps=10", fidelity=old,
                                    evaluator_options={"seconds": 0}))  # fmt: skip
    study_json = first.study_dir / "study.json"
    assert "calibrate" not in json.loads(study_json.read_text())["fidelity"]
    resumed = sleep_config(tmp_path, n_trials=30, budget="steps=10", fidelity=FUNNEL, evaluator_options={"seconds": 0})
    assert resumed.resolved(recorded(resumed.study_dir, "s")).fidelity.calibrate is False
    outcome = run_search(resumed)
    assert outcome.trials == 30 and outcome.calibration == ()  # never calibrated, though 30 trials would fit maps
    assert "calibrate" not in json.loads(study_json.read_text())["fidelity"]
    with pytest.raises(ConfigError, match=r"fidelity.calibrate was unset, now true"):  # asked for: a change
        run_search(sleep_config(tmp_path, n_trials=31, budget="steps=10", evaluator_options={"seconds": 0},
                                fidelity=FidelityConfig("halving", (1, 3, 9), 3, calibrate=True)))  # fmt: skip


@pytest.mark.parametrize(("key", "value", "why"), [("promotion", "strata", "search.promotion=strata was removed"),
                                                   ("capped", True, "search.capped was removed")])  # fmt: skip
def test_a_study_recorded_with_a_removed_setting_ends_in_one_line(
    key: str, value: object, why: str, tmp_path: Path
) -> None:
    config = sleep_config(tmp_path, n_trials=6, budget="steps=10", fidelity=FUNNEL, evaluator_options={"seconds": 0})
    outcome = run_search(config)
    path = outcome.study_dir / "study.json"
    saved = json.loads(path.read_text())
    saved["fidelity"][key] = value  # as an older archbench recorded a study run with it
    path.write_text(json.dumps(saved))
    with pytest.raises(ConfigError) as info:
        run_search(sleep_config(tmp_path, n_trials=8, budget="steps=10", fidelity=FUNNEL,
                                evaluator_options={"seconds": 0}))  # fmt: skip
    message = str(info.value)
    assert message.startswith(f"study {outcome.study!r} was recorded with fidelity.{key}=") and why in message
    assert "study.allow_changes=true" in message and "\n" not in message
    accepted = run_search(sleep_config(tmp_path, n_trials=8, budget="steps=10", fidelity=FUNNEL, allow_changes=True,
                                       evaluator_options={"seconds": 0}))  # fmt: skip
    assert accepted.trials == 8 and key not in json.loads(path.read_text())["fidelity"]


@pytest.mark.parametrize("arg", ["+search.promotion=strata", "+search.capped=true"])
def test_a_removed_setting_on_the_command_line_is_one_line(arg: str, tmp_path: Path, capsys) -> None:
    from archbench.cli.main import main

    assert main(["search", arg, "search.fidelity=halving", f"leaderboard={tmp_path / 'lb'}"]) == 2
    err = capsys.readouterr().err
    assert "was removed" in err and err.count("\n") == 1
    assert not (tmp_path / "lb").exists()
