"""StableDiffusionImageGenerator and the text-to-image adapter on a tiny random Stable Diffusion
built from configs and loaded from disk through diffusers' real pipeline classes (nothing is
downloaded)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

from dp_synth.modalities.image import stable_diffusion
from dp_synth.modalities.image.modality import (
    PROMPT,
    ImageModality,
    TextToImageGenerator,
    class_prompts,
    images_of,
    parse_image_schema,
)
from dp_synth.modalities.image.stable_diffusion import StableDiffusionImageGenerator
from dp_synth.pe.schedule import VariationSchedule
from tests.conftest import PROJECT_ROOT
from tests.tiny_diffusion import build_tiny_stable_diffusion

STEPS = 3
DIGITS_SCHEMA = json.loads((PROJECT_ROOT / "data/01_raw/digits/schema.json").read_text())
PROMPTS = ["a photo of a cat", "a photo of a dog", "a drawing of the digit 7", "a red square"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_stable_diffusion(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def generator(model_dir: Path) -> StableDiffusionImageGenerator:
    return StableDiffusionImageGenerator(
        model_dir, image_size=(8, 8), channels=1, num_inference_steps=STEPS, batch_size=3
    )


def test_loads_the_text_to_image_pipeline_and_its_image_to_image_twin_on_the_cpu(generator) -> None:
    assert isinstance(generator._text_to_image, StableDiffusionPipeline)
    assert isinstance(generator._image_to_image, StableDiffusionImg2ImgPipeline)
    assert generator._image_to_image.unet is generator._text_to_image.unet  # from_pipe: loaded once
    assert generator.resolution == 16  # 8 x 8 latents, the VAE upsamples 2x
    assert generator.device.type == "cpu" and generator._text_to_image.unet.dtype == torch.float32


def test_random_is_seeded_batched_resized_and_follows_the_prompt(generator, model_dir) -> None:
    images = generator.random(PROMPTS, seed=0)
    assert images.shape == (4, 8, 8, 1) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(generator.random(PROMPTS, seed=0), images)
    assert not np.allclose(generator.random(PROMPTS, seed=1), images)
    assert not np.allclose(generator.random(PROMPTS[::-1], seed=0)[::-1], images)  # prompts matter
    one, two = (generator.random([f"a photo of the handwritten digit number {digit}"], seed=0) for digit in (1, 2))
    assert not np.allclose(one, two)  # so does a prompt's last word (nothing is cut off)
    one_batch = StableDiffusionImageGenerator(
        model_dir, image_size=(8, 8), channels=1, num_inference_steps=STEPS, batch_size=8
    )
    np.testing.assert_allclose(one_batch.random(PROMPTS, seed=0), images, atol=1e-4)
    rgb = StableDiffusionImageGenerator(model_dir, image_size=(6, 10), channels=3, num_inference_steps=1)
    assert rgb.random(PROMPTS[:2], seed=0).shape == (2, 6, 10, 3)


def test_variation_is_image_to_image_at_the_strength(generator) -> None:
    images = generator.random(PROMPTS, seed=0)
    varied = generator.vary(images, PROMPTS, strength=0.5, seed=3)
    assert varied.shape == images.shape and varied.min() >= 0 and varied.max() <= 1
    np.testing.assert_array_equal(generator.vary(images, PROMPTS, strength=0.5, seed=3), varied)
    assert not np.allclose(generator.vary(images, PROMPTS, strength=0.5, seed=4), varied)
    tiny = generator.vary(images, PROMPTS, strength=0.01, seed=3)  # below one step's share: one step
    assert tiny.shape == images.shape
    for strength in (0.0, 1.5):
        with pytest.raises(ValueError, match="strength"):
            generator.vary(images, PROMPTS, strength=strength, seed=0)
    with pytest.raises(ValueError, match="images"):
        generator.vary(images[:2], PROMPTS, strength=0.5, seed=0)


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated:UserWarning")
def test_nothing_is_downloaded_unless_allowed(tmp_path: Path, no_network: None) -> None:
    for model in (tmp_path / "missing", "no-such-org/no-such-model"):
        with pytest.raises(ValueError, match="allow_download: true"):
            StableDiffusionImageGenerator(model, image_size=(8, 8), channels=1)


def test_a_pipeline_without_an_image_to_image_twin_is_refused(model_dir, monkeypatch) -> None:
    def no_twin(pipeline: object) -> None:
        raise ValueError("AutoPipeline can't find a pipeline linked to it")

    monkeypatch.setattr(stable_diffusion, "AutoPipelineForImage2Image", SimpleNamespace(from_pipe=no_twin))
    with pytest.raises(ValueError, match="StableDiffusionPipeline, for which diffusers has no image-to-image"):
        StableDiffusionImageGenerator(model_dir, image_size=(8, 8), channels=1)


def test_cuda_loads_in_float16_with_attention_slicing_only_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    class FakePipeline:
        def to(self, device: torch.device) -> None:
            calls.append(("to", device.type))

        def enable_attention_slicing(self) -> None:
            calls.append(("attention_slicing",))

    def from_pretrained(model: str, **options: object) -> FakePipeline:
        calls.append(("load", options["dtype"], options["local_files_only"]))
        return FakePipeline()

    monkeypatch.setattr(stable_diffusion, "AutoPipelineForText2Image", SimpleNamespace(from_pretrained=from_pretrained))
    stable_diffusion._load_text_to_image("model", False, torch.device("cuda"), True)
    assert calls == [("load", torch.float16, True), ("to", "cuda"), ("attention_slicing",)]
    calls.clear()
    stable_diffusion._load_text_to_image("model", False, torch.device("cuda"), False)
    assert calls == [("load", torch.float16, True), ("to", "cuda")]
    calls.clear()
    stable_diffusion._load_text_to_image("model", True, torch.device("cpu"), True)
    assert calls == [("load", torch.float32, False), ("to", "cpu")]


def test_prompts_come_from_public_fields_only() -> None:
    schema = parse_image_schema({**DIGITS_SCHEMA, "class_descriptions": {"7": "a handwritten seven"}})
    prompts = class_prompts(schema, ["a photo of {description}", "{label}"], {"1": ["the digit {label}"]}, [])
    assert prompts["7"] == ("a photo of a handwritten seven", "7") and prompts["0"] == ("a photo of 0", "0")
    assert prompts["1"] == ("the digit 1",)
    styled = class_prompts(schema, ["{label}"], {}, ["ink", "pencil"])
    assert styled["3"] == ("3, ink", "3, pencil")
    with pytest.raises(ValueError, match="undeclared classes"):
        class_prompts(schema, ["{label}"], {"cat": ["x"]}, [])
    with pytest.raises(ValueError, match="uses 'name'"):
        class_prompts(schema, ["{name}"], {}, [])
    with pytest.raises(ValueError, match="no prompt template"):
        class_prompts(schema, ["{label}"], {"2": []}, [])


def test_the_text_to_image_generator_serves_the_modality(generator, tmp_path) -> None:
    schema = parse_image_schema(DIGITS_SCHEMA)
    prompts = class_prompts(schema, ["a photo of {label}", "a drawing of {label}"], {}, [])
    modality = ImageModality(
        schema=schema,
        generator=TextToImageGenerator(schema=schema, model=generator, prompts=prompts),
        schedule=VariationSchedule(r0=0.5, rf=0.05, gamma=1.0),
    )
    assert modality.generator.description == "text-to-image model on cpu (3 steps, guidance 7.5, drawn at 16x16)"
    population = modality.random_population({"0": 2, "7": 3}, np.random.default_rng(0))
    assert population["label"].tolist() == ["0", "0", "7", "7", "7"]
    assert all(prompt in prompts[label] for label, prompt in zip(population["label"], population[PROMPT], strict=True))
    varied = modality.vary(population, 9, 10, np.random.default_rng(1))
    assert varied[PROMPT].tolist() == population[PROMPT].tolist()  # the variation keeps the prompt
    assert not np.array_equal(images_of(varied, schema), images_of(population, schema))
    population.to_parquet(tmp_path / "population.parquet")  # what the catalog saves for a resume
    assert pd.read_parquet(tmp_path / "population.parquet")[PROMPT].tolist() == population[PROMPT].tolist()
