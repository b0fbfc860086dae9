"""Pretrained image encoders for the vote and the Frechet distance, loaded offline from local files.

Two kinds:

- a transformers image model directory with its image processor (CLIP, ViT, DINOv2...): CLIP's
  projected image features, else the pooled output (or the first token); L2-normalised, so the
  L2 nearest neighbour is the cosine one;
- a TorchScript Inception-v3 called as FID's network is (``model(images, return_features=True)``
  on uint8 RGB images of 299 x 299 -> 2,048 pool features), e.g. ``inception-2015-12-05.pt``, the
  network of StyleGAN's and clean-fid's FID: its features are used raw, as FID uses them, so the
  Frechet distance on them is the FID.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

INCEPTION_SIZE = 299
"""Side of the images FID's Inception-v3 reads."""

Features = Callable[[np.ndarray], np.ndarray]
"""Features of a batch of (n, H, W, 3) RGB images in [0, 1], as (n, d) float32."""


@dataclass
class ImageEncoder:
    """A pretrained image encoder from local files, loaded on first use, never downloaded.

    Attributes:
        model: A transformers image model directory (with its image processor's configuration),
            or a TorchScript Inception-v3: its ``.pt`` file, or a directory holding exactly one.
        batch_size: Images per forward pass.
        device: ``"cpu"``, ``"cuda"``, ...
        kind: ``"transformers"`` or ``"inception"``, from the files at ``model``.
    """

    model: str
    batch_size: int = 64
    device: str = "cpu"
    kind: str = field(init=False)
    _source: Path = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"embedding.batch_size must be an integer >= 1, got {self.batch_size!r}")
        self._source, self.kind = _locate(Path(self.model).expanduser(), self.model)

    @property
    def normalised(self) -> bool:
        """Whether embeddings have unit L2 norm (transformers encoders; Inception's stay raw)."""
        return self.kind == "transformers"

    @cached_property
    def _features(self) -> Features:
        if self.kind == "transformers":
            return _transformers_features(self._source, self.device)
        return _inception_features(self._source, self.device)

    def encode(self, images: np.ndarray) -> np.ndarray:
        """Embeddings of images (n, H, W, C) in [0, 1], float32 (see ``normalised``).

        A tqdm bar on stderr follows the batches, on a terminal only (``disable=None``) and only
        once they have run two seconds; it is cleared when done.
        """
        starts = tqdm(
            range(0, len(images), self.batch_size),
            desc="Embedding images",
            unit="batch",
            file=sys.stderr,
            disable=None,
            delay=2.0,
            leave=False,
        )
        features = np.concatenate(
            [self._features(_rgb(images[start : start + self.batch_size])) for start in starts]
        ).astype(np.float32)
        if not self.normalised:
            return features
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def _rgb(images: np.ndarray) -> np.ndarray:
    """(n, H, W, 1 or 3) images as RGB."""
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def _locate(path: Path, name: str) -> tuple[Path, str]:
    """The encoder's files and kind: a transformers directory (with ``config.json``), or a
    TorchScript ``.pt`` file given itself or as a directory's only ``.pt`` file.

    Raises:
        ValueError: for a path that holds neither.
    """
    if path.is_dir() and (path / "config.json").is_file():
        return path, "transformers"
    files = [path] if path.is_file() and path.suffix == ".pt" else sorted(path.glob("*.pt")) if path.is_dir() else []
    if len(files) == 1:
        return files[0], "inception"
    raise ValueError(
        f"embedding.encoder {name!r} is neither a local transformers image model directory (with config.json and "
        "its image processor) nor a TorchScript Inception-v3 (a .pt file, or a folder holding one); set it to null "
        "for the pixel embedding"
    )


def _transformers_features(path: Path, device: str) -> Features:
    """Features of a transformers image model: CLIP's projected image features, else the pooled
    output, else the first token's hidden state."""
    import torch
    from transformers import AutoImageProcessor, AutoModel

    processor = AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
    model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()

    def features(batch: np.ndarray) -> np.ndarray:
        inputs = processor(images=list((batch * 255).round().astype(np.uint8)), return_tensors="pt").to(device)
        with torch.inference_mode():
            if hasattr(model, "get_image_features"):
                output = model.get_image_features(**inputs)  # a tensor, or (transformers 5) an output
                pooled = output if isinstance(output, torch.Tensor) else output.pooler_output
            else:
                output = model(**inputs)
                pooled = getattr(output, "pooler_output", None)
                pooled = pooled if pooled is not None else output.last_hidden_state[:, 0]
        return pooled.float().cpu().numpy()

    return features


def _inception_features(file: Path, device: str) -> Features:
    """Features of FID's TorchScript Inception-v3: images resized to 299 x 299 (bicubic,
    antialiased, as clean-fid resizes), as uint8, through ``model(x, return_features=True)``."""
    import torch
    import torch.nn.functional as F

    model = torch.jit.load(str(file), map_location=device).eval()

    def features(batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2) * 255
        size = (INCEPTION_SIZE, INCEPTION_SIZE)
        resized = F.interpolate(tensor, size=size, mode="bicubic", align_corners=False, antialias=True)
        with torch.inference_mode():
            output = model(resized.round().clamp(0, 255).to(torch.uint8).to(device), return_features=True)
        return output.float().cpu().numpy()

    return features
