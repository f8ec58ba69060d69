"""Every `archbench leaderboard` verb in every format, on a real leaderboard written by the store."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import polars as pl
import pytest
import yaml

from archbench.cli.main import main
from archbench.search_space import load_arch

FORMATS = ("table", "csv", "json", "markdown")
VERBS = {
    "show": ["show", "--top", "5", "--by", "val_loss"],
    "pareto": ["pareto", "--objectives", "val_loss:min,latency_ms:min,energy_mj:min"],
    "pareto-all": ["pareto", "--all", "--objectives", "val_acc:max,latency_ms"],
    "hypervolume": ["hypervolume", "--objectives", "val_loss,latency_ms", "--ref", "4,10"],
    "sql": ["sql", "SELECT device_name, count(*) AS n, min(val_loss) AS best FROM results GROUP BY device_name"],
}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def parse(fmt: str, out: str) -> pl.DataFrame | None:
    if fmt == "csv":
        return pl.read_csv(io.StringIO(out))
    if fmt == "json":
        return pl.DataFrame(json.loads(out))
    if fmt == "markdown":
        lines = out.strip().splitlines()
        assert lines[1].startswith("| ---")
        return pl.DataFrame({"row": lines[2:]})
    return None


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("verb", list(VERBS))
def test_every_verb_in_every_format(filled, capsys, verb: str, fmt: str) -> None:
    code, out, err = run(
        capsys, "leaderboard", *VERBS[verb], "--root", str(filled.root), "--task", "charlm", "--format", fmt
    )
    assert code == 0, err
    assert "Traceback" not in err
    if verb == "show":
        expected = filled.top(5, by="val_loss", task="charlm")
    elif verb == "pareto":
        expected = filled.pareto("val_loss,latency_ms,energy_mj", task="charlm")
    elif verb == "pareto-all":
        expected = filled.pareto("val_acc:max,latency_ms", task="charlm", all_rows=True)
    elif verb == "hypervolume":
        expected = filled.hypervolume("val_loss,latency_ms", ref=[4, 10], task="charlm")
    else:
        expected = filled.sql(VERBS["sql"][1], task="charlm")
    parsed = parse(fmt, out)
    if parsed is None:  # the rich table: every row's first cell is printed
        first = expected.columns[0] if verb in ("hypervolume", "sql") else "arch_id"
        for value in expected[first].to_list():
            assert str(value)[:12] in out
        return
    assert parsed.height == expected.height
    if fmt in ("csv", "json"):
        key = "hypervolume" if verb == "hypervolume" else "n" if verb == "sql" else "arch_id"
        assert parsed[key].to_list() == expected[key].to_list()
        if verb == "show":
            assert set(parsed.columns) == set(expected.columns)  # machine formats carry every column


def test_filters_hardware_glob_study_and_status(filled, capsys) -> None:
    root = ["--root", str(filled.root), "--format", "csv"]
    _, out, _ = run(capsys, "leaderboard", "show", "--top", "0", "--hardware", "nvidia*", *root)
    df = pl.read_csv(io.StringIO(out))
    assert set(df["device_name"].unique().to_list()) == {"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"}
    assert set(df["status"].to_list()) == {"ok"}
    _, out, _ = run(capsys, "leaderboard", "show", "--top", "0", "--status", "failed,oom", "--study", "a,b", *root)
    df = pl.read_csv(io.StringIO(out))
    assert set(df["status"].to_list()) == {"failed", "oom"} and set(df["study"].to_list()) <= {"a", "b"}
    assert df.height == filled.query(status=["failed", "oom"], study=["a", "b"]).collect().height
    _, out, _ = run(capsys, "leaderboard", "show", "--top", "0", "--status", "all", *root)
    assert pl.read_csv(io.StringIO(out)).height == len(filled)
    # A front per device; --mix-hardware gives one per task.
    _, per, _ = run(capsys, "leaderboard", "pareto", "--task", "charlm", *root)
    _, mixed, _ = run(capsys, "leaderboard", "pareto", "--task", "charlm", "--mix-hardware", *root)
    assert pl.read_csv(io.StringIO(per))["device_name"].n_unique() == 3
    assert pl.read_csv(io.StringIO(mixed)).height <= pl.read_csv(io.StringIO(per)).height


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["leaderboard", "show", "--task", "chrlm"], "no rows with task 'chrlm' (did you mean 'charlm'?)"),
        (["leaderboard", "show", "--hardware", "TPU*"], "matches no device_name"),
        (["leaderboard", "show", "--status", "okay"], "unknown status 'okay'"),
        (["leaderboard", "show", "--by", "val_los"], "unknown metric 'val_los' (did you mean 'val_loss'?)"),
        (["leaderboard", "show", "--columns", "arch_idd"], "unknown column 'arch_idd'"),
        (["leaderboard", "pareto", "--objectives", "val_loss:lowest,latency_ms"], "min or max"),
        (["leaderboard", "pareto", "--objectives", "val_loss"], "at least 2 objectives"),
        (["leaderboard", "pareto", "--objectives", "val_loss,device_name"], "not numeric"),
        (["leaderboard", "hypervolume", "--ref", "1,2,3"], "--ref has 3 values but there are 2"),
        (["leaderboard", "sql", "DROP TABLE results"], "only read-only queries"),
        (["leaderboard", "sql", "SELECT 1 FROM results; DELETE FROM results"], "only one SQL statement"),
        (["leaderboard", "sql", "SELECT nope FROM results"], "SQL error"),
        (["leaderboard", "plot", "--out", "x.gif"], "must end in"),
        (["leaderboard", "plot", "--out", "x.png"], "several tasks"),
        (["export", "ffffffffffff"], "no architecture 'ffffffffffff'"),
        (["export", "xyz"], "not hexadecimal"),
    ],
)
def test_user_errors_are_one_line_exit_2(filled, capsys, argv, message) -> None:
    code, _out, err = run(capsys, *argv, "--root", str(filled.root))
    assert code == 2
    assert err.startswith("archbench: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_root_and_env_var(tmp_path, capsys, monkeypatch, filled) -> None:
    code, _, err = run(capsys, "leaderboard", "show", "--root", str(tmp_path / "nope"))
    assert code == 2 and "no leaderboard at" in err
    monkeypatch.setenv("ARCHBENCH_LEADERBOARD", str(filled.root))
    code, out, _ = run(capsys, "leaderboard", "show", "--format", "json", "--top", "3")
    assert code == 0 and len(json.loads(out)) == 3


def test_ambiguous_prefix(tmp_path, capsys) -> None:
    from archbench.leaderboard import Leaderboard

    lb = Leaderboard(tmp_path / "amb")
    lb.append([{"arch_id": i, "task": "t", "status": "ok"} for i in ("abc111111111", "abc222222222")])
    code, _, err = run(capsys, "export", "abc", "--root", str(lb.root))
    assert code == 2 and "ambiguous: it matches 2 (abc111111111, abc222222222)" in err


def test_export_round_trips_and_carries_provenance(filled, capsys, tmp_path) -> None:
    front = filled.pareto("val_loss,latency_ms", task="charlm", hardware="NVIDIA H100*")
    arch_id = front["arch_id"][0]
    out_file = tmp_path / "arch.yaml"
    code, out, err = run(
        capsys, "export", arch_id[:7], "-o", str(out_file), "--root", str(filled.root), "--hardware", "NVIDIA H100*"
    )
    assert code == 0, err
    arch = load_arch(out_file)
    assert arch.arch_id == arch_id
    doc = yaml.safe_load(out_file.read_text())
    assert doc["_target_"] == "archbench.build" and set(doc) >= {"arch", "provenance"}
    prov = doc["provenance"]
    rows = filled.query(hardware="NVIDIA H100*").filter(pl.col("arch_id") == arch_id).collect()
    latest = rows.sort("created_at", descending=True).row(0, named=True)
    assert prov["arch_id"] == arch_id and prov["hardware"]["device_name"] == "NVIDIA H100 80GB HBM3"
    assert prov["metrics"]["val_loss"] == latest["val_loss"] and prov["metrics"]["params"] == latest["params"]
    assert "energy_mj" not in prov["metrics"] or latest["energy_mj"] is not None  # null is left out, never 0
    assert prov["measurements_of_this_arch"] == rows.height
    # To stdout without -o; same document.
    code, out, _ = run(capsys, "export", arch_id, "--root", str(filled.root), "--hardware", "NVIDIA H100*")
    assert code == 0 and yaml.safe_load(out) == doc


def test_export_builds_with_hydra(filled, tmp_path) -> None:
    from hydra.utils import instantiate

    arch_id = filled.top(1, by="val_loss")["arch_id"][0]
    path = tmp_path / "a.yaml"
    filled.export(arch_id, path)
    model = instantiate(yaml.safe_load(path.read_text()))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_check_and_compact_verbs(filled, capsys) -> None:
    root = ["--root", str(filled.root)]
    code, out, _ = run(capsys, "leaderboard", "check", *root)
    assert code == 0 and "3 good parts, 240 rows; 0 bad parts" in out
    (filled.root / "parts" / "p-9-bad.parquet").write_bytes(b"junk")
    for fmt in FORMATS:
        code, out, _err = run(capsys, "leaderboard", "check", "--format", fmt, *root)
        assert code == 1 and "p-9-bad.parquet" in out and "unreadable parquet" in out
    code, out, _ = run(capsys, "leaderboard", "show", "--top", "0", "--format", "csv", "--status", "all", *root)
    assert code == 0 and pl.read_csv(io.StringIO(out)).height == 240  # good rows still readable
    code, out, _ = run(capsys, "leaderboard", "compact", *root)
    assert code == 0 and "merged 3 parts (240 rows) into 1" in out
    code, out, _ = run(capsys, "leaderboard", "check", "--fix", *root)
    assert code == 0 and "moved 1 bad parts" in out
    code, out, _ = run(capsys, "leaderboard", "check", *root)
    assert code == 0 and "1 good parts, 240 rows; 0 bad parts" in out


def test_plot_verb(filled, capsys, tmp_path) -> None:
    out = tmp_path / "front.png"
    code, text, _err = run(
        capsys, "leaderboard", "plot", "--task", "charlm", "--out", str(out), "--root", str(filled.root)
    )
    assert code == 0 and f"wrote {out}" in text and out.stat().st_size > 10_000


@pytest.mark.slow
def test_the_installed_command_runs(filled) -> None:
    exe = [sys.executable, "-m", "archbench.cli.main"]
    ok = subprocess.run(
        [*exe, "leaderboard", "show", "--root", str(filled.root), "--format", "json"], capture_output=True, text=True
    )
    assert ok.returncode == 0 and len(json.loads(ok.stdout)) == 20
    bad = subprocess.run(
        [*exe, "leaderboard", "pareto", "--root", str(filled.root), "--objectives", "nope,val_loss"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("archbench: error: unknown objective 'nope'")
