"""The `archbench` command: space show / sample / build, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from archbench import Architecture, load_arch, save_config
from archbench.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_space_show_default_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "space", "show")
    assert code == 0 and "lm_tiny" in out and "903,168" in out
    code, out, _ = run(capsys, "space", "show", "space=lm_small")
    assert code == 0 and "lm_small" in out and "1,084,216,320" in out


def test_space_show_with_hydra_overrides_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "space", "show", "space.fields.depth=[1]", "space.fields.unique_layers=[1]")
    assert code == 0 and "depth          │ 1 (fixed)" in out
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"fields": {"depth": [1, 2], "width": 64, "heads": [2, 4]}}))
    code, out, _ = run(capsys, "space", "show", f"space={path}")
    assert code == 0 and "space mine" in out and "distinct valid architectures: 4" in out.replace("\n", " ")


def test_space_sample_is_reproducible_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "space", "sample", "--n", "4", "--seed", "11")
    assert code == 0
    docs = yaml.safe_load(out)
    assert len(docs) == 4
    for doc in docs:
        arch = _arch(doc)
        assert arch.arch_id == doc["arch_id"] and arch.quant != "fp8"
    again = tmp_path / "s.yaml"
    code, out, _ = run(capsys, "space", "sample", "--n", "4", "--seed", "11", "-o", str(again))
    assert code == 0 and "wrote 4 architectures" in out
    assert [d["arch_id"] for d in yaml.safe_load(again.read_text())] == [a.arch_id for a in map(_arch, docs)]
    code, out, _ = run(capsys, "space", "sample", "--n", "4", "--seed", "12")
    assert [d["arch_id"] for d in yaml.safe_load(out)] != [a.arch_id for a in map(_arch, docs)]


def _arch(doc: dict) -> Architecture:
    return Architecture.from_dict({k: v for k, v in doc.items() if k != "arch_id"})


@pytest.mark.slow
def test_space_sample_keeps_fp8_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "space", "sample", "space=lm_small", "--n", "300", "--any-device")
    assert code == 0 and any(d["quant"] == "fp8" for d in yaml.safe_load(out))
    code, out, _ = run(capsys, "space", "sample", "space=lm_small", "--n", "300")
    assert code == 0 and "left out on this cpu: fp8" in out
    assert all(d["quant"] != "fp8" for d in yaml.safe_load(out))


def test_build_prints_parameter_count(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gpt2 = Architecture(depth=12, width=768, heads=12, vocab_size=50257, max_seq_len=1024)
    path = save_config(gpt2, tmp_path / "gpt2.yaml")
    code, out, _ = run(capsys, "build", str(path))
    assert code == 0 and "params=124,439,808" in out and gpt2.arch_id in out
    assert load_arch(path) == gpt2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["space", "show", "space=nope"], "Could not find 'space/nope' (built-in spaces: lm_hybrid, lm_small, lm_tiny"),
        (["space", "show", "space=missing/file.yaml"], "search space file not found: missing/file.yaml"),
        (["space", "show", "space.fields.dpth=[2]"], "Could not override 'space.fields.dpth'"),
        (["space", "show", "+space.fields.dpth=[2]"], "unknown field 'dpth' (did you mean 'depth'?)"),
        (["space", "show", "space.fields.heads=[5]"], "no combination of depth"),
        (["space", "show", "space.fields.dpth=[2]"], "To append to your config use +space.fields.dpth=[2]"),
        (["space", "show", "lm_small"], "expected key=value, got 'lm_small'"),
        (["space", "sample", "space=lm_tiny", "space.fields.depth=[1]", "space.fields.width=[32]",
          "space.fields.heads=[2]", "--n", "100000"], "only"),
        (["build", "no_such.yaml"], "architecture file not found: no_such.yaml"),
    ],
)  # fmt: skip
def test_user_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2
    assert err.startswith("archbench: error: ") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_argparse_errors_exit_2_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["space", "sample", "--n", "zero"])
    assert info.value.code == 2
    assert "'zero' is not an integer" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("archbench")
    result = subprocess.run([str(exe), "space", "sample", "--n", "1"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert len(yaml.safe_load(result.stdout)) == 1
    bad = subprocess.run([str(exe), "space", "show", "space=nope"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
