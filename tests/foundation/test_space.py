"""SearchSpace: loading, counting, seeded sampling, and the Optuna / pymoo encodings with repair."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archbench import Architecture, ConfigError, SearchSpace
from archbench.search.optuna_strategies import OptunaEncoding
from archbench.search_space.space import COUPLED


@pytest.fixture(scope="module", params=["lm_tiny", "lm_small"])
def space(request: pytest.FixtureRequest) -> SearchSpace:
    return SearchSpace.builtin(request.param)


def test_builtin_spaces() -> None:
    assert {"lm_tiny", "lm_small"} <= set(SearchSpace.builtin_names())
    with pytest.raises(ConfigError, match="unknown space 'nope'; known: lm_hybrid, lm_small, lm_tiny"):
        SearchSpace.builtin("nope")


def test_lm_tiny_covers_every_residual_and_attention_pattern() -> None:
    tiny = SearchSpace.builtin("lm_tiny")
    assert len(tiny.choices["residual"]) == 7 and len(tiny.choices["attention"]) == 4


def test_size_is_counted_exactly_on_a_hand_counted_space() -> None:
    space = SearchSpace.from_dict(
        {
            "name": "hand",
            "fields": {
                "depth": [1, 2], "unique_layers": [1, None], "width": 32, "heads": [2, 3],
                "attention": ["dense", "sliding_window"], "window": [8, 16], "max_seq_len": 32,
                "residual": ["pre_ln", "post_ln"],
            },
        }
    )  # fmt: skip
    # depth 1 -> unique {1}; depth 2 -> unique {1, 2}: 3. heads 3 never divides 32: 1.
    # dense (window unused) + sliding_window x 2 windows: 3. Residual independent: 2.
    assert space.size().valid == 3 * 1 * 3 * 2
    assert space.size().raw == 2 * 2 * 2 * 2 * 2 * 2
    everything = space.sample(18, seed=0)
    assert len({a.arch_id for a in everything}) == 18
    with pytest.raises(ConfigError, match="only 18"):
        space.sample(19)


def test_sampling_is_seeded_distinct_and_valid(space: SearchSpace) -> None:
    a = space.sample(30, seed=7)
    b = space.sample(30, seed=7)
    c = space.sample(30, seed=8)
    assert a == b and a != c
    assert len({x.arch_id for x in a}) == 30
    assert all(space.contains(x) for x in a)


def test_sampling_is_roughly_uniform_over_a_coupled_field() -> None:
    space = SearchSpace.builtin("lm_tiny")
    archs = space.sample(2000, seed=1)
    counts = {p: sum(a.attention == p for a in archs) for p in space.choices["attention"]}
    # Windowed patterns have 2 windows each, dense and linear none: expect 1:2:2:1 of valid archs.
    assert counts["sliding_window"] > 1.5 * counts["dense"]
    assert counts["block_sparse"] > 1.5 * counts["linear"]


@pytest.mark.slow
@given(data=st.data())
@settings(max_examples=200, deadline=None)
def test_decode_of_any_vector_is_valid_and_in_space(data: st.DataObject) -> None:
    space = SearchSpace.builtin("lm_small")
    xl, xu = space.bounds()
    x = [data.draw(st.integers(int(lo), int(hi))) for lo, hi in zip(xl, xu, strict=True)]
    arch = space.decode(x)
    assert isinstance(arch, Architecture)
    assert space.contains(arch)
    # Valid vectors decode to themselves: repair only moves invalid ones.
    assert space.decode(space.encode(arch)) == arch


def test_repair_moves_to_the_nearest_valid_choice() -> None:
    space = SearchSpace.from_dict({"fields": {"width": [32, 48], "heads": [2, 3, 4], "depth": 2}})
    free = space.free_fields
    assert free == ("width", "heads")
    # width 32 with heads 3 is invalid; nearest valid in index steps is heads 2 or 4 (first wins) or width 48.
    arch = space.decode([0, 1])
    assert arch.width * 1 % arch.heads == 0
    assert (arch.width, arch.heads) in {(32, 2), (48, 3), (32, 4)}


def test_encode_refuses_an_architecture_outside_the_space(space: SearchSpace) -> None:
    outside = space.sample(1, seed=0)[0].replace(vocab_size=12345)
    with pytest.raises(ConfigError, match="not in space"):
        space.encode(outside)
    assert not space.contains(outside)


def test_optuna_encoding_with_a_real_study(space: SearchSpace) -> None:
    encoding = OptunaEncoding(space)  # the Optuna encoding lives with the Optuna strategies, not in the space
    dists = encoding.distributions()
    assert set(dists) == set(space.free_fields)
    assert isinstance(dists["depth"], optuna.distributions.IntDistribution)  # ordered: TPE/GP see order
    assert isinstance(dists["residual"], optuna.distributions.CategoricalDistribution)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.NSGAIISampler(seed=0))
    seen = []
    for _ in range(40):
        trial = study.ask(dists)
        arch = encoding.to_arch(trial.params)
        assert space.contains(arch)
        seen.append(arch)
        study.tell(trial, [arch.depth * arch.width, -arch.depth])
    assert len({a.arch_id for a in seen}) > 30
    # Warm start: params that map back to a known architecture.
    known = space.sample(1, seed=3)[0]
    params = encoding.to_params(known)
    for k, v in params.items():
        assert dists[k]._contains(dists[k].to_internal_repr(v))
    assert encoding.to_arch(params) == known


def test_pymoo_integer_encoding(space: SearchSpace) -> None:
    from pymoo.core.problem import Problem
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    xl, xu = space.bounds()
    problem = Problem(n_var=len(xl), xl=xl, xu=xu, vtype=int)
    pop = IntegerRandomSampling()(problem, 50, seed=0)
    for x in pop.get("X"):
        assert space.contains(space.decode(x))


def test_for_device_drops_quant_modes_it_cannot_run() -> None:
    small = SearchSpace.builtin("lm_small")
    restricted = small.for_device({"fp8": "no fp8 here", "fp32": None})
    assert "fp8" not in restricted.choices["quant"] and restricted.dropped["quant"] == ("fp8",)
    assert all(a.quant != "fp8" for a in restricted.sample(200, seed=0))
    assert small.for_device({"fp8": None}) is small
    only_fp8 = SearchSpace.from_dict({"fields": {"quant": ["fp8"]}})
    with pytest.raises(ConfigError, match="no quant choice runs on this device"):
        only_fp8.for_device({"fp8": "no"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dept": [1, 2]}, "unknown field 'dept' (did you mean 'depth'?)"),
        ({"depth": []}, "field depth has an empty list of choices"),
        ({"depth": [2, 2]}, "lists a choice twice"),
        ({"residual": ["pre_ln", "resnet"]}, "residual='resnet'"),
        ({"heads": [3], "width": [32]}, "no combination of depth"),
        ({"ffn_ratio": [2.0, -1.0]}, "ffn_ratio=-1.0"),
    ],
)
def test_bad_space_configs_fail_with_one_line(fields: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        SearchSpace.from_dict({"name": "bad", "fields": fields})
    assert message in str(info.value) and "\n" not in str(info.value)


def test_round_trip_through_dict() -> None:
    small = SearchSpace.builtin("lm_small")
    again = SearchSpace.from_dict(small.to_dict())
    assert dict(again.choices) == dict(small.choices)
    assert set(COUPLED) <= set(small.choices)
    assert np.array_equal(again.bounds()[1], small.bounds()[1])
