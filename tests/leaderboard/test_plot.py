"""Plots: a PNG scatter with the front for two objectives, a pair grid for three, an HTML page."""

from __future__ import annotations

import matplotlib.image as mpimg
import pytest

from archbench.errors import ConfigError


def test_png_two_objectives(filled, tmp_path) -> None:
    path = filled.plot(tmp_path / "f.png", ["val_loss", "latency_ms"], task="charlm")
    img = mpimg.imread(path)
    assert img.shape[0] > 500 and img.shape[1] > 700
    assert img[..., :3].std() > 0.05  # not blank


@pytest.mark.slow
def test_pair_grid_for_three_objectives_is_larger(filled, tmp_path) -> None:
    two = mpimg.imread(filled.plot(tmp_path / "two.png", ["val_loss", "latency_ms"], task="charlm"))
    three = mpimg.imread(filled.plot(tmp_path / "g.png", ["val_loss", "latency_ms", "val_acc:max"], task="charlm"))
    assert three.shape[0] > two.shape[0]  # a 3x3 grid of 2.8 in panels


def test_html_has_the_figure_and_the_front(filled, tmp_path) -> None:
    path = filled.plot(tmp_path / "f.html", "val_loss,latency_ms", task="charlm", hardware="NVIDIA*")
    text = path.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text
    front = filled.pareto("val_loss,latency_ms", task="charlm", hardware="NVIDIA*")
    assert f"Pareto front ({front.height} rows)" in text
    for arch_id in front["arch_id"].to_list():
        assert arch_id in text
    assert "cpu: AMD" not in text  # filtered out


def test_plot_refuses_mixed_tasks_and_empty(filled, tmp_path) -> None:
    with pytest.raises(ConfigError, match="several tasks"):
        filled.plot(tmp_path / "x.png")
    with pytest.raises(ConfigError, match="no rows with all of"):
        filled.plot(tmp_path / "x.png", task="charlm", status="failed")
