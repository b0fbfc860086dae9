"""Pretrained image encoders from local files (nothing is downloaded): CLIP through transformers,
and a TorchScript network called as FID's Inception-v3 is; both serve the vote and the Frechet
distance."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from dp_synth.evaluation.embeddings import EmbeddedReference
from dp_synth.modalities.image.encoders import ImageEncoder
from dp_synth.modalities.image.glyphs import discover_fonts
from dp_synth.modalities.image.modality import GlyphSimulator, ImageModality, images_of, parse_image_schema
from dp_synth.pe.schedule import VariationSchedule
from tests.conftest import PROJECT_ROOT
from tests.tiny_image_encoders import build_tiny_clip, build_tiny_inception

SCHEMA = parse_image_schema(json.loads((PROJECT_ROOT / "data/01_raw/digits/schema.json").read_text()))


@pytest.fixture(scope="module")
def glyphs() -> np.ndarray:
    simulator = GlyphSimulator(schema=SCHEMA, fonts=discover_fonts())
    population = simulator.random(list(SCHEMA.classes) * 3, np.random.default_rng(0)).assign(label="0")
    return images_of(population, SCHEMA)


def test_clip_gives_unit_norm_projected_image_features(tmp_path, no_network, glyphs) -> None:
    encoder = ImageEncoder(model=str(build_tiny_clip(tmp_path / "clip")), batch_size=7)
    assert encoder.kind == "transformers" and encoder.normalised
    features = encoder.encode(glyphs)
    assert features.shape == (30, 8) and np.allclose(np.linalg.norm(features, axis=1), 1.0, atol=1e-5)


def test_torchscript_inception_gives_raw_fid_features(tmp_path, glyphs) -> None:
    folder = build_tiny_inception(tmp_path / "inception")
    encoder = ImageEncoder(model=str(folder), batch_size=7)
    assert encoder.kind == "inception" and not encoder.normalised
    features = encoder.encode(glyphs)
    assert features.shape == (30, 12) and features.dtype == np.float32
    assert not np.allclose(np.linalg.norm(features, axis=1), 1.0)  # raw pool features, as FID uses them
    np.testing.assert_allclose(
        ImageEncoder(model=str(folder / "tiny-inception.pt")).encode(glyphs), features, atol=1e-5
    )


def test_the_encoder_serves_the_vote_and_the_frechet_distance(tmp_path, glyphs) -> None:
    encoder = ImageEncoder(model=str(build_tiny_inception(tmp_path / "inception")))
    simulator = GlyphSimulator(schema=SCHEMA, fonts=discover_fonts())
    modality = ImageModality(
        schema=SCHEMA, generator=simulator, schedule=VariationSchedule(0.5, 0.05, 1.0), encoder=encoder
    )
    population = modality.random_population(dict.fromkeys(SCHEMA.classes, 4), np.random.default_rng(1))
    assert modality.embed(population).shape == (40, 12)
    reference = modality.summarise_reference(population)
    assert (
        isinstance(reference, EmbeddedReference) and modality.quality(population, reference)["frechet_distance"] < 1e-6
    )


def test_paths_that_hold_no_encoder_are_refused(tmp_path) -> None:
    folder = build_tiny_inception(tmp_path / "two")
    shutil.copy(folder / "tiny-inception.pt", folder / "other.pt")
    for model in (tmp_path / "absent", folder, tmp_path):
        with pytest.raises(ValueError, match="neither a local transformers"):
            ImageEncoder(model=str(model))
    with pytest.raises(ValueError, match="batch_size"):
        ImageEncoder(model=str(folder / "other.pt"), batch_size=0)
