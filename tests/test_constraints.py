"""archbench.constraints: parsing as users write constraints, violation arithmetic, judging rows, the polars filter."""

from __future__ import annotations

import math
import subprocess
import sys

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archbench.constraints import (
    OPS,
    PRETRAIN_METRICS,
    STRICT_EPS,
    Constraint,
    constraints_expr,
    judge,
    parse_constraints,
    pretrain,
)
from archbench.errors import ConfigError
from archbench.trial import METRICS

metrics = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
bounds = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**12), 10**12)
constraints = st.builds(Constraint, metrics, st.sampled_from(OPS), bounds)
constraint_lists = st.lists(constraints, min_size=1, max_size=6, unique_by=lambda c: (c.metric, c.op))
values = st.none() | st.just(math.nan) | st.floats(allow_nan=False, allow_infinity=False, width=32) | st.integers(-5, 5)


# ---- parsing ----------------------------------------------------------------------------------------


@given(constraints)
def test_one_constraint_round_trips_through_its_text(c: Constraint) -> None:
    assert Constraint.parse(str(c)) == c
    assert parse_constraints(str(c)) == (c,)


@given(constraint_lists, st.sampled_from(["[{}]", "{}", "  [ {} ]  "]), st.sampled_from([",", ", ", " , "]))
def test_lists_round_trip_in_every_written_form(cs: list[Constraint], wrap: str, sep: str) -> None:
    text = wrap.format(sep.join(map(str, cs)))
    assert parse_constraints(text) == tuple(cs)
    assert parse_constraints([str(c) for c in cs]) == tuple(cs)  # a Python list of strings
    assert parse_constraints(cs) == tuple(cs)
    assert parse_constraints([f"'{c}'" for c in cs]) == tuple(cs)  # quoted items, as YAML/Hydra may leave them


@pytest.mark.slow
@settings(max_examples=300)
@given(st.text(max_size=40))
def test_any_text_parses_or_fails_in_one_line(text: str) -> None:
    try:
        out = parse_constraints(text)
    except ConfigError as exc:
        msg = str(exc)
        assert msg and len(msg.splitlines()) == 1
        return
    assert all(isinstance(c, Constraint) for c in out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latency_ms<=20", [("latency_ms", "<=", 20.0)]),
        ("params<=1.5e8", [("params", "<=", 1.5e8)]),
        ("[latency_ms<=20, peak_mem_mb<=40000]", [("latency_ms", "<=", 20.0), ("peak_mem_mb", "<=", 40000.0)]),
        ("latency_ms<=20,params<=1.5e8", [("latency_ms", "<=", 20.0), ("params", "<=", 1.5e8)]),
        (" val_acc >= 0.5 ", [("val_acc", ">=", 0.5)]),
        ("latency_ms<20,latency_ms>1", [("latency_ms", "<", 20.0), ("latency_ms", ">", 1.0)]),
        ("latency_ms≤20", [("latency_ms", "<=", 20.0)]),
        ("x>-3", [("x", ">", -3.0)]),
        ("", []),
        ("[]", []),
        (None, []),
        ({"latency_ms": 20, "params": 1e6}, [("latency_ms", "<=", 20.0), ("params", "<=", 1e6)]),
    ],
)
def test_parses_what_users_write(text, expected) -> None:
    assert [(c.metric, c.op, c.bound) for c in parse_constraints(text)] == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency_ms=20", "write METRIC OP NUMBER with OP one of <=, <, >=, >"),
        ("latency_ms==20", "write METRIC OP NUMBER"),
        ("latency_ms<=", "write METRIC OP NUMBER"),
        ("<=20", "write METRIC OP NUMBER"),
        ("latency_ms<=20ms", "the bound '20ms' is not a number"),
        ("latency_ms<=inf", "finite number"),
        ("latency_ms<=nan", "finite number"),
        ("[latency_ms<=20,,params<=1]", "empty constraint"),
        ("latency_ms<=20,latency_ms<=10", "constraint latency_ms<= is given twice"),
        ("2latency<=1", "write METRIC OP NUMBER"),
        ({"latency_ms": "fast"}, "bad bound 'fast' for latency_ms"),
        ([3], "bad constraint 3"),
        (["latency_ms<=1", ""], "bad constraint ''"),
    ],
)
def test_bad_text_is_one_line_saying_what_is_allowed(text, message) -> None:
    with pytest.raises(ConfigError) as info:
        parse_constraints(text)
    assert message in str(info.value) and len(str(info.value).splitlines()) == 1


def test_constructor_refuses_bad_fields() -> None:
    for args in [("latency ms", "<=", 1), ("x", "==", 1), ("x", "<=", math.inf), ("x", "<=", True)]:
        with pytest.raises(ConfigError):
            Constraint(*args)


# ---- violation arithmetic -----------------------------------------------------------------------------


def test_violation_is_relative_excess_and_zero_when_met() -> None:
    c = Constraint.parse("latency_ms<=20")
    assert c.violation(15) == 0.0 and c.violation(20) == 0.0
    assert c.violation(25) == pytest.approx(0.25)
    assert c.signed(15) == pytest.approx(-0.25)
    lower = Constraint.parse("val_acc>=0.5")
    assert lower.violation(0.4) == pytest.approx(0.2) and lower.violation(0.9) == 0.0
    neg = Constraint.parse("delta<=-2")
    assert neg.violation(-1) == pytest.approx(0.5)  # scaled by |bound|
    zero = Constraint.parse("errors<=0")
    assert zero.violation(1e-12) == pytest.approx(1.0)  # tiny scale, not a division by zero


def test_strict_bound_met_exactly_is_violated() -> None:
    assert Constraint.parse("x<20").violation(20) == STRICT_EPS > 0
    assert Constraint.parse("x>20").violation(20) == STRICT_EPS
    assert Constraint.parse("x<20").violation(19.9) == 0.0 and Constraint.parse("x<20").holds(20) is False


def test_missing_value_has_no_violation_never_zero() -> None:
    c = Constraint.parse("latency_ms<=20")
    for missing in (None, math.nan, "n/a", True):
        assert c.violation(missing) is None and c.holds(missing) is None


def test_violations_in_different_units_add_up() -> None:
    cs = parse_constraints("latency_ms<=20,params<=1e6")
    feasible, violation, reason = judge({"latency_ms": 30, "params": 1.5e6}, cs)
    assert feasible is False and violation == pytest.approx(0.5 + 0.5)
    assert reason == "latency_ms=30 > 20, params=1500000 > 1000000"


@given(constraints, values)
def test_violation_and_signed_agree(c: Constraint, value) -> None:
    v, s = c.violation(value), c.signed(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        assert v is None and s is None
        return
    assert v == max(s, 0.0) and v >= 0
    strict_ok = {"<=": value <= c.bound, "<": value < c.bound, ">=": value >= c.bound, ">": value > c.bound}[c.op]
    assert (v == 0) == strict_ok == c.holds(value)


# ---- judge -------------------------------------------------------------------------------------------


def test_judge_outcomes() -> None:
    cs = parse_constraints("[latency_ms<=20, params<=1.5e8, val_acc>=0.5]")
    assert judge({"latency_ms": 25.3, "params": 1e8, "val_acc": 0.6}, cs) == (
        False,
        pytest.approx(0.265),
        "latency_ms=25.3 > 20",
    )
    assert judge({"latency_ms": 5, "params": 1e8, "val_acc": 0.6}, cs) == (True, 0.0, "")
    assert judge({"latency_ms": 5, "val_acc": 0.6}, cs) == (None, None, "params missing")  # unknown, not feasible
    out = judge({"latency_ms": 40, "params": None, "val_acc": 0.4}, cs)
    assert out[0] is False and out[1] == pytest.approx(1.0 + 0.2)  # violated anyway: the missing one is named too
    assert out[2] == "latency_ms=40 > 20, val_acc=0.4 < 0.5, params missing"
    assert judge({"latency_ms": 1}, ()) == (None, None, "")


# ---- the polars filter -------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(values, min_size=1, max_size=20), constraints)
def test_expr_matches_holds_and_drops_missing(column: list, c: Constraint) -> None:
    floats = [None if v is None else float(v) for v in column]
    df = pl.DataFrame({c.metric: floats}, schema={c.metric: pl.Float64})
    got = df.select(c.expr().alias("ok"))["ok"].to_list()
    assert got == [bool(c.holds(v)) for v in floats]  # None (missing) -> False, never True


def test_expr_on_integer_columns_and_conjunction() -> None:
    df = pl.DataFrame({"params": [10, None, 30], "latency_ms": [1.0, 1.0, math.nan]})
    keep = df.filter(constraints_expr(parse_constraints("params<=20,latency_ms<=5")))
    assert keep["params"].to_list() == [10]
    assert df.filter(constraints_expr(())).height == 3


def test_pretrain_metrics_are_known_metrics() -> None:
    assert set(PRETRAIN_METRICS) <= set(METRICS)
    cs = parse_constraints("latency_ms<=20,val_loss<=2,params<=1e6")
    assert [c.metric for c in pretrain(cs)] == ["latency_ms", "params"]


def test_importing_constraints_does_not_import_torch() -> None:
    code = "import sys, archbench.constraints; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
