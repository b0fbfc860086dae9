"""A glyph simulator for Sim-PE: parameters of rendered characters, their variation, the renderer.

Private Evolution with a simulator ("Sim-PE") evolves the parameters of a public renderer
instead of images: the random API draws parameters uniformly within public ``GlyphBounds``,
the variation API moves them by a small random amount (``perturb_parameters``) whose size
decays over iterations (``dp_synth.pe.schedule.VariationSchedule``), and ``render`` turns them into images. Nothing
here sees private data.

A population's parameters are a pandas DataFrame with one row per glyph and the columns of
``PARAMETER_COLUMNS``: ``font`` (int, index into the tuple of ``discover_fonts``), ``size``
(font size as a fraction of the canvas height), ``rotation`` (degrees, counter-clockwise),
``stroke`` (outline width in pixels of the supersampled canvas), ``aspect`` (horizontal
stretch), ``offset_x`` and ``offset_y`` (shift of the glyph's centre as a fraction of the
canvas width and height; positive is right and down). It can be saved to parquet as is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

CONTINUOUS_COLUMNS = ("size", "rotation", "stroke", "aspect", "offset_x", "offset_y")
"""The continuous parameters, each bounded by the ``GlyphBounds`` field of the same name."""

PARAMETER_COLUMNS = ("font", *CONTINUOUS_COLUMNS)
"""Columns of a parameter DataFrame, in order."""

FONT_SUFFIXES = (".ttf", ".otf")
"""File suffixes (case-insensitive) of the fonts found in user-named folders."""

_FONT_CACHE_SIZE = 1024


@dataclass(frozen=True)
class GlyphBounds:
    """Public ranges ``(low, high)`` of the continuous glyph parameters.

    The defaults make DejaVu digits look like scikit-learn's ``load_digits`` (8x8 block
    averages of 32x32 bitmaps): centred, as tall as most of the frame, with thick strokes.
    A DejaVu digit's ink is about 0.73 of the font size tall, so sizes 1.1-1.35 fill about
    80-100 % of the frame height; aspects 0.7-1.0 make digits about 60-80 % as wide as tall,
    and strokes up to 1.5 px give a mean ink of 0.30, as in ``load_digits``. Set
    ``low == high`` to fix a parameter.

    Attributes:
        size: Font size as a fraction of the canvas height, low > 0.
        rotation: Rotation in degrees, counter-clockwise, within [-180, 180].
        stroke: Outline width in pixels of the supersampled canvas (32x32 for 8x8 images
            with the default supersample 4), low >= 0; it thickens every stroke by twice
            this width.
        aspect: Horizontal stretch of the glyph (1 keeps the font's proportions), low > 0.
        offset_x: Horizontal shift of the glyph's centre, fraction of the canvas width,
            within [-1, 1].
        offset_y: Vertical shift of the glyph's centre (positive is down), fraction of the
            canvas height, within [-1, 1].
    """

    size: tuple[float, float] = (1.1, 1.35)
    rotation: tuple[float, float] = (-20.0, 20.0)
    stroke: tuple[float, float] = (0.0, 1.5)
    aspect: tuple[float, float] = (0.7, 1.0)
    offset_x: tuple[float, float] = (-0.08, 0.08)
    offset_y: tuple[float, float] = (-0.05, 0.05)

    def __post_init__(self) -> None:
        for field in fields(self):
            low, high = _check_range(field.name, getattr(self, field.name))
            object.__setattr__(self, field.name, (low, high))
        if self.size[0] <= 0:
            raise ValueError(f"GlyphBounds.size must be > 0, got low {self.size[0]}")
        if self.aspect[0] <= 0:
            raise ValueError(f"GlyphBounds.aspect must be > 0, got low {self.aspect[0]}")
        if self.stroke[0] < 0:
            raise ValueError(f"GlyphBounds.stroke must be >= 0, got low {self.stroke[0]}")
        _check_within("rotation", self.rotation, 180.0)
        _check_within("offset_x", self.offset_x, 1.0)
        _check_within("offset_y", self.offset_y, 1.0)

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The ``(low, high)`` range of each continuous parameter, keyed by column name."""
        return {name: getattr(self, name) for name in CONTINUOUS_COLUMNS}


def _check_range(name: str, value: object) -> tuple[float, float]:
    """A bound as a pair of finite floats with low <= high, or a ValueError naming it."""
    try:
        low, high = (float(item) for item in value)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ValueError(f"GlyphBounds.{name} must be a pair (low, high) of numbers, got {value!r}") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"GlyphBounds.{name} must be finite, got ({low}, {high})")
    if low > high:
        raise ValueError(f"GlyphBounds.{name} needs low <= high, got ({low}, {high})")
    return low, high


def _check_within(name: str, bounds: tuple[float, float], limit: float) -> None:
    if bounds[0] < -limit or bounds[1] > limit:
        raise ValueError(f"GlyphBounds.{name} must lie within [{-limit}, {limit}], got {bounds}")


def discover_fonts(extra_folders: Sequence[str | Path] = ()) -> tuple[Path, ...]:
    """The DejaVu fonts shipped with matplotlib, then every font in the named folders.

    The DejaVu "Display" fonts are left out: they are symbol subsets for mathtext, without
    letters or digits. Each folder contributes its ``.ttf`` and ``.otf`` files (not its
    sub-folders), sorted by name; a font named twice is kept once, at its first place.

    Args:
        extra_folders: Folders of further fonts, in the order their fonts are appended.

    Returns:
        Font paths; a font's position is the ``font`` value of a parameter row.

    Raises:
        FileNotFoundError: A named folder does not exist, is not a folder or holds no font.
    """
    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    found = [path for path in sorted(bundled.glob("DejaVu*.ttf")) if "Display" not in path.name]
    for folder in map(Path, extra_folders):
        if not folder.is_dir():
            raise FileNotFoundError(f"font folder {str(folder)!r} does not exist or is not a folder")
        fonts = sorted(path for path in folder.iterdir() if path.suffix.lower() in FONT_SUFFIXES and path.is_file())
        if not fonts:
            raise FileNotFoundError(f"font folder {str(folder)!r} holds no {' or '.join(FONT_SUFFIXES)} file")
        found.extend(fonts)
    return tuple(dict.fromkeys(path.resolve() for path in found))


def random_parameters(count: int, bounds: GlyphBounds, font_count: int, rng: np.random.Generator) -> pd.DataFrame:
    """Random API: ``count`` parameter rows, each parameter uniform within its bounds.

    Args:
        count: Number of rows, >= 0.
        bounds: Ranges of the continuous parameters.
        font_count: Number of fonts; ``font`` is uniform over ``range(font_count)``.
        rng: Source of randomness.

    Returns:
        A DataFrame with the columns of ``PARAMETER_COLUMNS``.
    """
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    _check_font_count(font_count)
    columns: dict[str, np.ndarray] = {"font": rng.integers(0, font_count, size=count, dtype=np.int64)}
    for name, (low, high) in bounds.ranges().items():
        columns[name] = rng.uniform(low, high, size=count)
    return pd.DataFrame(columns)


def perturb_parameters(
    parameters: pd.DataFrame, degree: float, bounds: GlyphBounds, font_count: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Variation API: a copy of ``parameters`` with every row moved by a random amount.

    Each continuous parameter moves by ``U(-degree, degree) * (high - low)`` and is clipped
    to its bounds (as the tabular modality moves numeric cells); with probability ``degree``
    a row's font is redrawn uniformly among all fonts (so it may stay the same). Degree 0
    changes nothing; degree 1 can reach any value. Columns other than the parameters are
    kept unchanged.

    Args:
        parameters: Rows with at least the columns of ``PARAMETER_COLUMNS``.
        degree: Size of the variation, in [0, 1].
        bounds: Ranges of the continuous parameters.
        font_count: Number of fonts.
        rng: Source of randomness.
    """
    if not 0.0 <= degree <= 1.0:
        raise ValueError(f"degree must lie in [0, 1], got {degree}")
    _check_font_count(font_count)
    _check_columns(parameters)
    varied = parameters.copy()
    count = len(varied)
    for name, (low, high) in bounds.ranges().items():
        noise = rng.uniform(-degree, degree, size=count) * (high - low)
        varied[name] = np.clip(varied[name].to_numpy(dtype=np.float64) + noise, low, high)
    redraw = rng.random(count) < degree
    fonts = varied["font"].to_numpy(dtype=np.int64).copy()
    fonts[redraw] = rng.integers(0, font_count, size=int(redraw.sum()), dtype=np.int64)
    varied["font"] = fonts
    return varied


def render(
    glyphs: Sequence[str],
    parameters: pd.DataFrame,
    fonts: Sequence[Path],
    image_size: tuple[int, int],
    supersample: int = 4,
) -> np.ndarray:
    """Draw each glyph white on black with its parameters, as grayscale images.

    Each glyph is drawn on a canvas ``supersample`` times larger than ``image_size``: its
    ink (with the stroke outline) is stretched by ``aspect``, rotated about its centre,
    centred on the canvas and shifted by the offsets; the canvas is then reduced to
    ``image_size`` by averaging pixel blocks (a box filter).

    Args:
        glyphs: The text of each image (usually one character), one per parameter row.
        parameters: Rows with the columns of ``PARAMETER_COLUMNS``.
        fonts: Font paths, indexed by the ``font`` column.
        image_size: Output ``(height, width)`` in pixels.
        supersample: Canvas scale factor, >= 1.

    Returns:
        float32 array of shape ``(len(glyphs), height, width)`` with values in [0, 1].
    """
    height, width = image_size
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if supersample < 1:
        raise ValueError(f"supersample must be >= 1, got {supersample}")
    if len(glyphs) != len(parameters):
        raise ValueError(f"got {len(glyphs)} glyphs for {len(parameters)} parameter rows")
    _check_columns(parameters)
    font_indices = parameters["font"].to_numpy(dtype=np.int64)
    if len(font_indices) and (font_indices.min() < 0 or font_indices.max() >= len(fonts)):
        raise ValueError(f"font indices must lie in [0, {len(fonts)}), got {font_indices.min()}..{font_indices.max()}")
    canvas_size = (width * supersample, height * supersample)
    images = np.empty((len(glyphs), height, width), dtype=np.float32)
    rows = zip(
        glyphs, font_indices, *(parameters[name].to_numpy(dtype=np.float64) for name in CONTINUOUS_COLUMNS), strict=True
    )
    for index, (glyph, font, size, rotation, stroke, aspect, offset_x, offset_y) in enumerate(rows):
        font_object = _load_font(str(fonts[font]), max(1, round(size * canvas_size[1])))
        ink = _glyph_ink(glyph, font_object, stroke)
        canvas = _place(ink, canvas_size, rotation, aspect, offset_x, offset_y)
        images[index] = np.asarray(canvas.resize((width, height), Image.Resampling.BOX), dtype=np.float32)
    return images / np.float32(255.0)


@lru_cache(maxsize=_FONT_CACHE_SIZE)
def _load_font(path: str, pixel_size: int) -> ImageFont.FreeTypeFont:
    """The font at ``path`` in ``pixel_size`` pixels, loaded once per pair."""
    return ImageFont.truetype(path, pixel_size)


def _glyph_ink(glyph: str, font: ImageFont.FreeTypeFont, stroke: float) -> Image.Image:
    """The glyph drawn white on black, cropped to its ink (an empty image if it has none)."""
    left, top, right, bottom = font.getbbox(glyph, stroke_width=stroke)
    origin_x, origin_y = math.floor(left), math.floor(top)
    image = Image.new("L", (max(1, math.ceil(right) - origin_x), max(1, math.ceil(bottom) - origin_y)))
    ImageDraw.Draw(image).text((-origin_x, -origin_y), glyph, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    box = image.getbbox()
    return image.crop(box) if box else image


def _place(
    ink: Image.Image,
    canvas_size: tuple[int, int],
    rotation: float,
    aspect: float,
    offset_x: float,
    offset_y: float,
) -> Image.Image:
    """``ink`` stretched, rotated about its centre and centred on a canvas, plus the offsets.

    ``Image.transform`` maps each canvas point back to the ink image: it takes the inverse
    of "stretch x by aspect, rotate counter-clockwise (y points down), translate".
    """
    canvas_width, canvas_height = canvas_size
    centre_x = canvas_width / 2 + offset_x * canvas_width
    centre_y = canvas_height / 2 + offset_y * canvas_height
    cos, sin = math.cos(math.radians(rotation)), math.sin(math.radians(rotation))
    a, b = cos / aspect, -sin / aspect
    d, e = sin, cos
    c = ink.width / 2 - a * centre_x - b * centre_y
    f = ink.height / 2 - d * centre_x - e * centre_y
    return ink.transform(canvas_size, Image.Transform.AFFINE, (a, b, c, d, e, f), Image.Resampling.BILINEAR)


def _check_font_count(font_count: int) -> None:
    if font_count < 1:
        raise ValueError(f"font_count must be >= 1, got {font_count}")


def _check_columns(parameters: pd.DataFrame) -> None:
    missing = [name for name in PARAMETER_COLUMNS if name not in parameters.columns]
    if missing:
        raise ValueError(f"parameters lack the columns {missing}")
