"""A search that cannot go on ends cleanly, on real processes: SIGTERM and SIGINT to `archbench search`, a
Ray head killed under a running driver, a node whose loss leaves no room for a trial. Each ends in one
line (why, the trials recorded, how to resume) and the rerun records every trial exactly once."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from archbench.cli.main import main
from archbench.errors import SearchStopped
from archbench.search import RayConfig, run_search
from tests.search.test_driver import ARCHBENCH, rows, sleep_config

BIN = Path(sys.executable).parent
NATIVE = ("SIGTERM received", "logging.cc", "PC: @", "Failed to connect to GCS", "Traceback")
STUDY = "sleep-lm_tiny-optuna_tpe-s0"  # search=tpe: stopping is the point, and GP's asks cost seconds
N = 10


def search_cmd(lb: Path, *extra: str) -> list[str]:
    return [ARCHBENCH, "search", "evaluator=sleep", "+evaluator_options.seconds=0.5", f"n_trials={N}",
            "concurrency=2", "search=tpe", f"leaderboard={lb}", "progress=false", "plot=false", *extra]  # fmt: skip


def wait_for_rows(lb: Path, n: int, proc: subprocess.Popen, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the search ended early: {proc.communicate()}")
        from archbench import Leaderboard

        if Leaderboard(lb).exists() and rows(lb).height >= n:
            return
        time.sleep(0.3)
    raise AssertionError(f"fewer than {n} rows after {timeout} s")


def stopped_line(err: str, why: str) -> int:
    """The one line a stopped search prints; returns the number of trials it says are recorded."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err[-3000:]
    assert not any(marker in err for marker in NATIVE), err[-3000:]
    match = re.fullmatch(
        rf"archbench: {why}; (\d+) of {N} trials of study {STUDY} are recorded; rerun the same command to resume.*",
        lines[0],
    )
    assert match, lines[0]
    return int(match.group(1))


def resumes_exactly_once(lb: Path, before: pl.DataFrame, *extra: str) -> None:
    """The rerun (in the driver process: a local run needs no Ray) records every trial once and re-runs
    none that had been recorded."""
    again = subprocess.run(search_cmd(lb, "ray.executor=inline", *extra), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    after = rows(lb)
    assert sorted(after["trial"].to_list()) == list(range(N)), "a trial was lost or recorded twice"
    kept = after.filter(pl.col("trial").is_in(before["trial"].to_list()))
    assert sorted(kept["created_at"].to_list()) == sorted(before["created_at"].to_list())


@pytest.mark.slow
def test_sigterm_mid_study_prints_one_line_exits_143_and_the_rerun_completes(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    proc = subprocess.Popen(search_cmd(lb, "ray.num_cpus=2"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(lb, 2, proc)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGTERM
    before = rows(lb)
    assert stopped_line(err, "interrupted by SIGTERM") == before["trial"].n_unique() == before.height < N
    resumes_exactly_once(lb, before)


@pytest.mark.slow
def test_sigint_in_a_trial_run_by_the_driver_exits_130_and_the_rerun_completes(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    cmd = search_cmd(lb, "ray.executor=inline")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(lb, 2, proc)
    proc.send_signal(signal.SIGINT)  # lands inside a trial (sleeping in the driver) or between two
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT
    before = rows(lb)
    assert stopped_line(err, "interrupted by SIGINT") == before.height < N
    resumes_exactly_once(lb, before)


@pytest.mark.slow
def test_a_second_signal_during_the_shutdown_stops_at_once_and_a_repeat_does_not() -> None:
    """The handler in a real process: the first SIGTERM interrupts the wait, a second one within REPEAT_S
    (a scheduler and a batch script sending it together) changes nothing, a later one ends the process."""
    code = (
        "import time\n"
        "from archbench.search.signals import Interrupted, StopSignals\n"
        "stop = StopSignals(); stop.install(); print('ready', flush=True)\n"
        "try:\n"
        "    with stop.waiting(): time.sleep(60)\n"
        "except Interrupted as exc:\n"
        "    print('interrupted', exc.name, flush=True); time.sleep(60)  # a slow shutdown\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline().strip() == "interrupted SIGTERM"
    proc.send_signal(signal.SIGTERM)  # within REPEAT_S of the first: the same event
    time.sleep(1.5)
    assert proc.poll() is None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 3
    assert proc.returncode == 128 + signal.SIGTERM
    assert err == "archbench: SIGTERM again: stopped at once; rerun the same command to resume\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(port: int) -> Iterator[subprocess.Popen]:
    """`ray start --head --block` on 127.0.0.1 in its own process group and temp dir; killed at the end."""
    temp = tempfile.mkdtemp(prefix="abray-", dir="/tmp")  # short: Ray's socket paths must stay under 108 bytes
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_TMPDIR": temp}
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0", "--include-dashboard=false", "--block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        yield head
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def wait_for_head(port: int, timeout: float = 120) -> None:
    """Until the head's GCS answers (`ray health-check`, token-authenticated as archbench joins it)."""
    env = {**os.environ, "RAY_AUTH_MODE": "token"} if Path("~/.ray/auth_token").expanduser().exists() else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        check = subprocess.run([str(BIN / "ray"), "health-check", "--address", f"127.0.0.1:{port}"],
                               capture_output=True, env=env, timeout=60)  # fmt: skip
        if check.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the Ray head did not come up")


@pytest.mark.slow
def test_a_lost_ray_head_ends_the_driver_within_lost_after_s_and_the_rerun_completes(tmp_path: Path) -> None:
    lb, port, lost_after = tmp_path / "lb", _free_port(), 3
    with ray_head(port) as head:
        wait_for_head(port)
        cmd = search_cmd(lb, f"ray.address=127.0.0.1:{port}", f"ray.lost_after_s={lost_after}")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_rows(lb, 2, proc)
        os.killpg(head.pid, signal.SIGKILL)  # the head's GCS, raylet and workers, at once
        killed = time.monotonic()
        _out, err = proc.communicate(timeout=90)
        took = time.monotonic() - killed
    assert proc.returncode == 1
    done = stopped_line(err, rf"error: lost the Ray cluster at \S+:{port}, ray.address=127.0.0.1:{port}: its GCS has "
                             rf"not answered for \d+ s")  # fmt: skip
    assert "(on a running cluster, or locally without ray.address)" in err
    # Found lost_after s after the GCS's last answer (probed every second), then Ray's disconnect (~5 s);
    # Ray by itself would have waited 60 s.
    assert took < lost_after + 15, took
    before = rows(lb)
    assert done == before.height < N
    resumes_exactly_once(lb, before)


@pytest.mark.slow
def test_a_lost_node_that_leaves_no_room_for_a_trial_ends_the_search(tmp_path: Path) -> None:
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})  # the head runs no trial
    victim = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    config = sleep_config(tmp_path, n_trials=8, evaluator_options={"seconds": 0.5},
                          ray=RayConfig(address=cluster.address, lost_after_s=2))  # fmt: skip
    failure: list[BaseException] = []

    def search() -> None:
        try:
            run_search(config)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=search)
    try:
        thread.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (tmp_path / "lb").exists():
            time.sleep(0.2)
        cluster.remove_node(victim)
        removed = time.monotonic()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the search waits for a node that will not come"
        took = time.monotonic() - removed
    finally:
        cluster.shutdown()
    assert len(failure) == 1 and isinstance(failure[0], SearchStopped), failure
    message = str(failure[0])
    assert failure[0].exit_status == 1
    expected = (
        r"error: no live node of the Ray cluster at \S+ can run a trial \(needs CPU 1\) and none has for \d+ s "
        r"\(live nodes: no CPU\); \d+ of 8 trials of study \S+ are recorded"
    )
    assert re.match(expected, message), message
    assert took < 2 + 20, took  # the GCS marks the node dead, then lost_after_s
    recorded = rows(tmp_path / "lb")
    assert 1 <= recorded.height < 8 and recorded["trial"].n_unique() == recorded.height


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "ray.lost_after_s=0: must be a number of seconds from 2 to below 60"),
        ("90", "ray.lost_after_s=90: must be a number of seconds from 2 to below 60"),
        ("soon", "ray.lost_after_s='soon': must be a number of seconds"),
    ],
)
def test_a_bad_lost_after_s_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str,
                                        message: str) -> None:  # fmt: skip
    code = main(["search", f"ray.lost_after_s={value}", f"leaderboard={tmp_path / 'lb'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("archbench: error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "lb").exists()
