"""The wsd schedule, and a longer run continuing a shorter one's state: the same model as from scratch."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from archbench import Architecture
from archbench.errors import ConfigError
from archbench.evaluators import evaluate
from archbench.evaluators.schedule import decay_start, wsd_factor
from archbench.train_config import TrainConfig

WSD = TrainConfig(schedule="wsd", warmup_steps=2, batch_size=8)
# stochastic depth draws from torch's global generator during training: the state must carry it too
DROPPY = Architecture(depth=2, width=32, heads=2, max_seq_len=32, drop_path=0.5)


def test_wsd_warms_up_holds_then_cools_down_and_does_not_depend_on_the_total_before_that() -> None:
    f = [wsd_factor(s, 20, 4, 0.25, 0.1) for s in range(20)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0] and f[4:15] == [1.0] * 11  # warm-up, then the peak until step 15
    assert decay_start(20, 0.25) == 15 and f[15] < 1.0 and f[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in itertools.pairwise(f[15:]))  # the cool-down falls all the way
    assert [wsd_factor(s, 60, 4, 0.25, 0.1) for s in range(15)] == f[:15]  # a longer run: the same start
    assert TrainConfig().label() == "cosine" and WSD.label() == "wsd(warmup=2,decay=0.2)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"schedule": "linear"}, r"^train.schedule='linear': must be one of cosine, wsd$"),
        ({"warmup_steps": -1}, r"^train.warmup_steps=-1: must be a whole number of steps >= 0 \(or null\)$"),
        ({"decay_frac": 1.0}, r"^train.decay_frac=1.0: must be in \(0, 1\)$"),
    ],
)
def test_bad_schedule_settings_are_one_line(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.slow
def test_a_continued_run_is_bit_for_bit_the_long_run_from_scratch(tmp_path: Path) -> None:
    short = evaluate(DROPPY, "charlm", "steps=10", config=WSD, measure=False, save_state=tmp_path / "s.pt")
    assert short.status == "ok" and (tmp_path / "s.pt").exists()
    assert torch.load(tmp_path / "s.pt", weights_only=True)["step"] == 8  # where its cool-down began
    went_on = evaluate(DROPPY, "charlm", "steps=30", config=WSD, measure=False, resume_from=tmp_path / "s.pt")
    scratch = evaluate(DROPPY, "charlm", "steps=30", config=WSD, measure=False)
    assert went_on.metrics["train_resumed_steps"] == 8 and scratch.metrics["train_resumed_steps"] == 0
    assert went_on.metrics["val_loss"] == scratch.metrics["val_loss"]
    assert went_on.metrics["val_loss"] != short.metrics["val_loss"]
    assert went_on.to_row()["train_schedule"] == scratch.to_row()["train_schedule"] == WSD.label()


@pytest.mark.slow
def test_a_state_the_run_cannot_continue_is_ignored_and_it_trains_from_scratch(tmp_path: Path) -> None:
    evaluate(DROPPY, "charlm", "steps=10", config=WSD, measure=False, save_state=tmp_path / "s.pt")
    other = TrainConfig(schedule="wsd", warmup_steps=3, batch_size=8)  # another warm-up: another model
    r = evaluate(DROPPY, "charlm", "steps=30", config=other, measure=False, resume_from=tmp_path / "s.pt")
    assert r.status == "ok" and r.metrics["train_resumed_steps"] == 0
    too_short = evaluate(DROPPY, "charlm", "steps=9", config=WSD, measure=False, resume_from=tmp_path / "s.pt")
    assert too_short.metrics["train_resumed_steps"] == 0  # its cool-down begins at step 7, before the state's 8
    (tmp_path / "torn.pt").write_bytes(b"not a checkpoint")
    torn = evaluate(DROPPY, "charlm", "steps=30", config=WSD, measure=False, resume_from=tmp_path / "torn.pt")
    assert torn.status == "ok" and torn.metrics["train_resumed_steps"] == 0
    missing = evaluate(DROPPY, "charlm", "steps=30", config=WSD, measure=False, resume_from=tmp_path / "none.pt")
    assert missing.metrics["train_resumed_steps"] == 0


def test_a_wsd_run_needs_a_budget_in_steps_or_tokens() -> None:
    with pytest.raises(ConfigError, match=r"^train.schedule=wsd needs a budget of steps or tokens, not seconds=1$"):
        evaluate(DROPPY, "charlm", "seconds=1", config=WSD, measure=False)
