"""``archbench data prepare/show``, task settings on the command line (``archbench evaluate``, ``archbench
search``), one-line refusals that write nothing, and a SIGKILL during preparation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from archbench.cli.main import main
from archbench.data import shards

from .conftest import stdlib_texts

ARCHBENCH = str(Path(sys.executable).with_name("archbench"))


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_prepare_then_show(corpus_dir: Path, bpe_tokenizer: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "shards"
    args = ["data", "prepare", str(corpus_dir), "--tokenizer", str(bpe_tokenizer), "--out", str(out)]
    assert main([*args, "--no-progress"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    said = capsys.readouterr().out
    assert f"digest {meta['digest']}" in said and "vocab 512" in said
    assert main(["data", "show", str(out)]) == 0
    shown = capsys.readouterr().out
    for fragment in ("train_000000.bin", "val_000000.bin", f"digest: {meta['digest']}", "vocabulary: 512",
                     f"{meta['tokens']['train']:,} train", "UTF-8 bytes per token"):  # fmt: skip
        assert fragment in shown, fragment


def test_show_reads_shards_archbench_did_not_write(tmp_path: Path, capsys) -> None:
    shards.write_shard(tmp_path / "fineweb_val_000000.bin", np.arange(100), 256)
    shards.write_shard(tmp_path / "fineweb_train_000001.bin", np.arange(250), 256)
    assert main(["data", "show", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "250 train, 100 validation" in shown and "fineweb_val_000000.bin" in shown


def _bad_shard(t: Path, kind: str) -> Path:
    d = t / f"shards_{kind}"
    d.mkdir()
    shards.write_shard(d / "val_000000.bin", np.arange(100), 256)
    shards.write_shard(d / "train_000001.bin", np.arange(100), 256)
    raw = (d / "train_000001.bin").read_bytes()
    raw = (np.int32(7).tobytes() + raw[4:]) if kind == "magic" else raw[:-20]
    (d / "train_000001.bin").write_bytes(raw)
    return d


def _empty(t: Path) -> list[str]:
    (t / "e").mkdir()
    (t / "e" / "a.txt").write_text("")
    return [str(t / "e")]


def _no_column(t: Path) -> list[str]:
    (t / "d.jsonl").write_text('{"body": "x"}\n')
    return [str(t / "d.jsonl")]


def _broken_tokenizer(t: Path) -> list[str]:
    (t / "tok.json").write_text("[1, 2]")
    (t / "doc.txt").write_text("some text")
    return ["--tokenizer", str(t / "tok.json"), str(t / "doc.txt")]


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda t: [str(t / "missing")], "data source not found"),
        (_empty, "is empty: no document holds any text"),
        (lambda t: [str(_bad_shard(t, "magic"))], "magic 7 version 1 is not a token shard"),
        (lambda t: [str(_bad_shard(t, "truncated"))], "(truncated)"),
        (_no_column, "line 1 has no 'text' field"),
        (_broken_tokenizer, "not a tokenizer.json"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, private_cache: Path, capsys, make,
                                                          fragment: str) -> None:  # fmt: skip
    out = tmp_path / "out"
    assert main(["data", "prepare", *make(tmp_path), "--out", str(out), "--no-progress"]) == 2
    assert fragment in one_line_error(capsys)
    assert not out.exists() and not list(tmp_path.rglob("*partial*"))
    assert not list(private_cache.rglob("meta.json"))


def test_show_of_text_is_refused_without_preparing_it(corpus_dir: Path, private_cache: Path, capsys) -> None:
    assert main(["data", "show", str(corpus_dir)]) == 2
    assert "holds text, not prepared data" in one_line_error(capsys) and not list(private_cache.rglob("*.bin"))


@pytest.fixture
def arch_file(tmp_path: Path) -> Path:
    path = tmp_path / "arch.yaml"
    path.write_text("depth: 1\nwidth: 32\nheads: 2\nmax_seq_len: 32\nvocab_size: 512\n")
    return path


@pytest.mark.slow
def test_evaluate_takes_task_settings(arch_file: Path, corpus_dir: Path, bpe_tokenizer: Path, capsys) -> None:
    args = ["--task", "text", f"task.data={corpus_dir}", f"task.tokenizer={bpe_tokenizer}", "task.val_tokens=1024"]
    assert main(["evaluate", str(arch_file), *args, "--budget", "steps=3", "--no-measure", "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["status"] == "ok" and row["task"] == "text" and len(row["data_digest"]) == 16
    assert row["val_bpb"] == pytest.approx(row["val_loss"] / np.log(2) / row["val_bytes_per_token"])


@pytest.mark.slow
def test_charlm_takes_its_root_from_the_command_line(arch_file: Path, tmp_path: Path, capsys) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, text in stdlib_texts(30):
        (src / f"{name}.py").write_text(text)
    args = ["--task", "charlm", f"task.root={src}", "--budget", "steps=2", "--no-measure", "--format", "json"]
    assert main(["evaluate", str(arch_file), *args]) == 0
    row = json.loads(capsys.readouterr().out)
    from archbench.evaluators import get_task

    assert row["data_digest"] == get_task("charlm", root=str(src)).digest() != get_task("charlm").digest()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--task", "text", "task.dta=x"], "task text: unknown setting(s) dta; known: batch_size, data,"),
        (["--task", "charlm", "task.root=/nowhere"], "charlm corpus directory not found: /nowhere"),
        (["--task", "text", "task.data=/nowhere"], "data source not found: /nowhere"),
        (["--task", "text", "oops"], "expected task.KEY=VALUE, got 'oops'"),
        (["--task", "text", "task.data=~/x"], "quote the value"),
    ],
)
def test_evaluate_refuses_bad_settings_in_one_line(arch_file: Path, capsys, args: list[str], fragment: str) -> None:
    assert main(["evaluate", str(arch_file), *args, "--budget", "steps=1", "--no-measure"]) == 2
    assert fragment in one_line_error(capsys)


def test_evaluate_refuses_a_vocabulary_smaller_than_the_tokenizers(
    tmp_path: Path, corpus_dir: Path, bpe_tokenizer: Path, private_cache: Path, capsys
) -> None:
    small = tmp_path / "small.yaml"
    small.write_text("depth: 1\nwidth: 32\nheads: 2\nmax_seq_len: 32\nvocab_size: 256\n")
    args = ["--task", "text", f"task.data={corpus_dir}", f"task.tokenizer={bpe_tokenizer}"]
    assert main(["evaluate", str(small), *args, "--budget", "steps=1", "--no-measure"]) == 2
    assert "has 512 tokens but the architecture's vocab_size is 256" in one_line_error(capsys)
    assert not list(private_cache.rglob("meta.json"))  # refused before anything was prepared


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["task=text", "task.bogus=1"], "task text: unknown setting(s) bogus; known: batch_size, data,"),
        (["task=charlm", "task.data=x"], "task charlm: unknown setting(s) data; known: batch_size, root,"),
        (["task=text", "task.tokenizer=TOK", "space.fields.vocab_size=256"],
         "space lm_tiny: vocab_size 256 is smaller than task text's vocabulary (512)"),
        (["task=text", "task.tokenizer=TOK", "evaluator=sleep"], "task settings (tokenizer) need evaluator=train"),
    ],
)  # fmt: skip
def test_search_refuses_bad_task_settings_before_anything_runs(
    tmp_path: Path, bpe_tokenizer: Path, capsys, args: list[str], fragment: str
) -> None:
    args = [a.replace("TOK", str(bpe_tokenizer)) for a in args]
    assert main(["search", *args, f"leaderboard={tmp_path / 'lb'}"]) == 2
    assert fragment in one_line_error(capsys) and not (tmp_path / "lb").exists()


def test_space_show_resolves_vocab_size_task(tmp_path: Path, bpe_tokenizer: Path, capsys) -> None:
    space = tmp_path / "mine.yaml"
    space.write_text("name: mine\nfields:\n  depth: [1, 2]\n  vocab_size: task\n")
    assert main(["space", "show", f"space={space}", "task=text", f"task.tokenizer={bpe_tokenizer}"]) == 0
    assert "512 (fixed)" in capsys.readouterr().out


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkill_during_prepare_leaves_nothing_partial_and_the_rerun_completes(
    tmp_path: Path, bpe_tokenizer: Path
) -> None:
    corpus = tmp_path / "big"
    corpus.mkdir()
    texts = stdlib_texts(400)
    size = 0
    for i, (name, text) in enumerate(texts * 4):
        (corpus / f"{i:04d}_{name}.txt").write_text(text)
        size += len(text.encode())
        if size > 10e6:  # three units: the worker pool runs, for several seconds
            break
    out = tmp_path / "out" / "shards"
    env = {**os.environ, "ARCHBENCH_CACHE_DIR": str(tmp_path / "cache")}
    cmd = [ARCHBENCH, "data", "prepare", str(corpus), "--tokenizer", str(bpe_tokenizer), "--out", str(out),
           "--workers", "2", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "out").glob(".shards.partial-*/parts/*")):
        assert proc.poll() is None and time.monotonic() < deadline, "prepare ended before it could be killed"
        time.sleep(0.05)
    time.sleep(0.5)
    workers = _children(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert workers and not [pid for pid in workers if _alive(pid)]  # the workers died with their parent
    time.sleep(1.0)
    staging = list((tmp_path / "out").glob(".shards.partial-*"))
    snapshot = sorted((p, p.stat().st_size) for p in staging[0].rglob("*"))
    time.sleep(1.5)
    assert sorted((p, p.stat().st_size) for p in staging[0].rglob("*")) == snapshot  # no orphan writes on
    assert not out.exists()  # nothing at the name a reader looks for
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert (out / "meta.json").is_file() and not list((tmp_path / "out").glob(".shards.partial-*"))
    meta = json.loads((out / "meta.json").read_text())
    total = sum(shards.inspect(out / s["file"]).count for sp in ("train", "val") for s in meta["shards"][sp])
    assert total == meta["tokens"]["train"] + meta["tokens"]["val"] > 1_000_000
