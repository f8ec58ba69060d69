"""The default strategy (conf/search/default.yaml): parallel asks never repeat an architecture in flight,
and studies started under the earlier default (optuna_tpe) still resume, with real Optuna journal storage."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import yaml

from archbench import ConfigError, Leaderboard, SearchSpace
from archbench.cli.main import compose
from archbench.cli.search import config_from_dict
from archbench.search import STRATEGIES, Suggestion, run_search
from archbench.search.optuna_strategies import DriverJournal
from tests.search.test_strategies import OBJECTIVES, score

CONF = Path(__file__).resolve().parents[2] / "src" / "archbench" / "conf" / "search" / "default.yaml"


EIGHT = SearchSpace.from_dict(
    {"name": "eight", "fields": {"depth": [1, 2], "width": [32, 64], "heads": [2], "residual": ["pre_ln", "rezero"],
                                 "max_seq_len": 32, "quant": ["fp32"]}}
)  # fmt: skip


@pytest.mark.slow  # three GP asks with trials in flight: seconds on a quiet 2-core machine
def test_the_default_is_marked_and_never_proposes_an_architecture_already_running(tmp_path: Path) -> None:
    """Five of eight architectures known, three asked in a row with none told: Optuna's own GPSampler
    proposes one of them twice here (every seed 0-3 tried), the default strategy never does."""
    default = yaml.safe_load(CONF.read_text())
    assert default["default"] is True
    strat = STRATEGIES.get(default["strategy"])(EIGHT, OBJECTIVES, 0, tmp_path, study="toy", n_startup_trials=2)
    known = EIGHT.sample(8, seed=0)[:5]
    for arch in known:
        strat.warm(arch, score(Suggestion(0, arch)))
    running = [strat.ask() for _ in range(3)]  # three trials in flight, none told
    ids = [s.arch.arch_id for s in running]
    assert len(set(ids)) == 3, f"an architecture proposed while it was running: {ids}"
    assert not set(ids) & {a.arch_id for a in known}, "an architecture already evaluated was proposed again"
    assert {p.arch.arch_id for p in strat.pending()} == set(ids)  # as the journal records them
    strat.close()


def cli_config(tmp: Path, *extra: str) -> object:
    overrides = ["evaluator=sleep", "+evaluator_options.seconds=0.0", "space.fields.depth=[1,2]",
                 "space.fields.width=[32,64]", f"leaderboard={tmp / 'lb'}", "ray.executor=inline",
                 "progress=false", "plot=false", "concurrency=1", *extra]  # fmt: skip
    return config_from_dict(compose(overrides))


def journal_trials(study_dir: Path, name: str) -> int:
    storage = optuna.storages.JournalStorage(DriverJournal(str(study_dir / "optuna.journal")))
    return len(optuna.load_study(study_name=name, storage=storage).trials)


def test_a_study_started_under_the_earlier_default_resumes_with_it(tmp_path: Path) -> None:
    for named in (("study=mine",), ()):
        lb = tmp_path / str(bool(named))
        old = cli_config(lb, "search=tpe", "n_trials=2", *named)  # what the earlier default ran
        assert old.strategy == "optuna_tpe" and not old.default_strategy
        run_search(old)
        new = cli_config(lb, "n_trials=3", *named)  # the same command, now with the new default
        assert new.default_strategy and new.strategy != "optuna_tpe"
        outcome = run_search(new)
        assert outcome.study == old.study_name, "the same command resumed another study"
        saved = json.loads((old.study_dir / "study.json").read_text())
        assert saved["strategy"] == "optuna_tpe" and "changes" not in saved
        assert journal_trials(old.study_dir, old.study_name) == 3
        assert Leaderboard(lb / "lb").query(status=None).collect().height == 3
        fresh = cli_config(lb, "n_trials=1", "study=other")  # a new study gets the new default
        assert run_search(fresh).study == "other"
        assert json.loads((fresh.study_dir / "study.json").read_text())["strategy"] == new.strategy


def test_gp_hands_over_to_tpe_past_max_fit_trials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    strat = STRATEGIES.get("optuna_gp")(EIGHT, OBJECTIVES, 0, tmp_path, study="toy", n_startup_trials=2,
                                        max_fit_trials=2)  # fmt: skip
    for arch in EIGHT.sample(8, seed=0)[:3]:
        strat.warm(arch, score(Suggestion(0, arch)))
    asked = [strat.ask() for _ in range(2)]  # TPE's asks: no GP is fitted
    assert len({s.arch.arch_id for s in asked}) == 2
    said = [r.message for r in caplog.records if "max_fit_trials=2" in r.message]
    assert len(said) == 1 and "asks go to TPE" in said[0]
    with pytest.raises(ConfigError, match="max_fit_trials"):
        STRATEGIES.get("optuna_gp")(EIGHT, OBJECTIVES, 0, tmp_path / "b", study="b", max_fit_trials=1)
