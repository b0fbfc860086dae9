"""The glyph simulator behind Sim-PE: parameters, their variation, fonts and rendering."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

from dp_synth.modalities.image.glyphs import (
    CONTINUOUS_COLUMNS,
    PARAMETER_COLUMNS,
    GlyphBounds,
    discover_fonts,
    perturb_parameters,
    random_parameters,
    render,
)

BOUNDS = GlyphBounds()


@pytest.fixture(scope="module")
def fonts() -> tuple[Path, ...]:
    return discover_fonts()


def _upright(count: int = 1, **overrides: float) -> pd.DataFrame:
    """Parameter rows of an upright, centred DejaVu Sans glyph (font 0 is DejaVuSans-Bold)."""
    row = {"font": 0, "size": 1.2, "rotation": 0.0, "stroke": 1.0, "aspect": 0.85, "offset_x": 0.0, "offset_y": 0.0}
    return pd.DataFrame([{**row, **overrides}] * count)


def _assert_within_bounds(parameters: pd.DataFrame, font_count: int) -> None:
    for name, (low, high) in BOUNDS.ranges().items():
        values = parameters[name].to_numpy()
        assert values.min() >= low and values.max() <= high, name
    assert parameters["font"].between(0, font_count - 1).all()


# Bounds


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"size": (1.3, 1.1)}, "size needs low <= high"),
        ({"rotation": (-200.0, 0.0)}, "rotation must lie within"),
        ({"stroke": (-1.0, 1.0)}, "stroke must be >= 0"),
        ({"size": (0.0, 1.0)}, "size must be > 0"),
        ({"aspect": (1.0, math.inf)}, "aspect must be finite"),
        ({"offset_x": (0.1,)}, "offset_x must be a pair"),
    ],
)
def test_bounds_reject_invalid_ranges(changes, message):
    with pytest.raises(ValueError, match=message):
        GlyphBounds(**changes)


def test_bounds_name_every_continuous_column():
    assert tuple(BOUNDS.ranges()) == CONTINUOUS_COLUMNS
    assert GlyphBounds(rotation=[-5, 5]).rotation == (-5.0, 5.0)


# Parameters


def test_random_parameters_are_deterministic_given_the_seed(fonts):
    first = random_parameters(50, BOUNDS, len(fonts), np.random.default_rng(3))
    again = random_parameters(50, BOUNDS, len(fonts), np.random.default_rng(3))
    other = random_parameters(50, BOUNDS, len(fonts), np.random.default_rng(4))
    assert list(first.columns) == list(PARAMETER_COLUMNS)
    assert first["font"].dtype == np.int64
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    varied = perturb_parameters(first, 0.3, BOUNDS, len(fonts), np.random.default_rng(5))
    pd.testing.assert_frame_equal(varied, perturb_parameters(first, 0.3, BOUNDS, len(fonts), np.random.default_rng(5)))
    assert not varied.equals(perturb_parameters(first, 0.3, BOUNDS, len(fonts), np.random.default_rng(6)))


def test_random_and_perturbed_parameters_stay_within_bounds(fonts):
    rng = np.random.default_rng(0)
    parameters = random_parameters(5000, BOUNDS, len(fonts), rng)
    _assert_within_bounds(parameters, len(fonts))
    for degree in (1.0, 0.5, 0.1, 1.0):
        parameters = perturb_parameters(parameters, degree, BOUNDS, len(fonts), rng)
        _assert_within_bounds(parameters, len(fonts))
    for name, (low, high) in BOUNDS.ranges().items():  # uniform draws cover the range
        margin = 0.05 * (high - low)
        assert parameters[name].min() < low + margin and parameters[name].max() > high - margin, name


def test_perturbation_grows_with_the_degree_and_keeps_other_columns(fonts):
    rng = np.random.default_rng(1)
    parameters = random_parameters(4000, BOUNDS, len(fonts), rng).assign(label="7")
    unchanged = perturb_parameters(parameters, 0.0, BOUNDS, len(fonts), rng)
    pd.testing.assert_frame_equal(unchanged, parameters)
    small = perturb_parameters(parameters, 0.05, BOUNDS, len(fonts), rng)
    large = perturb_parameters(parameters, 0.5, BOUNDS, len(fonts), rng)
    for name, (low, high) in BOUNDS.ranges().items():
        small_move = (small[name] - parameters[name]).abs().mean()
        large_move = (large[name] - parameters[name]).abs().mean()
        assert 0 < small_move <= 0.05 * (high - low)
        assert large_move > 4 * small_move, name
    redrawn = (large["font"] != parameters["font"]).mean()
    assert redrawn == pytest.approx(0.5 * (1 - 1 / len(fonts)), abs=0.03)
    assert (large["label"] == "7").all()


@pytest.mark.parametrize("degree", [-0.1, 1.5])
def test_perturbation_rejects_a_degree_outside_0_1(fonts, degree):
    parameters = random_parameters(3, BOUNDS, len(fonts), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"degree must lie in \[0, 1\]"):
        perturb_parameters(parameters, degree, BOUNDS, len(fonts), np.random.default_rng(0))


def test_parameters_survive_a_parquet_round_trip(fonts, tmp_path):
    parameters = random_parameters(20, BOUNDS, len(fonts), np.random.default_rng(0))
    parameters.to_parquet(tmp_path / "glyphs.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "glyphs.parquet"), parameters)


def test_discover_fonts_finds_the_dejavu_fonts_of_matplotlib(fonts):
    names = [font.name for font in fonts]
    assert "DejaVuSans.ttf" in names and "DejaVuSerif-Bold.ttf" in names and "DejaVuSansMono.ttf" in names
    assert names == sorted(names) and all(name.startswith("DejaVu") for name in names)
    assert not any("Display" in name for name in names)  # symbol subsets without digits
    assert all(font.is_file() for font in fonts)
    assert discover_fonts() == fonts


def test_discover_fonts_appends_fonts_of_named_folders(fonts, tmp_path):
    for name in ("b.TTF", "a.otf"):
        shutil.copy(fonts[0], tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a font")
    found = discover_fonts([tmp_path])
    assert found[: len(fonts)] == fonts
    assert [font.name for font in found[len(fonts) :]] == ["a.otf", "b.TTF"]


def test_discover_fonts_rejects_a_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        discover_fonts([tmp_path / "missing"])
    with pytest.raises(FileNotFoundError, match="holds no .ttf or .otf file"):
        discover_fonts([tmp_path])


# Rendering


def test_render_returns_images_in_0_1_with_some_ink(fonts):
    parameters = random_parameters(40, BOUNDS, len(fonts), np.random.default_rng(0))
    images = render([str(index % 10) for index in range(40)], parameters, fonts, (8, 8))
    assert images.shape == (40, 8, 8) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    ink = images.mean(axis=(1, 2))
    assert (ink > 0.05).all() and (ink < 0.8).all()
    wide = render(["4"], parameters.iloc[:1], fonts, (12, 20), supersample=2)
    assert wide.shape == (1, 12, 20)


def test_render_is_deterministic_given_the_seed(fonts):
    glyphs = [str(index % 10) for index in range(30)]

    def images(seed: int) -> np.ndarray:
        return render(glyphs, random_parameters(30, BOUNDS, len(fonts), np.random.default_rng(seed)), fonts, (8, 8))

    np.testing.assert_array_equal(images(0), images(0))
    assert not np.array_equal(images(0), images(1))


def test_render_responds_to_rotation_and_glyph(fonts):
    upright, rotated = render(["7", "7"], pd.concat([_upright(), _upright(rotation=20.0)]), fonts, (8, 8))
    assert np.abs(upright - rotated).sum() > 1.0
    one, eight = render(["1", "8"], _upright(2), fonts, (8, 8))
    assert eight.sum() > 1.3 * one.sum()


def test_render_rejects_inconsistent_inputs(fonts):
    with pytest.raises(ValueError, match="2 glyphs for 1 parameter rows"):
        render(["1", "2"], _upright(), fonts, (8, 8))
    with pytest.raises(ValueError, match="font indices"):
        render(["1"], _upright(font=len(fonts)), fonts, (8, 8))


def test_rendered_digits_teach_a_classifier_of_real_digits(fonts):
    """Train on 100 random renders per class, scaled to 0..16, test on load_digits.

    With the default bounds and this seed the accuracy is 0.60 (chance: 0.1). Newton-CG
    converges in about 15 iterations where lbfgs needs hundreds on these unscaled pixels."""
    labels = np.repeat(np.arange(10), 100)
    parameters = random_parameters(len(labels), BOUNDS, len(fonts), np.random.default_rng(0))
    images = render([str(label) for label in labels], parameters, fonts, (8, 8))
    model = LogisticRegression(C=0.01, solver="newton-cg", max_iter=200)
    model.fit(images.reshape(len(labels), -1) * 16, labels)
    digits = load_digits()
    accuracy = model.score(digits.data, digits.target)
    assert accuracy > 0.4, accuracy
