"""``archbench evaluate``: a JSON row for a good file, one error line and exit 2 for a bad one."""

from __future__ import annotations

import json

import pytest

from archbench.cli.main import main


@pytest.fixture
def arch_file(tmp_path):
    path = tmp_path / "arch.yaml"
    path.write_text("depth: 1\nwidth: 32\nheads: 2\nmax_seq_len: 64\n")
    return path


@pytest.mark.slow
def test_evaluate_prints_a_json_row(arch_file, capsys) -> None:
    args = ["--task", "digits", "--budget", "steps=3", "--no-measure", "--format", "json"]
    rc = main(["evaluate", str(arch_file), *args])
    row = json.loads(capsys.readouterr().out)
    assert rc == 0 and row["status"] == "ok" and row["task"] == "digits" and row["budget"] == "steps=3"
    assert 0.0 <= row["val_acc"] <= 1.0 and row["depth"] == 1
    assert row["latency_ms"] is None and row["null_reasons"]["latency_ms"] == "not measured: measure=False"


def test_evaluate_trains_under_the_schedule_asked_for(arch_file, capsys) -> None:
    args = ["--budget", "steps=5", "--schedule", "wsd", "--warmup-steps", "1", "--no-measure", "--format", "json"]
    assert main(["evaluate", str(arch_file), *args]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["train_schedule"] == "wsd(warmup=1,decay=0.2)" and row["train_resumed_steps"] == 0


def test_a_diverged_trial_is_printed_and_exits_1(arch_file, capsys) -> None:
    rc = main(["evaluate", str(arch_file), "--budget", "steps=30", "--lr", "1000", "--no-measure", "--format", "json"])
    assert rc == 1 and json.loads(capsys.readouterr().out)["status"] == "diverged"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--budget", "epochs=2"], "steps=N"),
        (["--task", "charlmm"], "did you mean 'charlm'"),
        (["--schedule", "wsd", "--budget", "seconds=2"], "train.schedule=wsd needs a budget of steps or tokens"),
        (["--warmup-steps", "-3"], "train.warmup_steps=-3: must be a whole number of steps >= 0"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(arch_file, capsys, args, fragment) -> None:
    assert main(["evaluate", str(arch_file), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1


def test_missing_file_is_a_user_error(tmp_path, capsys) -> None:
    assert main(["evaluate", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
