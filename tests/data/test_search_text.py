"""``archbench search task=text`` end to end through the installed command, on a corpus and a BPE
tokenizer made here: real Ray, real training, rows with data_digest and val_bpb."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from archbench import Leaderboard
from archbench.evaluators import get_task

ARCHBENCH = str(Path(sys.executable).with_name("archbench"))


@pytest.mark.slow
def test_search_on_your_own_corpus_and_tokenizer(tmp_path: Path, corpus_dir: Path, bpe_tokenizer: Path) -> None:
    lb = tmp_path / "lb"
    env = {**os.environ, "ARCHBENCH_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [ARCHBENCH, "search", "task=text", f"task.data={corpus_dir}", f"task.tokenizer={bpe_tokenizer}",
           "task.val_tokens=2048", "space.fields.vocab_size=task", "space.fields.depth=[1]",
           "space.fields.width=[32,64]", "n_trials=2", "concurrency=1", "budget=steps=4", "search=random",
           f"leaderboard={lb}", "progress=false", "plot=false", "ray.executor=inline"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    df = Leaderboard(lb).query(status=None).collect()
    assert df.height == 2 and (df["status"] == "ok").all() and (df["task"] == "text").all()
    want = get_task("text", data=str(corpus_dir), tokenizer=str(bpe_tokenizer), val_tokens=2048).digest()
    assert df["data_digest"].to_list() == [want, want] and (df["vocab_size"] == 512).all()
    assert df["val_bpb"].null_count() == 0 and (df["val_bytes_per_token"] > 1.5).all()
    assert (df["val_bpb"] - df["val_loss"] / 0.6931471805599453 / df["val_bytes_per_token"]).abs().max() < 1e-9
    assert len(list((tmp_path / "cache" / "data").glob("*/meta.json"))) == 1  # prepared once, by the driver

    other = shutil.copytree(corpus_dir, tmp_path / "other")
    (other / "more.txt").write_text("a different corpus\n" * 100)
    changed = [a.replace(str(corpus_dir), str(other)) for a in cmd]
    refused = subprocess.run(changed, capture_output=True, text=True, timeout=400, env=env)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "exists with other settings" in refused.stderr and "task_options.data was" in refused.stderr
    assert Leaderboard(lb).query(status=None).collect().filter(pl.col("data_digest") != want).height == 0
