"""``search.keep_weights``: none writes nothing, all keeps a file per trained row, front prunes to the final
front at the end of each run (a funnel's lower rungs keep none), rows record paths a moved tree still finds,
and ``archbench export`` of a front row after a real search loads in transformers with archbench's logits."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archbench import ConfigError, Leaderboard, SearchSpace
from archbench.cli.main import main
from archbench.interop.kept import locate
from archbench.leaderboard.objectives import Objective
from archbench.search import RayConfig, SearchConfig, run_search
from archbench.search.fidelity import FidelityConfig

ARCHBENCH = str(Path(sys.executable).with_name("archbench"))
# Only shapes LlamaConfig expresses exactly (pre-LN, RMSNorm, SwiGLU, RoPE, dense, no bias), so any front row
# exports to hf: the default space also samples DeepNet, ReZero, block-sparse ... which no class takes.
LLAMA_FIELDS = {
    "depth": [1, 2], "width": [32, 64], "heads": [2, 4], "ffn_ratio": [2.0], "ffn_act": ["swiglu"],
    "norm": ["rmsnorm"], "residual": ["pre_ln"], "attention": ["dense"], "pos_encoding": ["rope"], "bias": False,
    "quant": ["fp32"], "drop_path": [0.0], "vocab_size": 256, "max_seq_len": 32, "tie_embeddings": [True, False],
}  # fmt: skip
LLAMA = SearchSpace.from_dict({"name": "llama_tiny", "fields": LLAMA_FIELDS})


def config(tmp: Path, keep: str, **kw: object) -> SearchConfig:
    """A search that trains for real in this process, cheaply: 2 steps, no measurement, ranked on the
    loss and the width (an architecture field: no measurement needed for a front)."""
    base: dict[str, object] = dict(
        space=LLAMA, strategy="random", budget="steps=2", n_trials=3, concurrency=1, leaderboard=str(tmp / "lb"),
        objectives=(Objective("val_loss"), Objective("width")), evaluator_options={"measure": False},
        ray=RayConfig(executor="inline"), progress=False, plot=False, keep_weights=keep, study="s",
    )  # fmt: skip
    base.update(kw)
    return SearchConfig(**base)  # type: ignore[arg-type]


def study_rows(lb: Path, study: str = "s") -> list[dict]:
    return Leaderboard(lb).query(study=study, status=None).collect().sort("trial").to_dicts()


def files(where: Path) -> set[Path]:
    return {p.resolve() for p in where.glob("*.safetensors")} if where.is_dir() else set()


def kept(row: dict, lb: Path) -> Path:
    return locate(row["weights"], lb).resolve()


def run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search.keep_weights=best"], "search.keep_weights='best': must be one of none, front, all"),
        (["search.keep_weights=true"], "search.keep_weights=True: must be one of none, front, all"),
        (["search.keep_weights=null"], "search.keep_weights=None: must be one of none, front, all"),
        (["evaluator=sleep", "search.keep_weights=front"], "evaluator sleep cannot run search.keep_weights=front"),
        (["evaluator=lookup", "search.keep_weights=all"], "evaluator lookup cannot run search.keep_weights=all"),
    ],
)
def test_a_bad_keep_weights_is_one_line_with_exit_2(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "search", *args, f"leaderboard={tmp_path / 'lb'}")
    assert code == 2 and err.startswith("archbench: error: ") and message in err, err
    assert err.count("\n") == 1
    assert not (tmp_path / "lb").exists() and not (tmp_path / "weights").exists()  # nothing written


def test_keep_weights_is_not_part_of_the_study_identity(tmp_path: Path) -> None:
    none, front = config(tmp_path, "none"), config(tmp_path, "front")
    assert none.identity() == front.identity()  # it changes no number: a resume may change it
    assert front.weights_dir == tmp_path / "weights" / "s"  # beside the leaderboard, as studies/ is
    with pytest.raises(ConfigError, match=r"evaluator sleep cannot run search\.keep_weights=all"):
        dataclasses.replace(front, evaluator="sleep", keep_weights="all", evaluator_options={})


@pytest.mark.slow
def test_none_writes_nothing(tmp_path: Path) -> None:
    outcome = run_search(config(tmp_path, "none"))
    rows = study_rows(tmp_path / "lb")
    assert len(rows) == 3 and outcome.ok == 3
    assert all(r["weights"] is None for r in rows)
    assert not (tmp_path / "weights").exists() and outcome.weights is None


@pytest.mark.slow
def test_all_keeps_every_row_then_front_prunes_on_resume_and_export_follows(tmp_path: Path, capsys) -> None:
    lb, where = tmp_path / "lb", tmp_path / "weights" / "s"
    first = run_search(config(tmp_path, "all"))
    rows = study_rows(lb)
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(rows) == 3 and len(ok) == 3
    assert all(r["weights"].startswith("../weights/s/") for r in ok)  # relative to the leaderboard directory
    assert {kept(r, lb) for r in ok} == files(where) and len(files(where)) == len({r["arch_id"] for r in ok})
    assert first.weights is not None and first.weights.files == len(files(where)) and not first.weights.deleted

    # The same study resumed with front (allowed: not part of its identity) and one trial more.
    second = run_search(config(tmp_path, "front", n_trials=4))
    rows = study_rows(lb)
    assert len(rows) == 4
    on_front = {r["trial"] for r in second.front}
    front_rows = [r for r in rows if r["trial"] in on_front]
    assert front_rows and all(r["weights"] for r in front_rows)
    assert files(where) == {kept(r, lb) for r in front_rows}  # exactly the front's files are left
    off = [r for r in rows if r["weights"] and kept(r, lb) not in files(where)]
    assert off and all(r["trial"] not in on_front for r in off)
    assert second.weights is not None and second.weights.deleted == len({kept(r, lb) for r in off})
    line = second.weights.line()
    assert line.startswith(f"weights: {len(files(where))} files in {where} (search.keep_weights=front")

    # Export after moving the whole tree: the relative paths still find the front's files.
    moved = tmp_path / "moved"
    shutil.copytree(lb, moved / "lb")
    shutil.copytree(tmp_path / "weights", moved / "weights")
    shutil.rmtree(tmp_path / "weights")
    code, out, err = run(capsys, "export", front_rows[0]["arch_id"], "--to", "hf", tmp_path / "hf",
                         "--root", moved / "lb", "--study", "s")  # fmt: skip
    assert code == 0 and "with its trained weights" in out, err
    pruned = next(r for r in off if all(r["arch_id"] != f["arch_id"] for f in front_rows))
    code, _, err = run(capsys, "export", pruned["arch_id"], "--to", "hf", tmp_path / "hf2",
                       "--root", moved / "lb", "--study", "s")  # fmt: skip
    assert code == 2 and err.count("\n") == 1
    assert "is gone; --no-weights exports the config" in err and "search.keep_weights=front" in err


@pytest.mark.slow
def test_a_funnel_keeps_the_top_rungs_front_only(tmp_path: Path) -> None:
    """``screen=full``: the top rung's rows merge its training over rung 0's measurement (promoted_row), and
    must carry the weights the top rung trained, not rung 0's (none)."""
    funnel = FidelityConfig(mode="halving", rungs=(1, 2), eta=2, screen="full")
    lb, where = tmp_path / "lb", tmp_path / "weights" / "s"
    outcome = run_search(config(tmp_path, "front", n_trials=4, fidelity=funnel, cache=False))
    rows = study_rows(lb)
    lower, top = [r for r in rows if r["rung"] == 0], [r for r in rows if r["rung"] == 1]
    assert len(lower) == 4 and top, rows
    assert all(r["weights"] is None for r in lower)  # a lower rung never writes with front
    assert all(r["weights"] and r["budget"] == "steps=4" for r in top)  # written while it ran
    on_front = {r["trial"] for r in outcome.front}
    assert on_front and on_front <= {r["trial"] for r in top}
    assert files(where) == {kept(r, lb) for r in top if r["trial"] in on_front}
    assert all(p.name.endswith("-charlm-steps4-seed0.safetensors") for p in files(where))


@pytest.mark.slow
def test_export_after_a_real_search_loads_in_transformers_with_archbench_logits(tmp_path: Path, capsys) -> None:
    """``archbench search ... search.keep_weights=front`` on Ray, ``archbench export <front row> --to hf``,
    ``from_pretrained``: the logits are archbench's (fp32, max |diff| <= 1e-4)."""
    import torch
    from transformers import AutoModelForCausalLM

    from archbench.interop.weights import load_model

    space = tmp_path / "llama_tiny.yaml"
    space.write_text(yaml.safe_dump({"name": "llama_tiny", "fields": LLAMA_FIELDS}))
    lb = tmp_path / "lb"
    cmd = [ARCHBENCH, "search", f"space={space}", "search.keep_weights=front", "n_trials=3", "concurrency=1",
           "budget=steps=20", "search=random", "study=kw", f"leaderboard={lb}", "progress=false", "plot=false",
           "ray.num_cpus=1"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=500)
    assert result.returncode == 0, result.stderr[-2000:]
    where = tmp_path / "weights" / "kw"
    assert f"files in {where} (search.keep_weights=front" in " ".join(result.stdout.split())
    rows = study_rows(lb, "kw")
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows), rows
    front = [r for r in rows if r["weights"] and locate(r["weights"], lb).is_file()]
    assert front and files(where) == {kept(r, lb) for r in front}  # only the front's files are left
    row = front[0]
    out_dir = tmp_path / "hf"
    code, out, err = run(capsys, "export", row["arch_id"], "--to", "hf", out_dir, "--root", lb, "--study", "kw")
    assert code == 0 and "config.json, model.safetensors" in out, err
    _, model = load_model(locate(row["weights"], lb))
    loaded = AutoModelForCausalLM.from_pretrained(out_dir).eval()
    idx = torch.randint(0, 256, (2, 32), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model.eval()(idx), loaded(idx).logits
    assert ours.shape == theirs.shape == (2, 32, 256)
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_pruning_keeps_the_front_and_what_another_study_points_at(tmp_path: Path) -> None:
    from archbench.interop.kept import recorded_path
    from archbench.search.trial_evaluators import failed_result
    from archbench.search.weights import settle_weights, weights_dir

    lb = Leaderboard(tmp_path / "lb")
    where = weights_dir(lb.root, "s")
    where.mkdir(parents=True)
    a, b, c, orphan = (where / f"{n}.safetensors" for n in ("a", "b", "c", "orphan"))
    for path in (a, b, c, orphan):
        path.write_bytes(b"weights")
    arch = LLAMA.sample(1)[0]

    def row(study: str, trial: int, path: Path) -> dict:
        base = failed_result(arch, "charlm", "steps=2", study, trial, 0, "failed", "stand-in").to_row()
        return {**base, "weights": recorded_path(path, lb.root)}

    lb.append([row("s", 0, a), row("s", 1, b), row("s", 2, c), row("other", 0, b)])
    assert settle_weights("none", where, lb, "s", [row("s", 0, a)]).deleted == 0  # none deletes nothing
    kept = settle_weights("all", where, lb, "s", [row("s", 0, a)])
    assert files(where) == {a.resolve(), b.resolve(), c.resolve()} and kept.deleted == 1  # the orphan only
    kept = settle_weights("front", where, lb, "s", [row("s", 0, a)])
    assert files(where) == {a.resolve(), b.resolve()} and kept.deleted == 1  # b: a row of "other" points at it
    assert (kept.files, kept.front_rows, kept.front_without) == (2, 1, 0)
    assert settle_weights("none", tmp_path / "nowhere", lb, "s", []) is None


@pytest.mark.slow
def test_cached_rows_point_at_the_original_weights_while_they_exist(tmp_path: Path) -> None:
    lb = tmp_path / "lb"
    run_search(config(tmp_path, "front", study="a"))
    original = {r["arch_id"]: r for r in study_rows(lb, "a")}
    outcome = run_search(config(tmp_path, "none", study="b"))
    reused = study_rows(lb, "b")
    assert outcome.cached == 3 and all(r["cached"] for r in reused)  # the same seed proposes the same shapes
    for r in reused:
        src = original[r["arch_id"]]
        there = locate(src["weights"], lb).is_file()
        assert r["weights"] == (src["weights"] if there else None)
    assert any(r["weights"] for r in reused) and any(not r["weights"] for r in reused)  # front kept, rest pruned
    assert not (tmp_path / "weights" / "b").exists()  # none wrote nothing


def test_a_path_is_recorded_relative_to_the_leaderboard_only_when_beside_it(tmp_path: Path) -> None:
    from archbench.interop.kept import recorded_path

    root = tmp_path / "runs" / "lb"
    beside, elsewhere = tmp_path / "runs" / "weights" / "s" / "f.safetensors", tmp_path / "other" / "f.safetensors"
    assert recorded_path(beside, root) == "../weights/s/f.safetensors"
    assert recorded_path(elsewhere, root) == str(elsewhere.resolve())  # outside the tree: absolute
    beside.parent.mkdir(parents=True)
    root.mkdir()
    beside.write_bytes(b"weights")
    assert locate("../weights/s/f.safetensors", root).resolve() == beside.resolve()
