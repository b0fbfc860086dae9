"""Project datasets: API keys from credentials, labelled image sets, and public image folders."""

from __future__ import annotations

from dataclasses import dataclass
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


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""File name endings read as images."""


def _read_image(file: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """One image file as float32 (H, W) or (H, W, 3) in [0, 1]: converted to grayscale or RGB,
    resized to ``size`` (height, width) by box filtering."""
    from PIL import Image

    with Image.open(file) as image:
        converted = image.convert("L" if channels == 1 else "RGB")
        resized = converted.resize((size[1], size[0]), Image.Resampling.BOX)
    return np.asarray(resized, dtype=np.float32) / 255.0


def read_image_folder(path: Path, size: tuple[int, int], channels: int, *, labelled: bool) -> pd.DataFrame:
    """The images of a folder, in sorted order, as an ``image`` column (each flattened to float32
    in [0, 1]) and, for a labelled folder, a ``label`` column.

    Args:
        path: The folder.
        size: (height, width) the images are resized to.
        channels: 1 (grayscale) or 3 (RGB).
        labelled: One subfolder per class, named as the class; otherwise every image under the
            folder, at any depth, unlabelled.

    Raises:
        DatasetError: if the folder is missing or holds no image.
    """
    if not path.is_dir():
        raise DatasetError(f"image folder {str(path)!r} does not exist")
    if labelled:
        files = [
            (folder.name, file)
            for folder in sorted(child for child in path.iterdir() if child.is_dir())
            for file in sorted(folder.iterdir())
            if file.suffix.lower() in IMAGE_SUFFIXES
        ]
    else:
        files = [(None, file) for file in sorted(path.rglob("*")) if file.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        kind = "no class subfolder with images" if labelled else "no image"
        raise DatasetError(f"image folder {str(path)!r} holds {kind}")
    images = [_read_image(file, size, channels) for _, file in files]
    if not labelled:
        return pd.DataFrame({"image": [image.ravel() for image in images]})
    return _labelled_images([label for label, _ in files], images)


class ImageFolderDataset(AbstractDataset[None, pd.DataFrame]):
    """A folder with one subfolder of images per class (the subfolder's name is the class).

    Loads a ``label``/``image`` table: every image converted to grayscale (``channels: 1``) or
    RGB (3), resized to ``image_size`` and scaled to [0, 1]. Read-only.

    Args:
        path: The folder.
        image_size: ``[height, width]`` of the loaded images (the schema's size).
        channels: 1 or 3.
    """

    def __init__(
        self, path: str, image_size: list[int], channels: int = 1, metadata: dict[str, Any] | None = None
    ) -> None:
        self._path, self._size, self._channels = Path(path), (int(image_size[0]), int(image_size[1])), channels
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        """Every image of every class subfolder, in sorted order."""
        return read_image_folder(self._path, self._size, self._channels, labelled=True)

    def save(self, data: pd.DataFrame) -> None:
        """Refuse: the folder is the data owner's input."""
        raise DatasetError("ImageFolderDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "image_size": list(self._size), "channels": self._channels}


@dataclass(frozen=True)
class PublicImageFolder:
    """A declared-public image folder, read only when a generator needs it (the retrieval
    simulator), at the image set's size.

    Attributes:
        path: The folder.
        labelled: One subfolder per class (named as the class), or unlabelled images at any depth.
    """

    path: Path
    labelled: bool

    def load(self, size: tuple[int, int], channels: int) -> pd.DataFrame:
        """The folder's images (see ``read_image_folder``) at ``size`` (height, width) and ``channels``.

        Raises:
            DatasetError: if the folder is missing or holds no image.
        """
        if not self.path.is_dir():
            raise DatasetError(
                f"public image folder {str(self.path)!r} does not exist: point image.public_images at a folder of "
                "public images (conf/local/catalog.yml), or write the glyph demo with `make image-public-glyphs`"
            )
        return read_image_folder(self.path, size, channels, labelled=self.labelled)


class PublicImageFolderDataset(AbstractDataset[None, PublicImageFolder]):
    """A folder of public images (nothing private may be in it): the retrieval simulator's
    generator. Loads a ``PublicImageFolder`` handle without reading a file, so a run with
    another generator needs no such folder. Read-only.

    Args:
        path: The folder.
        labelled: ``true``: one subfolder per declared class; ``false``: unlabelled images.
    """

    def __init__(self, path: str, labelled: bool = True, metadata: dict[str, Any] | None = None) -> None:
        self._folder = PublicImageFolder(Path(path), labelled)
        self.metadata = metadata

    def load(self) -> PublicImageFolder:
        """The folder's handle; its images are read by ``PublicImageFolder.load``."""
        return self._folder

    def save(self, data: PublicImageFolder) -> None:
        """Refuse: the public folder is an input."""
        raise DatasetError("PublicImageFolderDataset is read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._folder.path), "labelled": self._folder.labelled}
