"""The retrieval simulator (Sim-PE): a public image folder as the generator, labelled or not, with
r(t)-scaled neighbourhoods; the lazily read public folder; the glyph demo folder."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError
from PIL import Image

from dp_synth.datasets import PublicImageFolderDataset
from dp_synth.modalities.image.modality import ImageModality, embed_images, images_of, parse_image_schema
from dp_synth.modalities.image.public_glyphs import write_glyph_folder
from dp_synth.modalities.image.retrieval import PUBLIC_INDEX, RetrievalSimulator
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.schema import SchemaError
from tests.conftest import PROJECT_ROOT

SCHEMA = parse_image_schema({"classes": {"dark": "d", "light": "l"}, "image_size": [2, 2], "channels": 1})
DIGITS = parse_image_schema(json.loads((PROJECT_ROOT / "data/01_raw/digits/schema.json").read_text()))
EMBED = partial(embed_images, pool=1, encoder=None)


def ramp(count: int, low: float, high: float) -> np.ndarray:
    """``count`` uniform 2x2 images whose brightness climbs from ``low`` to ``high``."""
    return np.repeat(np.linspace(low, high, count, dtype=np.float32), 4).reshape(count, 2, 2, 1)


@pytest.fixture
def labelled() -> RetrievalSimulator:
    images = np.concatenate([ramp(20, 0.0, 0.4), ramp(20, 0.6, 1.0)])
    return RetrievalSimulator(
        schema=SCHEMA, images=images, labels=np.array(["dark"] * 20 + ["light"] * 20), embed=EMBED
    )


def test_random_draws_public_images_of_the_class(labelled) -> None:
    drawn = labelled.random(["dark"] * 30 + ["light"] * 30, np.random.default_rng(0))
    indices = drawn[PUBLIC_INDEX].to_numpy()
    assert (indices[:30] < 20).all() and (indices[30:] >= 20).all()
    assert np.array_equal(images_of(drawn.assign(label="x"), SCHEMA), labelled.images[indices])
    assert labelled.description == "retrieval simulator (40 labelled public images)"


def test_variation_draws_from_the_r_scaled_neighbourhood(labelled) -> None:
    survivors = pd.DataFrame({"label": ["dark"] * 200, PUBLIC_INDEX: 10})
    wide = labelled.vary(survivors, 0.55, np.random.default_rng(0))[PUBLIC_INDEX]  # the 11 nearest of 20
    assert set(wide) == set(range(5, 16))
    narrow = labelled.vary(survivors, 0.15, np.random.default_rng(0))[PUBLIC_INDEX]  # the 3 nearest
    assert set(narrow) == {9, 10, 11}
    assert set(labelled.vary(survivors, 0.001, np.random.default_rng(0))[PUBLIC_INDEX]) == {10}  # itself
    assert set(labelled.vary(survivors, 1.0, np.random.default_rng(0))[PUBLIC_INDEX]) == set(range(20))
    again = labelled.vary(survivors, 0.55, np.random.default_rng(0))[PUBLIC_INDEX]
    assert again.tolist() == wide.tolist()  # seeded


def test_an_unlabelled_set_serves_every_class_and_the_vote_picks(labelled) -> None:
    unlabelled = RetrievalSimulator(schema=SCHEMA, images=labelled.images, labels=None, embed=EMBED)
    drawn = unlabelled.random(["dark"] * 200, np.random.default_rng(0))[PUBLIC_INDEX]
    assert drawn.min() < 20 <= drawn.max()  # any public image, whatever the class
    edge = pd.DataFrame({"label": ["light"] * 100, PUBLIC_INDEX: 19})
    assert set(unlabelled.vary(edge, 0.05, np.random.default_rng(0))[PUBLIC_INDEX]) == {18, 19}  # 2 of 40


def test_public_labels_must_be_the_declared_classes(labelled) -> None:
    with pytest.raises(SchemaError, match=r"subfolders \['cat'\] .* declared classes \['light'\]"):
        RetrievalSimulator(schema=SCHEMA, images=labelled.images, labels=np.array(["dark", "cat"] * 20), embed=EMBED)
    with pytest.raises(SchemaError, match="expected"):
        RetrievalSimulator(schema=SCHEMA, images=np.zeros((3, 4, 4, 1)), labels=None, embed=EMBED)


def test_the_public_folder_is_read_only_when_needed(tmp_path) -> None:
    missing = PublicImageFolderDataset(str(tmp_path / "absent")).load()  # a run with another generator
    with pytest.raises(DatasetError, match="make image-public-glyphs"):
        missing.load((2, 2), 1)
    (tmp_path / "flat" / "deeper").mkdir(parents=True)
    Image.new("L", (4, 4), 255).save(tmp_path / "flat" / "a.png")
    Image.new("L", (4, 4), 0).save(tmp_path / "flat" / "deeper" / "b.png")
    table = PublicImageFolderDataset(str(tmp_path / "flat"), labelled=False).load().load((2, 2), 1)
    assert list(table.columns) == ["image"] and [image.tolist() for image in table["image"]] == [[1.0] * 4, [0.0] * 4]


def test_the_glyph_demo_folder_serves_the_retrieval_simulator(tmp_path) -> None:
    folder = tmp_path / "public_glyphs"
    assert write_glyph_folder(DIGITS, folder, per_class=6, seed=0) == 60
    with pytest.raises(FileExistsError):
        write_glyph_folder(DIGITS, folder, per_class=6, seed=0)
    public = PublicImageFolderDataset(str(folder)).load().load((8, 8), 1)
    assert sorted(set(public["label"])) == list(DIGITS.classes) and len(public) == 60
    simulator = RetrievalSimulator(
        schema=DIGITS, images=images_of(public, DIGITS), labels=public["label"].to_numpy(), embed=EMBED
    )
    modality = ImageModality(
        schema=DIGITS, generator=simulator, schedule=VariationSchedule(0.5, 0.05, 1.0), lookahead=2
    )
    population = modality.random_population(dict.fromkeys(DIGITS.classes, 3), np.random.default_rng(0))
    varied = modality.vary(population, 2, 10, np.random.default_rng(1))
    assert (public["label"].to_numpy()[varied[PUBLIC_INDEX]] == varied["label"]).all()
    assert modality.embed(varied).shape == (30, 64)  # the lookahead mean of two retrievals
