"""Steering: feasible fronts, query-time constraints (``where``), ``pick`` and ``knee``, API and CLI.

Every leaderboard here is real parquet written by the store; fronts are checked against brute force.
"""

from __future__ import annotations

import io
import json
import math
import random
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archbench.cli.main import main
from archbench.errors import ConfigError
from archbench.leaderboard import Leaderboard
from archbench.search_space import load_arch
from tests.leaderboard.rows import ARCHS

H100 = "NVIDIA H100 80GB HBM3"
A100 = "NVIDIA A100-SXM4-40GB"
FORMATS = ("table", "csv", "json", "markdown")


def row(i: int, task: str = "charlm", device: str = H100, study: str = "s", **values: Any) -> dict[str, Any]:
    """One ok row of ARCHS[i] (unique arch per i below 24) with the given metrics."""
    arch = ARCHS[i % len(ARCHS)]
    out = {
        "arch_id": arch.arch_id,
        "study": study,
        "trial": i,
        "task": task,
        "budget": "steps=100",
        "seed": 0,
        "status": "ok",
        "error": "",
        **arch.to_dict(),
        "device_name": device,
        "device_kind": "cuda",
        "created_at": f"2026-11-01T00:00:{i % 60:02d}.000000+00:00",
    }
    out.update(values)
    return out


def board(path: Path, rows: list[dict[str, Any]]) -> Leaderboard:
    lb = Leaderboard(path)
    lb.append(rows)
    return lb


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---- feasible fronts against brute force -------------------------------------------------------------


def brute_front(rows: list[dict[str, Any]], names: list[str], keep) -> set[tuple[str, int]]:
    """O(n^2): per (task, device_name), the kept rows with every objective that no kept row dominates."""

    def point(r: dict[str, Any]) -> tuple[float, ...] | None:
        vals = [r.get(n) for n in names]
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
            return None
        return tuple(float(v) for v in vals)

    cands = [(r, point(r)) for r in rows if r["status"] == "ok" and keep(r) and point(r) is not None]
    out = set()
    for r, p in cands:
        dominated = any(
            (q[0]["task"], q[0]["device_name"]) == (r["task"], r["device_name"])
            and all(a <= b for a, b in zip(q[1], p, strict=True))
            and any(a < b for a, b in zip(q[1], p, strict=True))
            for q in cands
        )
        if not dominated:
            out.add((r["study"], r["trial"]))
    return out


def maybe(rng: random.Random, value: float, p_null: float = 0.15) -> float | None:
    u = rng.random()
    return None if u < p_null else math.nan if u < p_null + 0.05 else value


def random_rows(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        r = row(
            i,
            task=rng.choice(["charlm", "copy"]),
            device=rng.choice([H100, A100]),
            status=rng.choices(["ok", "failed", "infeasible"], weights=[8, 1, 1])[0],
            feasible=rng.choice([True, False, None]),
            val_loss=maybe(rng, round(rng.uniform(1, 3), 1)),  # coarse values: ties and duplicates happen
            latency_ms=maybe(rng, round(rng.uniform(0.5, 9), 1)),
            energy_mj=maybe(rng, round(rng.uniform(1, 50), 0)),
        )
        r["trial"] = i
        rows.append(r)
    return rows


def passes(r: dict[str, Any], metric: str, bound: float) -> bool:
    v = r.get(metric)
    return v is not None and not math.isnan(v) and v <= bound


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(5, 60), st.sampled_from([2, 3]))
def test_feasible_front_equals_brute_force(seed: int, n: int, k: int) -> None:
    names = ["val_loss", "latency_ms", "energy_mj"][:k]
    rows = random_rows(seed, n)
    with tempfile.TemporaryDirectory() as tmp:
        lb = board(Path(tmp) / "lb", rows)
        got = lb.pareto(names, feasible=True)
        assert set(zip(got["study"], got["trial"], strict=True)) == brute_front(rows, names, lambda r: r["feasible"])
        # With `where`, an unjudged row counts as feasible only if it passes; a judged-infeasible row never.
        got = lb.pareto(names, feasible=True, where="energy_mj<=30")
        want = brute_front(
            rows,
            names,
            lambda r: passes(r, "energy_mj", 30) and r["feasible"] in (True, None),
        )
        assert set(zip(got["study"], got["trial"], strict=True)) == want
        # `where` alone keeps every row meeting it, judged or not.
        got = lb.pareto(names, where="latency_ms<=5")
        want = brute_front(rows, names, lambda r: passes(r, "latency_ms", 5))
        assert set(zip(got["study"], got["trial"], strict=True)) == want
        assert got.filter(pl.col("latency_ms").is_null() | (pl.col("latency_ms") > 5)).height == 0


def test_null_feasibility_is_not_feasible_without_where(tmp_path) -> None:
    lb = board(
        tmp_path / "lb",
        [
            row(0, val_loss=1.0, latency_ms=9.0, feasible=None),  # would dominate everything
            row(1, val_loss=2.0, latency_ms=10.0, feasible=True),
            row(2, val_loss=3.0, latency_ms=1.0, feasible=False),
        ],
    )
    assert lb.pareto("val_loss,latency_ms")["trial"].to_list() == [0, 2]
    assert lb.pareto("val_loss,latency_ms", feasible=True)["trial"].to_list() == [1]
    assert lb.pareto("val_loss,latency_ms", feasible=True, where="latency_ms<=20")["trial"].to_list() == [0]
    assert lb.top(None, feasible=True, where="latency_ms<=9.5")["trial"].to_list() == [0]


# ---- where never lets a null pass -----------------------------------------------------------------------


@pytest.fixture
def nulls(tmp_path) -> Leaderboard:
    """Rows whose latency or energy is null (NaN is stored as null) and would win if a null passed or counted as 0."""
    return board(
        tmp_path / "nulls",
        [
            row(0, val_loss=0.5, latency_ms=None, energy_mj=1.0),
            row(1, val_loss=0.6, latency_ms=math.nan, energy_mj=1.0),
            row(2, val_loss=1.0, latency_ms=3.0, energy_mj=None),
            row(3, val_loss=1.5, latency_ms=2.0, energy_mj=5.0),
            row(4, val_loss=2.0, latency_ms=30.0, energy_mj=2.0),
        ],
    )


@pytest.mark.parametrize("where", ["latency_ms<=20", "latency_ms>=-1e9", "latency_ms>0", ["latency_ms<1e9"]])
def test_where_drops_null_and_nan_metrics(nulls, where) -> None:
    kept = nulls.top(None, where=where)["trial"].sort().to_list()
    assert 0 not in kept and 1 not in kept
    front = nulls.pareto("val_loss,energy_mj", where=where)
    assert set(front["trial"].to_list()) <= {2, 3, 4} and front.height > 0
    hv = nulls.hypervolume("val_loss,energy_mj", where=where)
    assert hv["rows"].sum() + hv["missing_objective"].sum() == len(kept)


def test_where_on_top_hypervolume_and_query(nulls) -> None:
    assert nulls.top(1, by="val_loss", where="latency_ms<=20")["trial"].to_list() == [2]
    assert nulls.top(None, where="latency_ms<=20,energy_mj<=10")["trial"].to_list() == [3]
    assert nulls.top(None, where={"energy_mj": 1.0})["trial"].sort().to_list() == [0, 1]
    hv = nulls.hypervolume("val_loss,latency_ms", ref=[3, 40], where="energy_mj<=5")
    assert hv["rows"].to_list() == [2] and hv["missing_objective"].to_list() == [2]
    assert hv["hypervolume"][0] == pytest.approx((3 - 1.5) * (40 - 2))  # trial 4 (2.0, 30) is dominated
    with pytest.raises(ConfigError, match="unknown constraint metric 'latncy_ms' \\(did you mean 'latency_ms'\\?\\)"):
        nulls.top(None, where="latncy_ms<=20")


# ---- pick ---------------------------------------------------------------------------------------------


@pytest.fixture
def front(tmp_path) -> Leaderboard:
    """A front whose answers are known: a knee at trial 1 (val_loss 1.2, latency 3)."""
    return board(
        tmp_path / "front",
        [
            row(0, val_loss=1.0, val_acc=0.90, latency_ms=10.0, params=4e6, energy_mj=9.0),
            row(1, val_loss=1.2, val_acc=0.85, latency_ms=3.0, params=2e6, energy_mj=3.0),
            row(2, val_loss=1.5, val_acc=0.60, latency_ms=2.5, params=1e6, energy_mj=4.0),
            row(3, val_loss=3.0, val_acc=0.30, latency_ms=1.0, params=5e5, energy_mj=2.0),
            row(4, val_loss=2.0, val_acc=0.50, latency_ms=5.0, params=3e6, energy_mj=5.0),  # dominated
            row(5, val_loss=0.9, val_acc=0.95, latency_ms=None, params=1e5, energy_mj=1.0),  # latency unmeasured
        ],
    )


@pytest.mark.parametrize(
    ("kwargs", "trial"),
    [
        ({"minimize": "val_loss"}, 5),
        ({"minimize": "val_loss", "under": {"latency_ms": 20}}, 0),  # trial 5's null latency never qualifies
        ({"minimize": "val_loss", "under": {"latency_ms": 5}}, 1),
        ({"minimize": "val_loss", "under": {"latency_ms": 2.5}}, 2),
        ({"minimize": "val_loss", "under": {"latency_ms": 5, "params": 1.5e6}}, 2),
        ({"minimize": "val_loss", "where": "latency_ms<3"}, 2),
        ({"minimize": "val_loss", "under": {"latency_ms": 5}, "where": "energy_mj>=3.5"}, 2),
        ({"maximize": "val_acc", "under": {"latency_ms": 4}}, 1),
        ({"minimize": "latency_ms", "where": "val_acc>=0.55"}, 2),
    ],
)
def test_pick_known_answers(front, kwargs, trial) -> None:
    assert front.pick(**kwargs)["trial"] == trial


def test_pick_ties_go_to_lower_latency_then_arch_id(tmp_path) -> None:
    a, b = sorted([0, 1], key=lambda i: ARCHS[i].arch_id)
    lb = board(
        tmp_path / "ties",
        [
            row(a, val_loss=1.0, latency_ms=2.0),
            row(b, val_loss=1.0, latency_ms=2.0),
            row(2, val_loss=1.0, latency_ms=3.0),
            row(3, val_loss=1.1, latency_ms=0.1),
        ],
    )
    assert lb.pick(minimize="val_loss")["arch_id"] == ARCHS[a].arch_id
    assert lb.pick(minimize="val_loss", where="latency_ms>2")["trial"] == 2


def test_pick_says_how_far_off_when_nothing_qualifies(front) -> None:
    with pytest.raises(ConfigError) as info:
        front.pick(minimize="val_loss", under={"latency_ms": 0.5, "params": 1e4})
    msg = str(info.value)
    assert msg == (
        "no row meets latency_ms<=0.5, params<=10000: considered 6 rows with val_loss; "
        "lowest latency_ms 1, lowest params 100000"
    )
    # Trial 5 has no latency_ms: it is not considered, so its val_acc 0.95 is not the one reported.
    with pytest.raises(ConfigError, match=r"considered 5 rows with latency_ms; highest val_acc 0\.9$"):
        front.pick(minimize="latency_ms", where="val_acc>=0.99")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of minimize= or maximize="),
        ({"minimize": "val_loss", "maximize": "val_acc"}, "exactly one of"),
        ({"minimize": "val_los"}, "unknown metric 'val_los' (did you mean 'val_loss'?)"),
        ({"minimize": "val_loss", "under": {"latncy_ms": 1}}, "unknown constraint metric 'latncy_ms'"),
        ({"minimize": "val_loss", "under": {"latency_ms": "x"}}, "bad bound 'x' for latency_ms"),
        ({"minimize": "val_loss", "task": "copy"}, "no rows with val_loss to pick from"),
    ],
)
def test_pick_errors_are_one_line(front, kwargs, message) -> None:
    with pytest.raises(ConfigError) as info:
        front.pick(**kwargs)
    assert message in str(info.value) and len(str(info.value).splitlines()) == 1


def test_pick_and_knee_refuse_mixed_devices_and_tasks(tmp_path) -> None:
    lb = board(
        tmp_path / "mixed",
        [
            row(0, val_loss=1.0, latency_ms=5.0),
            row(1, val_loss=2.0, latency_ms=1.0),
            row(2, device=A100, val_loss=0.5, latency_ms=7.0),
            row(3, task="copy", val_loss=0.1, latency_ms=0.1),
        ],
    )
    with pytest.raises(ConfigError, match="rows from 2 tasks \\(charlm, copy\\); pick one with --task"):
        lb.pick(minimize="val_loss")
    with pytest.raises(ConfigError, match="rows from 2 device_names"):
        lb.pick(minimize="val_loss", task="charlm")
    assert lb.pick(minimize="val_loss", task="charlm", mix_hardware=True)["trial"] == 2
    assert lb.pick(minimize="val_loss", task="charlm", hardware="*H100*")["trial"] == 0
    with pytest.raises(ConfigError, match="the front has rows from 2 device_names"):
        lb.knee("val_loss,latency_ms", task="charlm")


# ---- knee ---------------------------------------------------------------------------------------------


def test_knee_2d_is_farthest_from_the_line_between_the_ends(front) -> None:
    knee = front.knee("val_loss,latency_ms")
    assert knee["trial"] == 1
    # Normalised over the front (1.0..3.0, 1..10): (0.1, 2/9); distance to x + y = 1 is (1 - x - y) / sqrt 2.
    assert knee["knee_distance"] == pytest.approx((1 - 0.1 - 2 / 9) / math.sqrt(2))


def test_knee_respects_max_senses(front) -> None:
    # val_acc:max mirrors val_loss here: same knee. Taking val_acc as min would make trial 3 dominate all.
    assert front.knee("val_acc:max,latency_ms")["trial"] == 1
    assert front.knee("val_acc:min,latency_ms")["trial"] == 3


def test_knee_3d_plane_through_the_extremes(tmp_path) -> None:
    lb = board(
        tmp_path / "k3",
        [
            row(0, val_loss=1.0, latency_ms=10.0, energy_mj=10.0),
            row(1, val_loss=10.0, latency_ms=1.0, energy_mj=10.0),
            row(2, val_loss=10.0, latency_ms=10.0, energy_mj=1.0),
            row(3, val_loss=3.0, latency_ms=3.0, energy_mj=3.0),
            row(4, val_loss=5.0, latency_ms=6.0, energy_mj=4.0),  # on the front, nearer the plane
        ],
    )
    knee = lb.knee("val_loss,latency_ms,energy_mj")
    assert knee["trial"] == 3
    # Extremes (0,1,1), (1,0,1), (1,1,0) span x + y + z = 2; trial 3 is at (2/9, 2/9, 2/9).
    assert knee["knee_distance"] == pytest.approx((2 - 6 / 9) / math.sqrt(3))


def test_knee_of_tiny_fronts_and_duplicates(tmp_path) -> None:
    one = board(tmp_path / "one", [row(0, val_loss=1.0, latency_ms=1.0), row(1, val_loss=2.0, latency_ms=2.0)])
    assert one.knee("val_loss,latency_ms")["trial"] == 0
    two = board(tmp_path / "two", [row(0, val_loss=2.0, latency_ms=1.0), row(1, val_loss=1.0, latency_ms=2.0)])
    assert two.knee("val_loss,latency_ms")["trial"] == 1  # the one best in the first objective
    assert two.knee("latency_ms,val_loss")["trial"] == 0
    a, b = sorted([2, 3], key=lambda i: ARCHS[i].arch_id)
    dup = board(
        tmp_path / "dup",
        [
            row(0, val_loss=1.0, latency_ms=10.0),
            row(b, val_loss=1.2, latency_ms=3.0),
            row(a, val_loss=1.2, latency_ms=3.0),
            row(1, val_loss=3.0, latency_ms=1.0),
        ],
    )
    assert dup.knee("val_loss,latency_ms")["arch_id"] == ARCHS[a].arch_id  # duplicates: the lower arch_id
    with pytest.raises(ConfigError, match="the front is empty"):
        dup.knee("val_loss,latency_ms", where="latency_ms<0.5")


def test_knee_of_the_feasible_front(tmp_path) -> None:
    lb = board(
        tmp_path / "kf",
        [
            row(0, val_loss=1.0, latency_ms=10.0, feasible=True),
            row(1, val_loss=1.2, latency_ms=3.0, feasible=False),  # the knee of all rows, but infeasible
            row(2, val_loss=1.6, latency_ms=3.5, feasible=True),
            row(3, val_loss=3.0, latency_ms=1.0, feasible=True),
        ],
    )
    assert lb.knee("val_loss,latency_ms")["trial"] == 1
    assert lb.knee("val_loss,latency_ms", feasible=True)["trial"] == 2


# ---- CLI ----------------------------------------------------------------------------------------------


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


@pytest.fixture
def steered(tmp_path) -> Leaderboard:
    """Two devices, judged and unjudged rows, null metrics: a leaderboard as a constrained search leaves it."""
    rows = []
    rng = random.Random(7)
    for i in range(40):
        rows.append(
            row(
                i,
                device=H100 if i % 3 else A100,
                feasible=[True, False, None][i % 3 if i % 5 else 0],
                val_loss=round(rng.uniform(1, 3), 3),
                val_acc=round(rng.uniform(0.2, 0.9), 3),
                latency_ms=None if i % 11 == 0 else round(rng.uniform(0.5, 9), 2),
                params=float(ARCHS[i % len(ARCHS)].depth * 1000 + i),
            )
        )
        rows[-1]["study"] = f"s{i // 24}"  # arch_ids repeat after 24: keep (study, trial) unique
    lb = Leaderboard(tmp_path / "steered")
    lb.append(rows[:20])
    lb.append(rows[20:])
    return lb


STEER = ["--where", "latency_ms<=6,params<=7000", "--feasible"]
VERBS = {
    "show": (["show", "--top", "0", "--by", "val_loss", *STEER], "arch_id"),
    "pareto": (["pareto", "--objectives", "val_loss,latency_ms", *STEER], "arch_id"),
    "pareto-all": (["pareto", "--all", "--objectives", "val_acc:max,latency_ms", *STEER], "arch_id"),
    "hypervolume": (["hypervolume", "--objectives", "val_loss,latency_ms", "--ref", "4,10", *STEER], "rows"),
    "pick": (["pick", "--minimize", "val_loss", "--under", "latency_ms=6", "--under", "params=7000"], "arch_id"),
    "pick-max": (["pick", "--maximize", "val_acc", "--where", "latency_ms<=6", "--feasible"], "arch_id"),
    "knee": (["knee", "--objectives", "val_loss,latency_ms", *STEER], "arch_id"),
}


def expected(lb: Leaderboard, verb: str) -> pl.DataFrame:
    f = {"hardware": "NVIDIA H100*", "where": "latency_ms<=6,params<=7000", "feasible": True}
    if verb == "show":
        return lb.top(None, by="val_loss", **f)
    if verb == "pareto":
        return lb.pareto("val_loss,latency_ms", **f)
    if verb == "pareto-all":
        return lb.pareto("val_acc:max,latency_ms", all_rows=True, **f)
    if verb == "hypervolume":
        return lb.hypervolume("val_loss,latency_ms", ref=[4, 10], **f)
    if verb == "pick":
        return pl.from_dicts([lb.pick("val_loss", under={"latency_ms": 6, "params": 7000}, hardware="NVIDIA H100*")])
    if verb == "pick-max":
        return pl.from_dicts([lb.pick(maximize="val_acc", **{**f, "where": "latency_ms<=6"})])
    return pl.from_dicts([lb.knee("val_loss,latency_ms", **f)])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("verb", list(VERBS))
def test_steering_flags_in_every_format(steered, capsys, verb: str, fmt: str) -> None:
    argv, key = VERBS[verb]
    code, out, err = run(
        capsys, "leaderboard", *argv, "--root", str(steered.root), "--hardware", "NVIDIA H100*", "--format", fmt
    )
    assert code == 0, err
    assert "Traceback" not in err
    want = expected(steered, verb)
    assert want.height > 0
    if verb in ("show", "pareto"):  # the flags did filter: every row is feasible-or-unjudged and meets the bounds
        assert want.filter(pl.col("feasible").not_()).height == 0
        assert want.filter(pl.col("latency_ms").is_null() | (pl.col("latency_ms") > 6)).height == 0
        assert want.height < steered.top(None, by="val_loss", hardware="NVIDIA H100*").height
    parsed = parse(fmt, out)
    if parsed is None:
        for value in want[key].to_list():
            assert str(value)[:12] in out
        return
    assert parsed.height == want.height
    if fmt in ("csv", "json"):
        assert parsed[key].to_list() == want[key].to_list()


def test_plot_with_where_and_feasible(steered, capsys, tmp_path) -> None:
    out = tmp_path / "front.html"
    code, _, err = run(
        capsys, "leaderboard", "plot", "--root", str(steered.root), "--out", str(out), *STEER, "--hardware", "*H100*"
    )
    assert code == 0, err
    page = out.read_text()
    kept = steered.top(None, hardware="*H100*", where="latency_ms<=6,params<=7000", feasible=True)
    dropped = steered.top(None, hardware="*H100*").join(kept, on=["study", "trial"], how="anti")
    assert f"val_loss:min, latency_ms:min — {kept.height} rows" in page and dropped.height > 0
    path = steered.plot(tmp_path / "f.png", "val_loss,latency_ms", where="latency_ms<=6", hardware="*H100*")
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("verb", ["pick", "knee"])
def test_export_from_pick_and_knee_is_the_export_config(front, capsys, tmp_path, verb) -> None:
    base = ["--root", str(front.root), "--format", "json"]
    argv = ["pick", "--minimize", "val_loss", "--under", "latency_ms=5"] if verb == "pick" else ["knee"]
    first, second = tmp_path / "first.yaml", tmp_path / "second.yaml"
    code, out, err = run(capsys, "leaderboard", *argv, *base, "--export", str(first))
    assert code == 0, err
    chosen = json.loads(out)[0]
    assert chosen["trial"] == 1 and f"wrote {first}" in err
    assert load_arch(first).arch_id == chosen["arch_id"]
    # Exactly the document `archbench export` writes for that arch (whose only row is the chosen one).
    code, same, err = run(capsys, "export", chosen["arch_id"], "--root", str(front.root))
    assert code == 0, err
    assert same == first.read_text()
    # A later, worse row of the same arch: `export` describes the latest row, --export still the chosen one.
    front.append([row(1, study="later", val_loss=2.5, latency_ms=8.0, created_at="2026-12-01T00:00:00.000000+00:00")])
    code, out, err = run(capsys, "leaderboard", *argv, *base, "--export", str(second))
    assert code == 0, err
    prov = yaml.safe_load(second.read_text())["provenance"]
    assert (prov["study"], prov["trial"], prov["metrics"]["val_loss"]) == ("s", 1, 1.2)
    assert prov["measurements_of_this_arch"] == 2 and "knee_distance" not in prov["metrics"]
    code, latest, err = run(capsys, "export", chosen["arch_id"], "--root", str(front.root))
    assert code == 0 and yaml.safe_load(latest)["provenance"]["study"] == "later"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pareto", "--where", "latency_ms=20"], "bad constraint 'latency_ms=20': write METRIC OP NUMBER"),
        (["show", "--where", "latncy_ms<=20"], "unknown constraint metric 'latncy_ms' (did you mean 'latency_ms'?)"),
        (["hypervolume", "--where", "a<=1,,b<=2"], "empty constraint"),
        (["plot", "--out", "x.png", "--where", "latency_ms<=fast"], "the bound 'fast' is not a number"),
        (["show", "--where", "device_name<=3"], "constraint metric 'device_name' is not numeric"),
        (["pick", "--minimize", "val_loss", "--under", "latency_ms"], "--under 'latency_ms': write METRIC=BOUND"),
        (["pick", "--minimize", "val_loss", "--under", "latency_ms=nan"], "write METRIC=BOUND with a finite number"),
        (["pick", "--minimize", "val_loss", "--under", "params=1", "--under", "params=2"], "--under params is given"),
        (["pick", "--minimize", "val_los", "--hardware", "*H100*"], "unknown metric 'val_los'"),
        (["pick", "--minimize", "val_loss", "--under", "latency_ms=0.1", "--hardware", "*H100*"], "considered"),
        (["pick", "--minimize", "val_loss"], "rows from 2 device_names"),
        (["knee", "--objectives", "val_loss"], "at least 2 objectives"),
        (["knee"], "the front has rows from 2 device_names"),
        (["knee", "--where", "latency_ms<0", "--hardware", "*H100*"], "the front is empty"),
    ],
)
def test_bad_input_is_one_line_exit_2(steered, capsys, argv, message) -> None:
    code, _out, err = run(capsys, "leaderboard", *argv, "--root", str(steered.root))
    assert code == 2, err
    assert err.startswith("archbench: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_pick_needs_one_direction(steered, capsys) -> None:
    for argv in (["pick"], ["pick", "--minimize", "val_loss", "--maximize", "val_acc"]):
        with pytest.raises(SystemExit) as info:
            main(["leaderboard", *argv, "--root", str(steered.root)])
        assert info.value.code == 2
        assert "--minimize" in capsys.readouterr().err


def test_feasible_on_an_unjudged_leaderboard_says_why_nothing_matches(nulls, capsys) -> None:
    code, out, err = run(capsys, "leaderboard", "pareto", "--feasible", "--root", str(nulls.root), "--format", "csv")
    assert code == 0 and pl.read_csv(io.StringIO(out)).height == 0
    assert "count as feasible only with --where" in err
    code, out, err = run(
        capsys,
        "leaderboard",
        "pareto",
        "--feasible",
        "--where",
        "latency_ms<=20",
        "--root",
        str(nulls.root),
        "--format",
        "csv",
    )
    assert code == 0 and pl.read_csv(io.StringIO(out))["trial"].sort().to_list() == [2, 3] and err == ""
