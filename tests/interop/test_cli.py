"""Through the command line: evaluate --save, export --to hf|litgpt of a real leaderboard row, import-hf,
and bad input as one line with exit status 2."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch
import yaml

from archbench.cli.main import main
from archbench.evaluators import evaluate
from archbench.interop.weights import load_model
from archbench.leaderboard import Leaderboard
from archbench.search_space import Architecture, load_arch
from tests.interop.conftest import EXACT, tokens

LLAMA = Architecture(
    depth=2, width=32, heads=4, kv_heads=2, ffn_act="swiglu", norm="rmsnorm", pos_encoding="rope", bias=False,
    tie_embeddings=False, max_seq_len=64,
)  # fmt: skip


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def board(tmp_path_factory) -> Leaderboard:
    """A leaderboard with a trained row that kept its weights, and one that did not."""
    root = tmp_path_factory.mktemp("lb")
    kept = evaluate(LLAMA, "charlm", "steps=4", measure=False, save_weights=root / "weights")
    plain = evaluate(EXACT["gpt2"].replace(max_seq_len=64), "charlm", "steps=1", measure=False)
    assert kept.status == "ok" and kept.weights and plain.weights is None
    lb = Leaderboard(root / "lb")
    lb.append([kept, plain])
    return lb


@pytest.mark.slow
def test_export_to_hf_of_a_trained_row_loads_with_archbench_logits(board, tmp_path, capsys) -> None:
    from transformers import AutoModelForCausalLM

    code, out, err = run(capsys, "export", LLAMA.arch_id[:8], "--to", "hf", tmp_path / "hf", "--root", board.root)
    assert code == 0, err
    assert "config.json, model.safetensors" in out and "with its trained weights" in out
    weights = board.scan().filter(pl.col("arch_id") == LLAMA.arch_id).collect()["weights"][0]
    _, model = load_model(weights)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    idx = tokens(LLAMA, length=48)
    with torch.no_grad():
        assert (model.eval()(idx) - loaded(idx).logits).abs().max().item() <= 1e-4


@pytest.mark.slow
def test_export_to_litgpt_of_a_trained_row(board, tmp_path, capsys) -> None:
    litgpt = pytest.importorskip("litgpt")
    from litgpt.model import GPT

    code, out, err = run(capsys, "export", LLAMA.arch_id, "--to", "litgpt", tmp_path / "lit", "--root", board.root)
    assert code == 0, err
    assert "model_config.yaml" in out and "lit_model.pth" in out
    lit = GPT(litgpt.Config.from_file(tmp_path / "lit" / "model_config.yaml"))
    lit.load_state_dict(torch.load(tmp_path / "lit" / "lit_model.pth", weights_only=True))
    code, out, _ = run(capsys, "export", LLAMA.arch_id, "--to", "litgpt", "--root", board.root)
    assert code == 0 and yaml.safe_load(out)["n_query_groups"] == 2  # stdout without a DIR
    code, _, err = run(capsys, "export", LLAMA.arch_id, "--to", "litgpt", tmp_path / "lit", "--root", board.root)
    assert code == 2 and "exists; use --force" in err


@pytest.mark.slow
def test_export_to_hf_of_a_row_without_weights_writes_the_config(board, tmp_path, capsys) -> None:
    arch = EXACT["gpt2"].replace(max_seq_len=64)
    code, out, err = run(capsys, "export", arch.arch_id, "--to", "hf", tmp_path / "cfg", "--root", board.root)
    assert code == 0, err
    assert "config only" in out and sorted(p.name for p in (tmp_path / "cfg").iterdir()) == ["config.json"]
    assert json.loads((tmp_path / "cfg" / "config.json").read_text())["model_type"] == "gpt2"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--to", "hf", "{full}"], "exists and is not empty; use --force"),
        (["--to", "hf"], "--to hf writes a model directory: give DIR"),
        (["{dir}"], "--to hydra writes one file: use -o FILE.yaml"),
    ],
)
def test_bad_export_input_is_one_line_and_exit_2(board, tmp_path, capsys, argv, message) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    argv = [a.format(full=tmp_path / "full", dir=tmp_path / "d") for a in argv]
    code, _, err = run(capsys, "export", LLAMA.arch_id, *argv, "--root", board.root)
    assert code == 2 and message in err and err.strip().count("\n") == 0
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep me"


@pytest.mark.slow
def test_force_replaces_a_non_empty_dir(board, tmp_path, capsys) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old.txt").write_text("old")
    code, _, err = run(capsys, "export", LLAMA.arch_id, "--to", "hf", tmp_path / "full", "--force", "--no-weights",
                       "--root", board.root)  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["config.json"]


def test_export_refuses_an_inexpressible_row_in_one_line(tmp_path, capsys) -> None:
    lb = Leaderboard(tmp_path / "lb")
    arch = Architecture(residual="rezero", unique_layers=2)
    lb.append([{"task": "charlm", "status": "ok", "val_loss": 2.0, **arch.to_dict()}])
    code, _, err = run(capsys, "export", arch.arch_id, "--to", "hf", tmp_path / "x", "--root", lb.root)
    assert code == 2 and err.strip().count("\n") == 0
    assert "residual='rezero'" in err and "unique_layers=2" in err and not (tmp_path / "x").exists()
    code, _, err = run(capsys, "export", arch.arch_id, "--to", "litgpt", "--root", lb.root)
    assert code == 2 and "pos_encoding='learned'" in err


def test_a_row_whose_weights_are_gone_is_one_line(tmp_path, capsys) -> None:
    lb = Leaderboard(tmp_path / "lb")
    lb.append([{"task": "charlm", "status": "ok", "weights": str(tmp_path / "gone.safetensors"), **LLAMA.to_dict()}])
    code, _, err = run(capsys, "export", LLAMA.arch_id, "--to", "hf", tmp_path / "x", "--root", lb.root)
    assert code == 2 and "gone.safetensors is gone; --no-weights exports the config" in err


def test_import_hf_writes_an_architecture_file(tmp_path, capsys) -> None:
    from tests.interop.test_hf import LLAMA_3_2_1B

    (tmp_path / "config.json").write_text(json.dumps(LLAMA_3_2_1B))
    code, out, err = run(capsys, "space", "import-hf", tmp_path / "config.json", "-o", tmp_path / "arch.yaml")
    assert code == 0, err
    assert "archbench: note: llama config imported without rope_parameters=" in err and err.count("\n") == 1
    arch = load_arch(tmp_path / "arch.yaml")
    assert arch.depth == 16 and arch.kv_heads == 8 and arch.max_seq_len == 131072 and arch.arch_id in out
    assert "# left out: rope_parameters=" in (tmp_path / "arch.yaml").read_text()
    code, out, _ = run(capsys, "space", "import-hf", tmp_path)  # a model directory; stdout
    assert code == 0 and yaml.safe_load(out)["arch"]["width"] == 2048


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"model_type": "bert", "hidden_size": 64}, "model_type 'bert' cannot be imported (supported: llama,"),
        ({"model_type": "llama", "hidden_act": "gelu"}, "hidden_act='gelu'"),
        (None, "config file not found"),
        ("{not json", "not a JSON config"),
    ],
)
def test_bad_import_hf_input_is_one_line_and_exit_2(tmp_path, capsys, config, message) -> None:
    path = tmp_path / "config.json"
    if config is not None:
        path.write_text(config if isinstance(config, str) else json.dumps(config))
    code, out, err = run(capsys, "space", "import-hf", path, "-o", tmp_path / "arch.yaml")
    assert code == 2 and message in err and err.strip().count("\n") == 0 and out == ""
    assert not (tmp_path / "arch.yaml").exists()


def test_strict_import_refuses_what_it_would_leave_out(tmp_path, capsys) -> None:
    from tests.interop.test_hf import LLAMA_3_2_1B

    (tmp_path / "config.json").write_text(json.dumps(LLAMA_3_2_1B))
    code, _, err = run(capsys, "space", "import-hf", tmp_path / "config.json", "--strict")
    assert code == 2 and "strict import refuses it" in err
