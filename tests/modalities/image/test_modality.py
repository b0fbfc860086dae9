"""Image modality: schema and checks, image sets, the simulator and diffusion generators behind
the modality, lookahead and its sensitivity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dp_synth.datasets import DigitsDataset, ImageFolderDataset
from dp_synth.modalities.image.diffusion import DiffusionImageGenerator
from dp_synth.modalities.image.encoders import ImageEncoder
from dp_synth.modalities.image.glyphs import GlyphBounds, discover_fonts
from dp_synth.modalities.image.modality import (
    LOOKAHEAD,
    DiffusionGenerator,
    GlyphSimulator,
    ImageModality,
    check_images,
    images_of,
    parse_image_schema,
    pixel_embedding,
)
from dp_synth.pe import histogram as dp_hist
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.schema import SchemaError
from tests.conftest import PROJECT_ROOT
from tests.tiny_diffusion import build_tiny_diffusion_model
from tests.tiny_models import build_tiny_image_encoder

DIGITS_SCHEMA = json.loads((PROJECT_ROOT / "data/01_raw/digits/schema.json").read_text())
SCHEDULE = VariationSchedule(r0=0.5, rf=0.05, gamma=1.0)


@pytest.fixture(scope="module")
def schema():
    return parse_image_schema(DIGITS_SCHEMA)


@pytest.fixture(scope="module")
def simulator(schema):
    return GlyphSimulator(schema=schema, fonts=discover_fonts(), bounds=GlyphBounds())


def test_digits_split_is_fixed_disjoint_and_fits_the_public_schema(schema):
    train, test = DigitsDataset("train").load(), DigitsDataset("test").load()
    assert len(train) == schema.public_row_count == 1257 and len(test) == 540
    checked = check_images(train, schema)
    assert set(checked["label"]) == set(schema.classes)
    images = images_of(checked, schema)
    assert images.shape == (1257, 8, 8, 1) and images.min() == 0.0 and images.max() == 1.0
    assert DigitsDataset("train").load()["image"].map(bytes).equals(train["image"].map(bytes))  # same split each time
    train_bytes = set(train["image"].map(bytes))
    assert sum(image in train_bytes for image in test["image"].map(bytes)) <= 2  # the data has few duplicates


def test_an_image_folder_loads_one_class_per_subfolder_resized(tmp_path):
    for label, value in (("cat", 255), ("dog", 0)):
        (tmp_path / label).mkdir()
        Image.new("RGB", (16, 12), (value, value, value)).save(tmp_path / label / "a.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    table = ImageFolderDataset(str(tmp_path), image_size=[4, 4], channels=1).load()
    assert table["label"].tolist() == ["cat", "dog"]
    assert [image.shape for image in table["image"]] == [(16,), (16,)]
    assert table["image"][0].min() == pytest.approx(1.0) and table["image"][1].max() == 0.0


def _with_first(table: pd.DataFrame, column: str, value: object) -> pd.DataFrame:
    changed = table.copy()
    changed[column] = changed[column].astype(object)
    changed.at[0, column] = value
    return changed


@pytest.mark.parametrize(
    ("change", "message", "kept"),
    [
        (
            lambda table: _with_first(table, "label", "A"),
            "1 labels outside the declared classes",
            {"clamp": -1, "drop": -1},
        ),
        (
            lambda table: _with_first(table, "image", np.zeros(16, dtype=np.float32)),
            "1 images of another size than 8x8x1",
            {"clamp": -1, "drop": -1},
        ),
        (
            lambda table: _with_first(table, "image", np.full(64, 2.0, dtype=np.float32)),
            "1 images with pixels outside [0, 1]",
            {"clamp": 0, "drop": -1},
        ),
        (lambda table: table.drop(columns="image"), "columns ['image'] are missing", None),
    ],
)
def test_images_that_do_not_fit_the_schema_are_refused_clamped_or_dropped(schema, change, message, kept):
    train = DigitsDataset("train").load()
    with pytest.raises(SchemaError) as error:
        check_images(change(train), schema, on_invalid="stop")
    assert message in str(error.value)
    for on_invalid, difference in (kept or {}).items():
        fitted = check_images(change(train), schema, on_invalid=on_invalid)
        assert len(fitted) == len(train) + difference
        assert images_of(fitted, schema).max() <= 1.0
    # A class with no rows is no error: the DP class count says so.
    assert len(check_images(train[train["label"] != "3"], schema)) == int((train["label"] != "3").sum())


def test_schema_errors_name_the_entry():
    with pytest.raises(SchemaError, match="'image_size' must be"):
        parse_image_schema({**DIGITS_SCHEMA, "image_size": [8]})
    with pytest.raises(SchemaError, match="'channels' must be 1 or 3"):
        parse_image_schema({**DIGITS_SCHEMA, "channels": 2})


def test_simulator_population_is_reproducible_labelled_and_varies_less_late(schema, simulator):
    modality = ImageModality(schema=schema, generator=simulator, schedule=SCHEDULE)
    sizes = dict.fromkeys(schema.classes, 3)
    first = modality.random_population(sizes, np.random.default_rng(4))
    again = modality.random_population(sizes, np.random.default_rng(4))
    assert first.drop(columns="image").equals(again.drop(columns="image"))
    assert np.array_equal(images_of(first, schema), images_of(again, schema))
    assert first["label"].tolist() == [label for label in schema.classes for _ in range(3)]
    early = modality.vary(first, 1, 10, np.random.default_rng(5))
    late = modality.vary(first, 10, 10, np.random.default_rng(5))
    assert early["label"].tolist() == first["label"].tolist()
    move = lambda varied: np.abs(varied["rotation"] - first["rotation"]).mean()  # noqa: E731
    assert move(late) < move(early)


def test_lookahead_embeds_the_mean_of_l_variations_and_keeps_sensitivity_one(schema, simulator):
    modality = ImageModality(schema=schema, generator=simulator, schedule=SCHEDULE, lookahead=3)
    population = modality.random_population(dict.fromkeys(schema.classes, 5), np.random.default_rng(0))
    assert LOOKAHEAD in population.columns
    embeddings = modality.embed(population)
    assert embeddings.shape == (50, 64)
    assert not np.allclose(embeddings, modality.pixels(population))  # the mean of variations, not the image
    varied = modality.vary(population, 2, 5, np.random.default_rng(1))
    assert LOOKAHEAD in varied.columns and len(varied) == 50

    private = check_images(DigitsDataset("train").load(), schema)
    private_embeddings, labels = modality.embed(private), private["label"].to_numpy()
    votes = dp_hist.class_conditional_votes(private_embeddings, labels, embeddings, population["label"].to_numpy(), 1)
    assert votes.sum() == pytest.approx(len(private))  # one vote per private image
    for removed in (0, 17, 400):
        keep = np.arange(len(private)) != removed
        fewer = dp_hist.class_conditional_votes(
            private_embeddings[keep], labels[keep], embeddings, population["label"].to_numpy(), 1
        )
        assert np.linalg.norm(votes - fewer) == pytest.approx(1.0)


def test_pixel_embedding_pools_blocks():
    images = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    assert pixel_embedding(images, 2).tolist() == [[2.5, 4.5, 10.5, 12.5]]
    assert pixel_embedding(images, 1).shape == (1, 16)


def test_the_diffusion_generator_serves_the_modality(schema, tmp_path):
    model = DiffusionImageGenerator(
        build_tiny_diffusion_model(tmp_path / "unet", classes=10), num_inference_steps=2, image_size=(8, 8), channels=1
    )
    modality = ImageModality(
        schema=schema, generator=DiffusionGenerator(schema=schema, model=model), schedule=SCHEDULE, lookahead=2
    )
    population = modality.random_population({"0": 2, "7": 3}, np.random.default_rng(0))
    assert population["label"].tolist() == ["0", "0", "7", "7", "7"]
    images = images_of(population, schema)
    assert images.shape == (5, 8, 8, 1) and images.min() >= 0.0 and images.max() <= 1.0
    varied = modality.vary(population, 9, 10, np.random.default_rng(1))  # a small strength: at least one step
    assert varied["label"].tolist() == population["label"].tolist() and modality.embed(varied).shape == (5, 64)
    assert not np.array_equal(images_of(varied, schema), images)
    population.to_parquet(tmp_path / "population.parquet")  # what the catalog saves for a resume
    assert np.array_equal(images_of(pd.read_parquet(tmp_path / "population.parquet"), schema), images)


def test_a_local_pretrained_encoder_embeds_offline_and_serves_lookahead(schema, simulator, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoder = ImageEncoder(model=str(build_tiny_image_encoder(tmp_path / "vit")), batch_size=7)
    modality = ImageModality(schema=schema, generator=simulator, schedule=SCHEDULE, lookahead=2, encoder=encoder)
    population = modality.random_population(dict.fromkeys(schema.classes, 2), np.random.default_rng(0))
    own = modality.features(population)
    assert own.shape == (20, 32) and np.allclose(np.linalg.norm(own, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(own, encoder.encode(images_of(population, schema)))  # batching changes nothing
    assert modality.embed(population).shape == (20, 32)  # the lookahead mean, in the encoder's space
    with pytest.raises(ValueError, match="neither a local transformers"):
        ImageEncoder(model=str(tmp_path / "absent"))
