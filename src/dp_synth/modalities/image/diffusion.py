"""A diffusion model behind the image modality's random and variation APIs.

Private Evolution needs two things from a public image generator: images from pure noise (the
random API) and images near given ones (the variation API). ``DiffusionImageGenerator`` gives both
from one sampling loop over a diffusers ``UNet2DModel`` and its scheduler: the random API denoises
Gaussian noise over all the scheduler's timesteps; the variation API (SDEdit) noises each image to
an intermediate timestep chosen by a strength in (0, 1] and denoises from there.

Images cross this module's boundary as numpy float32 arrays of shape (n, H, W, C) with values in
[0, 1]; labels are class indices, passed to a class-conditional UNet as ``class_labels``. The
module's helpers (device, per-image seeding, batching with progress, resizing, checks) also serve
``stable_diffusion``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline, UNet2DModel
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor
from tqdm import tqdm

logger = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]

# ITU-R BT.601 luma weights, for RGB to grayscale.
_LUMA = (0.299, 0.587, 0.114)


class DiffusionImageGenerator:
    """Random and variation APIs over a saved diffusers ``UNet2DModel`` pipeline (DDPM or DDIM).

    The pipeline directory must hold exactly a ``unet`` (a ``UNet2DModel`` of 1 or 3 channels) and a
    ``scheduler``, as ``DDPMPipeline(...).save_pretrained`` or ``DDIMPipeline(...).save_pretrained``
    write it. The UNet is class-conditional when it has ``num_class_embeds``.

    Args:
        model: A local pipeline directory, or a Hugging Face hub id when ``allow_download``.
        allow_download: Whether the model may be fetched from the hub; otherwise only local files
            (a directory or the local hub cache) are read.
        device: ``"cuda"``, ``"cpu"``, or ``"auto"`` (CUDA when available).
        num_inference_steps: Denoising steps of a full sample (>= 1); a variation of strength ``s``
            runs ``ceil(s * num_inference_steps)`` of them.
        batch_size: Images per forward pass (>= 1).
        image_size: (height, width) of the images in and out; ``None`` for the model's own size.
            Images are resized (bilinear, antialiased) between the two.
        channels: Channels of the images in and out, 1 (grayscale) or 3 (RGB); ``None`` for the
            model's own.

    Attributes:
        num_classes: Number of classes of a class-conditional model; ``None`` if unconditional
            (labels then only count the images).
    """

    def __init__(
        self,
        model: str | Path,
        *,
        allow_download: bool = False,
        device: Device = "auto",
        num_inference_steps: int = 50,
        batch_size: int = 16,
        image_size: tuple[int, int] | None = None,
        channels: int | None = None,
    ) -> None:
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be >= 1, got {num_inference_steps}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if image_size is not None and (len(image_size) != 2 or min(image_size) < 1):
            raise ValueError(f"image_size must be (height, width) of positive ints, got {image_size}")
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.device = resolve_device(device)
        self.num_inference_steps = num_inference_steps
        self.batch_size = batch_size
        self._unet, self._scheduler = _load_unet_pipeline(str(model), allow_download)
        self._unet.to(self.device).eval()
        config = self._unet.config
        self.num_classes: int | None = config.num_class_embeds
        self.model_size = _as_pair(config.sample_size)
        self.model_channels: int = config.in_channels
        self.image_size: tuple[int, int] = tuple(image_size) if image_size is not None else self.model_size
        self.channels: int = channels if channels is not None else self.model_channels

    def random(self, labels: np.ndarray, seed: int) -> np.ndarray:
        """Random API: one image per label, denoised from pure noise.

        Args:
            labels: Class indices, shape (n,).
            seed: Seed of the noise; image ``i`` depends on ``seed`` and ``i``, not on the batch size
                (up to float rounding).

        Returns:
            Images of shape (n, H, W, C), float32 in [0, 1].
        """
        return self._generate(None, self._check_labels(labels), 1.0, seed, "random")

    def vary(self, images: np.ndarray, labels: np.ndarray, strength: float, seed: int) -> np.ndarray:
        """Variation API (SDEdit): noise each image to the level set by ``strength``, then denoise it.

        Args:
            images: Images of shape (n, H, W, C), values in [0, 1], with this generator's size and channels.
            labels: Class indices of the images, shape (n,).
            strength: In (0, 1]: the fraction of the denoising steps rerun; near 0 stays close to
                the image, 1 noises it to the first timestep (almost a fresh sample).
            seed: Seed of the noise.

        Returns:
            The varied images, same shape, float32 in [0, 1].
        """
        check_strength(strength)
        labels = self._check_labels(labels)
        check_image_batch(images, len(labels), self.image_size, self.channels)
        return self._generate(images, labels, strength, seed, "variation")

    def _generate(
        self, images: np.ndarray | None, labels: np.ndarray, strength: float, seed: int, what: str
    ) -> np.ndarray:
        """Denoise in batches: from noise when ``images`` is None, else from the noised images."""
        generators = seeded_generators(seed, len(labels), self.device)

        def batch(begin: int, end: int) -> np.ndarray:
            start = None if images is None else self._to_model(images[begin:end])
            samples = self._denoise(start, labels[begin:end], strength, generators[begin:end])
            return to_images((samples.float() + 1) / 2, self.image_size, self.channels)

        shape = (*self.image_size, self.channels)
        return generate_in_batches(len(labels), self.batch_size, shape, batch, f"Diffusion {what}")

    @torch.inference_mode()
    def _denoise(
        self, start: torch.Tensor | None, labels: np.ndarray, strength: float, generators: list[torch.Generator]
    ) -> torch.Tensor:
        """The sampling loop shared by both APIs; returns model-space samples in [-1, 1].

        ``start`` (model space, [-1, 1]) is noised to the first of the last ``ceil(strength * steps)``
        timesteps; without it, the loop starts from pure noise over all the timesteps.
        """
        scheduler = self._scheduler
        scheduler.set_timesteps(self.num_inference_steps, device=self.device)
        # Rounded first so that, say, 0.3 * 10 = 3.0000000000000004 runs 3 steps, not 4.
        skipped = self.num_inference_steps - math.ceil(round(strength * self.num_inference_steps, 9))
        timesteps = scheduler.timesteps[skipped * scheduler.order :]
        shape = (len(labels), self.model_channels, *self.model_size)
        noise = randn_tensor(shape, generator=generators, device=self.device, dtype=self._unet.dtype)
        if start is None:
            sample = noise * scheduler.init_noise_sigma
        else:
            sample = scheduler.add_noise(start, noise, timesteps[:1].repeat(len(labels)))
        class_labels = None
        if self.num_classes is not None:
            class_labels = torch.as_tensor(labels, dtype=torch.long, device=self.device)
        for t in timesteps:
            model_input = scheduler.scale_model_input(sample, t)
            prediction = self._unet(model_input, t, class_labels=class_labels).sample
            sample = scheduler.step(prediction, t, sample, generator=generators).prev_sample
        return sample.clamp(-1, 1)

    def _to_model(self, images: np.ndarray) -> torch.Tensor:
        """(n, H, W, C) images in [0, 1] to the model's (n, C', H', W') space in [-1, 1]."""
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        tensor = convert_channels(tensor.permute(0, 3, 1, 2), self.model_channels)
        return resize(tensor, self.model_size).to(self._unet.dtype) * 2 - 1

    def _check_labels(self, labels: np.ndarray) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)):
            raise ValueError(
                f"labels must be a 1-D array of class indices, got shape {labels.shape} dtype {labels.dtype}"
            )
        if self.num_classes is not None and labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(
                f"labels must be in [0, {self.num_classes}) for this class-conditional model, "
                f"got values in [{labels.min()}, {labels.max()}]"
            )
        return labels


def check_strength(strength: float) -> None:
    """Raise ValueError unless a variation's ``strength`` is in (0, 1]."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")


def check_image_batch(images: np.ndarray, count: int, size: tuple[int, int], channels: int) -> None:
    """Raise ValueError unless ``images`` is ``count`` images of ``size`` and ``channels`` in [0, 1]."""
    expected = (count, *size, channels)
    if not isinstance(images, np.ndarray) or images.shape != expected:
        shape = getattr(images, "shape", type(images).__name__)
        raise ValueError(f"images must be an array of shape {expected} (one per label), got {shape}")
    if images.size and not (np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1):
        raise ValueError("images must hold finite values in [0, 1]")


def resolve_device(device: Device) -> torch.device:
    """``cuda`` or ``cpu``; ``auto`` picks CUDA when it is available.

    Raises:
        ValueError: for another name, or ``cuda`` without CUDA.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def _load_unet_pipeline(model: str, allow_download: bool) -> tuple[UNet2DModel, SchedulerMixin]:
    """The UNet and scheduler of a saved ``unet`` + ``scheduler`` pipeline, its kind checked before its weights load."""
    local_only = not allow_download
    hint = "" if allow_download else " (only local files are read; set allow_download=True to fetch a hub id)"
    try:
        index = DiffusionPipeline.load_config(model, local_files_only=local_only)
    except (OSError, ValueError) as error:
        raise ValueError(f"No diffusers pipeline found at {model!r}{hint}: {error}") from error
    components = {name: spec for name, spec in index.items() if not name.startswith("_")}
    if set(components) != {"unet", "scheduler"} or components["unet"][-1] != UNet2DModel.__name__:
        raise ValueError(
            f"{model!r} holds a {index.get('_class_name')} with components {sorted(components)}; only a "
            "UNet2DModel 'unet' with a 'scheduler' (as DDPMPipeline or DDIMPipeline saves them) is supported"
        )
    try:
        pipeline = DiffusionPipeline.from_pretrained(model, local_files_only=local_only)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot load the diffusers pipeline at {model!r}{hint}: {error}") from error
    config = pipeline.unet.config
    if config.class_embed_type is not None:
        raise ValueError(
            f"{model!r}: class_embed_type {config.class_embed_type!r} is unsupported, only num_class_embeds"
        )
    if config.in_channels not in (1, 3):
        raise ValueError(f"{model!r}: only 1- or 3-channel UNets are supported, got {config.in_channels}")
    return pipeline.unet, pipeline.scheduler


def _as_pair(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def seeded_generators(seed: int, count: int, device: torch.device) -> list[torch.Generator]:
    """One generator per image, seeded from ``seed`` and the image's index (so image ``i`` does
    not depend on the batch it is drawn in)."""
    seeds = np.random.SeedSequence(seed).generate_state(count, dtype=np.uint64)
    return [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]


def generate_in_batches(
    total: int, batch_size: int, shape: tuple[int, int, int], batch: Callable[[int, int], np.ndarray], what: str
) -> np.ndarray:
    """Images ``[begin, end)`` from ``batch(begin, end)`` for consecutive batches, concatenated.

    A tqdm bar on stderr follows the images, on a terminal only (``disable=None``) and only once
    they have run two seconds; it is cleared when done, and one line logs the rate.

    Args:
        total: Number of images.
        batch_size: Images per call of ``batch``.
        shape: (H, W, C) of each image.
        batch: Makes the images ``[begin, end)`` as a float32 array (end - begin, H, W, C).
        what: Names the work in the bar and the log line (``"Diffusion random"``).

    Returns:
        The ``total`` images, in order.
    """
    out = np.empty((total, *shape), dtype=np.float32)
    started = time.monotonic()
    with tqdm(total=total, desc=what, unit="image", file=sys.stderr, disable=None, delay=2.0, leave=False) as progress:
        for begin in range(0, total, batch_size):
            end = min(begin + batch_size, total)
            out[begin:end] = batch(begin, end)
            progress.update(end - begin)
    elapsed = max(time.monotonic() - started, 1e-9)
    logger.info("%s: %d images in %.1f s (%.2f per second)", what, total, elapsed, total / elapsed)
    return out


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (n, C, H, W) images to ``size`` (bilinear, antialiased when shrinking)."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """(n, C, H, W) images to 1 (luma) or 3 (repeated gray) channels."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        weights = torch.tensor(_LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
        return (images * weights).sum(dim=1, keepdim=True)
    return images.repeat(1, 3, 1, 1)


def to_images(samples: torch.Tensor, size: tuple[int, int], channels: int) -> np.ndarray:
    """(n, C', H', W') samples in [0, 1] to (n, H, W, C) float32 images in [0, 1] of ``size``
    and ``channels``."""
    images = convert_channels(resize(samples.float(), size), channels).clamp(0, 1)
    return images.permute(0, 2, 3, 1).cpu().numpy()
