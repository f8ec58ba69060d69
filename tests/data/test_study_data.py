"""The data is part of a study's identity: a resume on a changed corpus is one line, exit 2, nothing prepared or
written; ``study.allow_changes=true`` accepts and records it; a ``study.json`` from before the digest was
recorded resumes and records it. Real training (2 steps, inline, no measurement) on a tiny corpus made here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archbench import Leaderboard
from archbench.cli.main import main
from archbench.search.study import check_or_create
from tests.data.conftest import stdlib_texts


def _corpus(root: Path, extra: str = "") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in stdlib_texts(16, skip=100):
        (root / f"{name}.txt").write_text(text[:1500], encoding="utf-8")
    if extra:
        (root / "extra.txt").write_text(extra, encoding="utf-8")
    return root


def _search(capsys: pytest.CaptureFixture[str], tmp: Path, corpus: Path, n: int, *more: str) -> tuple[int, str]:
    code = main([
        "search", "task=text", f"task.data={corpus}", "task.val_tokens=128", "task.val_fraction=0.3",
        "space.fields.vocab_size=task", "space.fields.depth=[1]", "space.fields.width=[32]",
        "space.fields.max_seq_len=32", "space.fields.quant=[fp32]", f"n_trials={n}", "concurrency=1",
        "budget=steps=2", "search=random", "objectives=[val_loss,width]", "+evaluator_options.measure=false",
        "study.name=s", f"leaderboard={tmp / 'lb'}", "progress=false", "plot=false", "ray.executor=inline", *more,
    ])  # fmt: skip
    return code, capsys.readouterr().err


def _state(tmp: Path, cache: Path) -> dict[str, object]:
    """Everything a run may write: leaderboard files, the study's directory, the data cache's preparations."""
    files = [p for p in (tmp / "lb").rglob("*") if p.is_file()] + [p for p in (tmp / "studies").rglob("*")]
    return {str(p): p.stat().st_mtime_ns for p in files} | {"prepared": sorted(cache.glob("data/*/meta.json"))}


@pytest.mark.slow
def test_a_resume_on_a_changed_corpus_is_refused_in_one_line_and_writes_nothing(
    tmp_path: Path, private_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _corpus(tmp_path / "corpus")
    assert _search(capsys, tmp_path, corpus, 1)[0] == 0
    study = json.loads((tmp_path / "studies" / "s" / "study.json").read_text())
    digest = Leaderboard(tmp_path / "lb").query().collect()["data_digest"].to_list()
    assert digest == [study["data_digest"]]  # the study records the digest its rows carry

    (corpus / "extra.txt").write_text("the corpus grew\n" * 50)  # same settings, other files
    before = _state(tmp_path, private_cache)
    code, err = _search(capsys, tmp_path, corpus, 2)
    assert code == 2 and err.count("\n") == 1, err
    assert f'data_digest was "{digest[0]}", now "' in err
    assert f"(same settings: the files behind task.data={corpus} changed)" in err
    assert "study.allow_changes=true" in err
    assert _state(tmp_path, private_cache) == before  # nothing prepared, nothing written

    code, err = _search(capsys, tmp_path, corpus, 2, "study.allow_changes=true")
    assert code == 0, err
    rows = Leaderboard(tmp_path / "lb").query().collect().sort("trial")
    assert rows.height == 2 and rows["data_digest"][0] == digest[0] != rows["data_digest"][1]
    saved = json.loads((tmp_path / "studies" / "s" / "study.json").read_text())
    assert saved["data_digest"] == rows["data_digest"][1]
    assert any(c.startswith("data_digest was") for change in saved["changes"] for c in change["changed"])


def test_another_setting_is_named_and_an_older_study_json_resumes(tmp_path: Path) -> None:
    identity = {"task": "text", "fidelity": {"mode": "single"}, "evaluator_options": {"task_options": {"data": "/a"}}}
    identity["data_digest"] = "d1"
    check_or_create(tmp_path, "s", identity)
    moved = {**identity, "evaluator_options": {"task_options": {"data": "/b"}}, "data_digest": "d2"}
    with pytest.raises(Exception, match=r'data_digest was "d1", now "d2" \(task.data changed\)') as info:
        check_or_create(tmp_path, "s", moved)
    assert "evaluator_options.task_options.data was" in str(info.value) and "\n" not in str(info.value)

    older = {k: v for k, v in identity.items() if k != "data_digest"}  # written before the digest was recorded
    (tmp_path / "study.json").write_text(json.dumps(older))
    assert check_or_create(tmp_path, "s", identity) is True  # not recorded: accepted ...
    assert json.loads((tmp_path / "study.json").read_text())["data_digest"] == "d1"  # ... and recorded from now on
    with pytest.raises(Exception, match=r'data_digest was "d1", now "d3" \(same settings: the files behind '):
        check_or_create(tmp_path, "s", {**identity, "data_digest": "d3"})
