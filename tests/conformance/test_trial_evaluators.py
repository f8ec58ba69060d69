"""Conformance suite: every registered trial evaluator keeps the contract the search loop relies on
(:class:`archbench.search.evaluator.TrialEvaluator`). Parametrized over ``TRIAL_EVALUATORS``: a newly
registered evaluator is tested here with no edit."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from archbench import ConfigError, Leaderboard, SearchSpace
from archbench.leaderboard.objectives import Objective
from archbench.run_settings import RunSettings
from archbench.search import TRIAL_EVALUATORS, RayConfig, SearchConfig, TrialEvaluator
from archbench.search.cache import Cache
from archbench.search.evaluator import Probe
from archbench.search_space.architecture import Architecture
from archbench.trial import TrialResult

SPACE = SearchSpace.from_dict(
    {"name": "conf", "fields": {"depth": [1], "width": [32], "heads": [2], "residual": ["pre_ln", "rezero"],
                                "max_seq_len": 32, "quant": ["fp32"]}}
)  # fmt: skip
ARCH = Architecture(depth=1, width=32, heads=2, max_seq_len=32)
NAMES = TRIAL_EVALUATORS.names()


def config(name: str, tmp: Path) -> SearchConfig:
    """One search's settings, the same for every evaluator (its table, for those that read one, is the
    study's own leaderboard); it ranks on quality where the evaluator reports it (``quality``)."""
    first = "val_loss" if TRIAL_EVALUATORS.get(name).quality else "params"
    return SearchConfig(
        space=SPACE, task="charlm", budget="steps=1", evaluator=name, leaderboard=str(tmp / "lb"),
        objectives=(Objective(first), Objective("latency_ms")), ray=RayConfig(executor="inline"),
        progress=False, plot=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", [n for n in NAMES if not TRIAL_EVALUATORS.get(n).quality])
def test_an_evaluator_without_quality_refuses_a_study_on_it_in_one_line(name: str, tmp_path: Path) -> None:
    for metric in ("val_loss", "val_acc", "train_time_s"):
        with pytest.raises(ConfigError, match=metric) as info:
            dataclasses.replace(config(name, tmp_path), objectives=(Objective(metric), Objective("latency_ms")))
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_builds_from_a_search_config_and_keeps_the_protocol(name: str, tmp_path: Path) -> None:
    cls = TRIAL_EVALUATORS.get(name)
    cfg = config(name, tmp_path)
    cls.check(cfg)  # settings every evaluator runs
    evaluator = cls.from_search(cfg)
    assert isinstance(evaluator, TrialEvaluator) and isinstance(evaluator, cls)
    assert isinstance(evaluator.task, str) and evaluator.task == cls.task_of(cfg)  # rows name the study's task
    assert isinstance(evaluator.budget, str) and evaluator.budget
    assert isinstance(evaluator.measure, bool) and isinstance(evaluator.cacheable, bool)
    assert isinstance(evaluator.quality, bool)
    assert isinstance(evaluator.run_settings(), RunSettings)
    assert pickle.loads(pickle.dumps(evaluator)) == evaluator  # it travels to a Ray worker with each trial


@pytest.mark.parametrize("name", NAMES)
def test_unknown_options_are_one_line(name: str, tmp_path: Path) -> None:
    bad = dataclasses.replace(config(name, tmp_path), evaluator_options={"no_such_option": 1})
    with pytest.raises(ConfigError, match=r"no_such_option") as info:
        TRIAL_EVALUATORS.get(name).from_search(bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_each_rung_keeps_the_type_and_takes_its_budget(name: str, tmp_path: Path) -> None:
    evaluator = TRIAL_EVALUATORS.get(name).from_search(config(name, tmp_path))
    for measure, screen in ((True, True), (False, False), (True, False)):
        rung = evaluator.at_budget("steps=3", measure=measure, validate_quant=False, screen=screen)
        assert type(rung) is type(evaluator) and rung.budget == "steps=3" and rung.task == evaluator.task
        assert isinstance(rung.measure, bool) and not (rung.measure and not measure)  # a training rung measures nothing
    try:
        continued = evaluator.continued(str(tmp_path / "states"), True, None)
    except ConfigError as exc:  # an evaluator that keeps no state says so in one line
        assert "search.continuation" in str(exc) and "\n" not in str(exc)
    else:
        assert type(continued) is type(evaluator)


@pytest.mark.parametrize("name", NAMES)
def test_keeping_weights_is_a_new_value_or_refused_in_one_line_both_ways(name: str, tmp_path: Path) -> None:
    """An evaluator that trains keeps ``search.keep_weights``; one that does not refuses it as the settings are
    built (before anything runs) and when asked, in one line each."""
    evaluator = TRIAL_EVALUATORS.get(name).from_search(config(name, tmp_path))
    try:
        keeping = evaluator.keeping_weights(str(tmp_path / "w"))
    except ConfigError as exc:
        assert "search.keep_weights" in str(exc) and "\n" not in str(exc)
        with pytest.raises(ConfigError, match=r"search\.keep_weights=front") as info:
            dataclasses.replace(config(name, tmp_path), keep_weights="front")
        assert "\n" not in str(info.value)
    else:
        assert type(keeping) is type(evaluator) and keeping != evaluator  # it carries where the weights go
        assert pickle.loads(pickle.dumps(keeping)) == keeping
        rung = keeping.at_budget("steps=3", measure=False)
        assert rung.keeping_weights(str(tmp_path / "w")) == rung  # a rung keeps them where it was told
        dataclasses.replace(config(name, tmp_path), keep_weights="front")  # accepted


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_a_trial_is_a_row_the_leaderboard_accepts_and_its_own_cache_key_finds(name: str, tmp_path: Path) -> None:
    """Probe, space, one trial (a quick look, as a funnel's first rung takes), the row appended and read
    back; a cacheable evaluator's row is found by the key the search computes from its settings."""
    from archbench.evaluators import evaluate

    cfg = config(name, tmp_path)
    table = Leaderboard(cfg.leaderboard)
    table.append([evaluate(ARCH, "charlm", "steps=1", measure=False, study="table", trial=0)])  # what lookup reads
    evaluator = TRIAL_EVALUATORS.get(name).from_search(cfg).at_budget("steps=1", measure=True, screen=True)
    probe = evaluator.probe()
    assert isinstance(probe, Probe) and probe.hardware.get("device_name") and probe.hardware.get("device_kind")
    space = evaluator.space_for(cfg, probe)
    assert isinstance(space, SearchSpace) and space.contains(ARCH)
    result = evaluator(ARCH, study="conf", trial=7)
    assert isinstance(result, TrialResult)
    assert (result.task, result.budget, result.study, result.trial) == (evaluator.task, evaluator.budget, "conf", 7)
    lb = Leaderboard(tmp_path / "out")
    lb.append([result])
    (row,) = lb.query(study="conf", status=None).collect().to_dicts()
    assert (row["arch_id"], row["task"], row["budget"], row["status"]) == (
        ARCH.arch_id, evaluator.task, evaluator.budget, result.status
    )  # fmt: skip
    if evaluator.cacheable:
        assert row["status"] == "ok", row["error"]
        assert row["data_digest"] == evaluator.data_digest()  # the digest it keys the cache on is its rows'
        settings, digest = evaluator.run_settings(), evaluator.data_digest()
        cache = Cache(lb, evaluator.task, [evaluator.budget], probe.hardware, settings, True, data_digest=digest)
        assert cache.get(ARCH, evaluator.budget, full=False) is not None  # the row it made is found by its key
