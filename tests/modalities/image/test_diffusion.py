"""DiffusionImageGenerator on tiny random diffusion pipelines loaded from disk (nothing is downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dp_synth.modalities.image.diffusion import DiffusionImageGenerator
from tests.tiny_diffusion import build_tiny_diffusion_model

STEPS = 4


@pytest.fixture(scope="module")
def conditional_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion_model(tmp_path_factory.mktemp("conditional"), classes=10, channels=1)


@pytest.fixture(scope="module")
def unconditional_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion_model(tmp_path_factory.mktemp("unconditional"), classes=None, channels=3)


@pytest.fixture(scope="module", params=["ddpm", "ddim"])
def scheduler_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_diffusion_model(tmp_path_factory.mktemp(request.param), classes=10, scheduler=request.param)


def test_random_gives_one_image_per_label_at_the_requested_size(conditional_dir: Path) -> None:
    labels = np.arange(7) % 10
    small_batches = DiffusionImageGenerator(
        conditional_dir, num_inference_steps=STEPS, batch_size=3, image_size=(12, 10), channels=3
    )
    images = small_batches.random(labels, seed=0)
    assert images.shape == (7, 12, 10, 3)
    assert images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    one_batch = DiffusionImageGenerator(
        conditional_dir, num_inference_steps=STEPS, batch_size=16, image_size=(12, 10), channels=3
    )
    np.testing.assert_allclose(one_batch.random(labels, seed=0), images, atol=1e-5)


def test_native_size_and_grayscale_output(unconditional_dir: Path) -> None:
    native = DiffusionImageGenerator(unconditional_dir, num_inference_steps=STEPS)
    assert native.random(np.zeros(2, dtype=int), seed=0).shape == (2, 8, 8, 3)
    gray = DiffusionImageGenerator(unconditional_dir, num_inference_steps=STEPS, channels=1)
    assert gray.random(np.zeros(2, dtype=int), seed=0).shape == (2, 8, 8, 1)
    assert native.random(np.zeros(0, dtype=int), seed=0).shape == (0, 8, 8, 3)


def test_seed_decides_the_images(scheduler_dir: Path) -> None:
    generator = DiffusionImageGenerator(scheduler_dir, num_inference_steps=STEPS)
    labels = np.array([0, 1, 2, 3])
    first = generator.random(labels, seed=1)
    np.testing.assert_array_equal(generator.random(labels, seed=1), first)
    assert not np.allclose(generator.random(labels, seed=2), first)
    varied = generator.vary(first, labels, strength=0.5, seed=3)
    np.testing.assert_array_equal(generator.vary(first, labels, strength=0.5, seed=3), varied)
    assert not np.allclose(generator.vary(first, labels, strength=0.5, seed=4), varied)


def test_small_strength_stays_closer_than_full_strength(scheduler_dir: Path) -> None:
    generator = DiffusionImageGenerator(scheduler_dir, num_inference_steps=STEPS)
    labels = np.arange(16) % 10
    images = generator.random(labels, seed=0)
    small = generator.vary(images, labels, strength=0.25, seed=1)
    full = generator.vary(images, labels, strength=1.0, seed=1)
    assert small.shape == full.shape == images.shape
    assert np.abs(small - images).mean() < np.abs(full - images).mean()


def test_class_conditional_model_uses_and_checks_labels(conditional_dir: Path) -> None:
    generator = DiffusionImageGenerator(conditional_dir, num_inference_steps=STEPS)
    assert generator.num_classes == 10
    assert not np.allclose(generator.random(np.array([0, 0]), seed=0), generator.random(np.array([5, 9]), seed=0))
    for labels in (np.array([0, 10]), np.array([-1, 3]), np.array([0.5, 1.0]), np.zeros((2, 1), dtype=int)):
        with pytest.raises(ValueError, match="labels"):
            generator.random(labels, seed=0)


def test_unconditional_model_ignores_labels(unconditional_dir: Path) -> None:
    generator = DiffusionImageGenerator(unconditional_dir, num_inference_steps=STEPS)
    assert generator.num_classes is None
    np.testing.assert_array_equal(
        generator.random(np.array([0, 1, 2]), seed=0), generator.random(np.array([7, 99, -3]), seed=0)
    )


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated:UserWarning")
def test_missing_model_raises_without_downloading(tmp_path: Path, no_network: None) -> None:
    for model in (tmp_path / "missing", "no-such-org/no-such-model"):
        with pytest.raises(ValueError, match="allow_download=True"):
            DiffusionImageGenerator(model)


def test_other_pipeline_kinds_are_refused(tmp_path: Path) -> None:
    index = {
        "_class_name": "LDMPipeline",
        "unet": ["diffusers", "UNet2DModel"],
        "scheduler": ["diffusers", "DDIMScheduler"],
        "vqvae": ["diffusers", "VQModel"],
    }
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="only a UNet2DModel"):
        DiffusionImageGenerator(tmp_path)


def test_vary_checks_strength_and_images(conditional_dir: Path) -> None:
    generator = DiffusionImageGenerator(conditional_dir, num_inference_steps=STEPS)
    labels = np.array([0, 1])
    images = np.full((2, 8, 8, 1), 0.5, dtype=np.float32)
    for strength in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="strength"):
            generator.vary(images, labels, strength=strength, seed=0)
    for bad in (images[:1], images[..., :0], np.full((2, 8, 8, 3), 0.5), images + 0.6, images - 1):
        with pytest.raises(ValueError, match="images"):
            generator.vary(bad, labels, strength=0.5, seed=0)


@pytest.mark.parametrize(
    "settings",
    [{"num_inference_steps": 0}, {"batch_size": 0}, {"image_size": (8, 0)}, {"channels": 2}, {"device": "tpu"}],
)
def test_bad_settings_raise(conditional_dir: Path, settings: dict) -> None:
    with pytest.raises(ValueError):
        DiffusionImageGenerator(conditional_dir, **settings)
