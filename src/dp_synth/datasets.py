"""Project datasets: API keys from credentials, and labelled image sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from dp_synth.modalities.text.llm import Secret


class ApiKeyDataset(AbstractDataset[None, "Secret | None"]):
    """Hands a node an API key from ``credentials.yml``, wrapped so that it never prints.

    Catalog entry: ``type: dp_synth.datasets.ApiKeyDataset`` with ``credentials: <name>``; the
    named credentials hold ``api_key`` (null or absent: no key). Read-only.
    """

    def __init__(self, credentials: dict[str, Any] | None = None, metadata: dict[str, Any] | None = None) -> None:
        key = (credentials or {}).get("api_key")
        self._key = Secret(str(key)) if key else None
        self.metadata = metadata

    def load(self) -> Secret | None:
        """The key, or ``None`` when none is configured."""
        return self._key

    def save(self, data: None) -> None:
        """Refuse: keys are configured in credentials.yml, never written by a run."""
        raise DatasetError("ApiKeyDataset is read-only: put the key in conf/local/credentials.yml")

    def _describe(self) -> dict[str, Any]:
        return {"api_key": "configured" if self._key else "not configured"}


def _labelled_images(labels: list[str], images: list[np.ndarray]) -> pd.DataFrame:
    """A ``label``/``image`` table, each image flattened to float32 in [0, 1]."""
    return pd.DataFrame({"label": labels, "image": [np.asarray(image, dtype=np.float32).ravel() for image in images]})


class DigitsDataset(AbstractDataset[None, pd.DataFrame]):
    """scikit-learn's handwritten digits (1,797 8x8 images shipped inside scikit-learn), one
    part of a fixed stratified split: the private ``train`` part or the held-out ``test`` part.

    Loads a ``label`` (``"0"``..``"9"``)/``image`` (64 values in [0, 1]) table. Read-only.

    Args:
        split: ``"train"`` or ``"test"``.
        test_share: Share of the images in the test part.
        seed: Seed of the split (fixed, so both parts never overlap).
    """

    def __init__(
        self, split: str, test_share: float = 0.3, seed: int = 0, metadata: dict[str, Any] | None = None
    ) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"DigitsDataset split must be 'train' or 'test', got {split!r}")
        self._split, self._test_share, self._seed = split, test_share, seed
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """The split's images and labels."""
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        train, test = train_test_split(
            np.arange(len(digits.target)), test_size=self._test_share, random_state=self._seed, stratify=digits.target
        )
        rows = train if self._split == "train" else test
        return _labelled_images([str(label) for label in digits.target[rows]], list(digits.images[rows] / 16.0))

    def save(self, data: pd.DataFrame) -> None:
        """Refuse: the digits ship with scikit-learn."""
        raise DatasetError("DigitsDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"split": self._split, "test_share": self._test_share, "seed": self._seed}


class ImageFolderDataset(AbstractDataset[None, pd.DataFrame]):
    """A folder with one subfolder of images per class (the subfolder's name is the class).

    Loads a ``label``/``image`` table: every image converted to grayscale (``channels: 1``) or
    RGB (3), resized to ``image_size`` and scaled to [0, 1]. Read-only.

    Args:
        path: The folder.
        image_size: ``[height, width]`` of the loaded images (the schema's size).
        channels: 1 or 3.
    """

    SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

    def __init__(
        self, path: str, image_size: list[int], channels: int = 1, metadata: dict[str, Any] | None = None
    ) -> None:
        self._path, self._size, self._channels = Path(path), (int(image_size[0]), int(image_size[1])), channels
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """Every image of every class subfolder, in sorted order."""
        from PIL import Image

        if not self._path.is_dir():
            raise DatasetError(f"image folder {str(self._path)!r} does not exist")
        labels, images = [], []
        for folder in sorted(path for path in self._path.iterdir() if path.is_dir()):
            for file in sorted(path for path in folder.iterdir() if path.suffix.lower() in self.SUFFIXES):
                with Image.open(file) as image:
                    converted = image.convert("L" if self._channels == 1 else "RGB")
                    resized = converted.resize((self._size[1], self._size[0]), Image.Resampling.BOX)
                labels.append(folder.name)
                images.append(np.asarray(resized, dtype=np.float32) / 255.0)
        if not images:
            raise DatasetError(f"image folder {str(self._path)!r} holds no class subfolder with images")
        return _labelled_images(labels, images)

    def save(self, data: pd.DataFrame) -> None:
        """Refuse: the folder is the data owner's input."""
        raise DatasetError("ImageFolderDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "image_size": list(self._size), "channels": self._channels}
