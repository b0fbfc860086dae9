"""Image modality: PE with a glyph simulator (Sim-PE), a diffusion or text-to-image model, or a
public image set (``retrieval``).

Populations have a ``label`` column (a declared class name), an ``image`` column (each image
flattened to float32 values in [0, 1], shape (H, W, C) declared in the public schema), the
generator's own parameter columns (the simulator's glyph parameters, a text-to-image model's
``prompt``, the retrieval simulator's ``public_index``; none for diffusion) and, with lookahead,
a ``lookahead`` column: the mean embedding of L variations of the candidate.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from dp_synth.evaluation.embeddings import EmbeddedReference, GaussianFit, frechet_distance
from dp_synth.modalities.image.encoders import ImageEncoder
from dp_synth.modalities.image.glyphs import (
    PARAMETER_COLUMNS,
    GlyphBounds,
    perturb_parameters,
    random_parameters,
    render,
)
from dp_synth.pe.engine import OnInvalid
from dp_synth.pe.interfaces import PublicSchemaFacts
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.schema import SchemaError, parse_declared_classes

logger = logging.getLogger(__name__)

LABEL, IMAGE, LOOKAHEAD, PROMPT = "label", "image", "lookahead", "prompt"
"""Column names of an image population."""


@dataclass(frozen=True)
class ImageSchema:
    """The public description of a labelled image set.

    Attributes:
        classes: Declared class names, in order (a class-conditional model's class index is
            the position here).
        glyphs: The text the simulator draws for each class (e.g. ``"7"`` for class ``"7"``).
        height: Image height in pixels.
        width: Image width in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        public_row_count: The private image count, if declared public.
        class_proportions: Class proportions, if declared public.
        privacy_unit: The column naming each record's person, if declared (user-level DP).
        descriptions: A public description of some classes (what a text-to-image prompt says
            of the class), e.g. ``"a handwritten digit seven"``.
    """

    classes: tuple[str, ...]
    glyphs: Mapping[str, str]
    height: int
    width: int
    channels: int
    public_row_count: int | None = None
    class_proportions: Mapping[str, float] | None = None
    privacy_unit: str | None = None
    descriptions: Mapping[str, str] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of every image."""
        return self.height, self.width, self.channels

    def description(self, label: str) -> str:
        """The class's declared description, else its name."""
        return self.descriptions.get(label, label)


def parse_image_schema(raw: Mapping[str, Any]) -> ImageSchema:
    """Build an ``ImageSchema`` from its JSON form; ``classes`` maps each class to its glyph,
    the optional ``class_descriptions`` some classes to a public description.

    Raises:
        SchemaError: naming the missing or malformed entry.
    """
    declared = parse_declared_classes(raw, "image schema", ("image_size", "channels"), "the glyph the simulator draws")
    size = raw["image_size"]
    if not (isinstance(size, Sequence) and len(size) == 2 and all(isinstance(v, int) and v >= 1 for v in size)):
        raise SchemaError(f"image schema: 'image_size' must be [height, width] of positive integers, got {size!r}")
    if raw["channels"] not in (1, 3):
        raise SchemaError(f"image schema: 'channels' must be 1 or 3, got {raw['channels']!r}")
    descriptions = raw.get("class_descriptions", {})
    if not isinstance(descriptions, Mapping) or not set(descriptions) <= set(declared.classes):
        raise SchemaError("image schema: 'class_descriptions' must map declared classes to their descriptions")
    return ImageSchema(
        classes=tuple(declared.classes),
        glyphs=declared.classes,
        height=size[0],
        width=size[1],
        channels=raw["channels"],
        public_row_count=declared.public_row_count,
        class_proportions=declared.class_proportions,
        privacy_unit=declared.privacy_unit,
        descriptions={str(label): str(text) for label, text in descriptions.items()},
    )


def images_of(population: pd.DataFrame, schema: ImageSchema) -> np.ndarray:
    """The population's images as one float32 array of shape (n, H, W, C)."""
    if len(population) == 0:
        return np.zeros((0, *schema.shape), dtype=np.float32)
    return np.stack(population[IMAGE].to_numpy()).astype(np.float32).reshape(len(population), *schema.shape)


def image_column(images: np.ndarray) -> list[np.ndarray]:
    """Images (n, ...) as a population column: one flat float32 array per image."""
    return list(np.asarray(images, dtype=np.float32).reshape(len(images), -1))


IMAGE_PROBLEMS = ("labels outside the declared classes", "images of another size", "images with pixels outside [0, 1]")
"""The kinds of problems of a labelled image, in the order of ``image_problems``' counts."""


def _image_rows(table: pd.DataFrame, schema: ImageSchema) -> tuple[pd.Series, np.ndarray]:
    """Each row's label as text, and its problems (rows x ``IMAGE_PROBLEMS``, booleans).

    Raises:
        SchemaError: for a missing column.
    """
    missing = [name for name in (LABEL, IMAGE) if name not in table.columns]
    if missing:
        raise SchemaError(f"image set: columns {missing} are missing")
    labels = table[LABEL].astype(str)
    problems = np.zeros((len(table), len(IMAGE_PROBLEMS)), dtype=bool)
    problems[:, 0] = (table[LABEL].isna() | ~labels.isin(schema.classes)).to_numpy()
    problems[:, 1] = [np.asarray(image).size != int(np.prod(schema.shape)) for image in table[IMAGE]]
    for row in np.flatnonzero(~problems[:, 1]):
        pixels = np.asarray(table[IMAGE].iloc[row], dtype=np.float64)
        problems[row, 2] = not bool(np.all((pixels >= 0.0) & (pixels <= 1.0)))  # NaN is outside too
    return labels, problems


def image_problems(table: pd.DataFrame, schema: ImageSchema) -> np.ndarray:
    """How many images have each kind of problem (``IMAGE_PROBLEMS``), int64: a sum over rows."""
    return _image_rows(table, schema)[1].sum(axis=0, dtype=np.int64)


def describe_image_problems(counts: np.ndarray, schema: ImageSchema) -> str:
    """The problems ``image_problems`` counted, by kind and count (never a value); ``""`` for none."""
    size = f"{schema.height}x{schema.width}x{schema.channels}"
    found = [
        f"{count} {kind}" + (f" than {size}" if kind == IMAGE_PROBLEMS[1] else "")
        for kind, count in zip(IMAGE_PROBLEMS, counts, strict=True)
        if count
    ]
    return f"image set: {', '.join(found)}; declared classes: {list(schema.classes)}" if found else ""


def check_images(table: pd.DataFrame, schema: ImageSchema, *, on_invalid: OnInvalid = "stop") -> pd.DataFrame:
    """Fit a labelled image table to its public schema; return ``label``/``image`` columns.

    Args:
        table: The images as read.
        schema: Their public schema.
        on_invalid: A row with an undeclared class or an image of another size stops the load
            (``stop``) or is dropped (``clamp``, ``drop``); an image with pixels outside [0, 1]
            stops it, has them clipped into [0, 1] (``clamp``; dropped if one is not a number)
            or is dropped (``drop``). See ``engine.ON_INVALID``.

    Raises:
        SchemaError: for a missing column; with ``stop``, for invalid rows, by kind and count.
    """
    labels, problems = _image_rows(table, schema)
    if on_invalid == "stop" and problems.any():
        raise SchemaError(describe_image_problems(problems.sum(axis=0), schema))
    valid = ~problems[:, 0] & ~problems[:, 1]
    if on_invalid != "clamp":
        valid &= ~problems[:, 2]
    images = np.zeros((int(valid.sum()), int(np.prod(schema.shape))), dtype=np.float32)
    for index, row in enumerate(np.flatnonzero(valid)):
        images[index] = np.asarray(table[IMAGE].iloc[row], dtype=np.float32).reshape(-1)
    finite = np.isfinite(images).all(axis=1)
    images = np.clip(images[finite], 0.0, 1.0)
    return pd.DataFrame({LABEL: labels.to_numpy()[valid][finite], IMAGE: image_column(images)})


class ImageGenerator(Protocol):
    """The public image generator behind the random and variation APIs.

    Attributes:
        description: What the generator is, for the log.
    """

    description: str

    def random(self, labels: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
        """One new candidate per label: the ``image`` column plus the generator's parameters."""
        ...

    def vary(self, candidates: pd.DataFrame, degree: float, rng: np.random.Generator) -> pd.DataFrame:
        """One variation of every candidate at ``degree`` in [0, 1]; same columns, same order."""
        ...


@dataclass(frozen=True)
class GlyphSimulator:
    """Sim-PE's generator: rendered glyphs whose parameters PE evolves (see ``core.glyphs``).

    Attributes:
        schema: Image size and each class's glyph.
        fonts: Font files, indexed by the ``font`` parameter.
        bounds: Public ranges of the continuous parameters.
    """

    schema: ImageSchema
    fonts: tuple[Path, ...]
    bounds: GlyphBounds = field(default_factory=GlyphBounds)

    @property
    def description(self) -> str:
        """The simulator and its fonts."""
        return f"glyph simulator ({len(self.fonts)} fonts)"

    def _rendered(self, labels: Sequence[str], parameters: pd.DataFrame) -> pd.DataFrame:
        glyphs = [self.schema.glyphs[label] for label in labels]
        images = render(glyphs, parameters, self.fonts, (self.schema.height, self.schema.width))
        if self.schema.channels == 3:
            images = np.repeat(images[..., None], 3, axis=-1)
        return parameters.assign(**{IMAGE: image_column(images)})

    def random(self, labels: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
        """Parameters drawn uniformly within the bounds, rendered."""
        return self._rendered(labels, random_parameters(len(labels), self.bounds, len(self.fonts), rng))

    def vary(self, candidates: pd.DataFrame, degree: float, rng: np.random.Generator) -> pd.DataFrame:
        """Parameters perturbed by ``degree`` x their range (clipped), rendered again."""
        moved = perturb_parameters(candidates[list(PARAMETER_COLUMNS)], degree, self.bounds, len(self.fonts), rng)
        return self._rendered(candidates[LABEL].tolist(), moved)


@dataclass(frozen=True)
class DiffusionGenerator:
    """A diffusion model (``core.diffusion``): random = sampling, variation = SDEdit at strength
    ``degree``. A class-conditional model gets each label's position among the declared classes."""

    schema: ImageSchema
    model: Any  # a dp_synth.modalities.image.diffusion.DiffusionImageGenerator (imported only with the image extra)

    @property
    def description(self) -> str:
        """The diffusion model."""
        return f"diffusion model on {self.model.device} ({self.model.num_inference_steps} steps)"

    def _indices(self, labels: Sequence[str]) -> np.ndarray:
        return np.array([self.schema.classes.index(label) for label in labels], dtype=np.int64)

    def random(self, labels: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
        """Images denoised from pure noise."""
        images = self.model.random(self._indices(labels), seed=int(rng.integers(2**31 - 1)))
        return pd.DataFrame({IMAGE: image_column(images)})

    def vary(self, candidates: pd.DataFrame, degree: float, rng: np.random.Generator) -> pd.DataFrame:
        """SDEdit: each image noised to strength ``degree`` (at least one step), then denoised."""
        strength = float(np.clip(degree, 1.0 / self.model.num_inference_steps, 1.0))
        images = self.model.vary(
            images_of(candidates, self.schema),
            self._indices(candidates[LABEL].tolist()),
            strength,
            seed=int(rng.integers(2**31 - 1)),
        )
        return pd.DataFrame({IMAGE: image_column(images)})


def class_prompts(
    schema: ImageSchema, templates: Sequence[str], per_class: Mapping[str, Sequence[str]], styles: Sequence[str]
) -> dict[str, tuple[str, ...]]:
    """Each class's prompt list, built from public fields only.

    Args:
        schema: The classes and their public descriptions.
        templates: ``str.format`` templates with the fields ``{label}`` (the class name) and
            ``{description}`` (its declared description, else its name).
        per_class: Templates that replace ``templates`` for some declared classes.
        styles: Style words; each prompt is repeated once per style, ", <style>" appended.

    Raises:
        ValueError: for an undeclared class, an empty list or an unknown template field.
    """
    undeclared = sorted(set(per_class) - set(schema.classes))
    if undeclared:
        raise ValueError(f"stable_diffusion.class_prompts names undeclared classes {undeclared}")
    prompts = {}
    for label in schema.classes:
        chosen = per_class.get(label, templates)
        if not chosen:
            raise ValueError(f"stable_diffusion: class {label!r} has no prompt template")
        try:
            texts = [template.format(label=label, description=schema.description(label)) for template in chosen]
        except (KeyError, IndexError) as error:
            raise ValueError(
                f"stable_diffusion: a prompt template of class {label!r} uses {error}; its fields are "
                "{label} and {description}"
            ) from None
        prompts[label] = tuple(f"{text}, {style}" for text in texts for style in styles) if styles else tuple(texts)
    return prompts


@dataclass(frozen=True)
class TextToImageGenerator:
    """A text-to-image model (``stable_diffusion.StableDiffusionImageGenerator``): random =
    text-to-image from one of the class's prompts, drawn uniformly; variation = image-to-image
    from the survivor at strength ``degree``, with the prompt it was drawn with (a ``prompt``
    column of the population).

    Attributes:
        schema: The image shape.
        model: The text-to-image model.
        prompts: Each class's prompts (``class_prompts``).
    """

    schema: ImageSchema
    model: Any  # a dp_synth.modalities.image.stable_diffusion.StableDiffusionImageGenerator (image extra)
    prompts: Mapping[str, tuple[str, ...]]

    @property
    def description(self) -> str:
        """The model and its sampling settings."""
        model = self.model
        return (
            f"text-to-image model on {model.device} ({model.num_inference_steps} steps, guidance "
            f"{model.guidance_scale}, drawn at {model.resolution}x{model.resolution})"
        )

    def random(self, labels: Sequence[str], rng: np.random.Generator) -> pd.DataFrame:
        """Images drawn from a prompt of their class."""
        prompts = [self.prompts[label][rng.integers(len(self.prompts[label]))] for label in labels]
        images = self.model.random(prompts, seed=int(rng.integers(2**31 - 1)))
        return pd.DataFrame({PROMPT: prompts, IMAGE: image_column(images)})

    def vary(self, candidates: pd.DataFrame, degree: float, rng: np.random.Generator) -> pd.DataFrame:
        """Image-to-image from each candidate at strength ``degree``, same prompt."""
        prompts = candidates[PROMPT].tolist()
        images = self.model.vary(images_of(candidates, self.schema), prompts, degree, seed=int(rng.integers(2**31 - 1)))
        return pd.DataFrame({PROMPT: prompts, IMAGE: image_column(images)})


def pixel_embedding(images: np.ndarray, pool: int) -> np.ndarray:
    """Images (n, H, W, C) average-pooled by ``pool`` x ``pool`` blocks and flattened."""
    n, height, width, channels = images.shape
    if pool > 1:
        images = images[:, : height - height % pool, : width - width % pool]
        images = images.reshape(n, height // pool, pool, width // pool, pool, channels).mean(axis=(2, 4))
    return images.reshape(n, -1).astype(np.float32)


def embed_images(images: np.ndarray, pool: int, encoder: ImageEncoder | None) -> np.ndarray:
    """Embeddings of images (n, H, W, C): the encoder's, else pixels pooled by ``pool``."""
    return pixel_embedding(images, pool) if encoder is None else encoder.encode(images)


@dataclass(frozen=True)
class ImageModality(PublicSchemaFacts):
    """PE over labelled images.

    Attributes:
        schema: Public classes, glyphs and image shape.
        generator: The random and variation APIs (an ``ImageGenerator``).
        schedule: Variation degree r(t) (the simulator's perturbation width, a diffusion model's
            strength, the retrieval neighbourhood's share of the public pool).
        lookahead: L: a candidate's vote embedding is the mean embedding of L variations of it
            at the next variation's degree (0: its own embedding).
        pool: Average-pooling factor of the pixel embedding (1: raw pixels).
        encoder: A pretrained image encoder for the embedding, or ``None`` for pixels.
    """

    schema: ImageSchema
    generator: ImageGenerator
    schedule: VariationSchedule
    lookahead: int = 0
    pool: int = 1
    encoder: ImageEncoder | None = None
    label_column: str = field(default=LABEL, init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.lookahead, int) or self.lookahead < 0:
            raise ValueError(f"generator.lookahead must be an integer >= 0, got {self.lookahead!r}")
        if not isinstance(self.pool, int) or self.pool < 1:
            raise ValueError(f"embedding.pool must be an integer >= 1, got {self.pool!r}")

    def pixels(self, population: pd.DataFrame) -> np.ndarray:
        """The pixel embedding of the population's own images (what the classifier reads)."""
        return pixel_embedding(images_of(population, self.schema), self.pool)

    def features(self, population: pd.DataFrame) -> np.ndarray:
        """The embedding of the population's own images: the encoder's, else pixels."""
        return embed_images(images_of(population, self.schema), self.pool, self.encoder)

    def _with_lookahead(self, candidates: pd.DataFrame, degree: float, rng: np.random.Generator) -> pd.DataFrame:
        """Add the mean embedding of L variations of each candidate (only candidates' embeddings
        change: each private record still casts one vote, so the histogram's sensitivity stays 1)."""
        if self.lookahead == 0:
            return candidates
        total = 0.0
        for _ in range(self.lookahead):
            variations = self.generator.vary(candidates, degree, rng).assign(**{LABEL: candidates[LABEL].to_numpy()})
            total = total + self.features(variations).astype(np.float64)
        return candidates.assign(**{LOOKAHEAD: list((total / self.lookahead).astype(np.float32))})

    def random_population(self, class_sizes: Mapping[str, int], rng: np.random.Generator) -> pd.DataFrame:
        """Random API: ``class_sizes[c]`` new images of class c (lookahead at degree r0)."""
        labels = [label for label, size in class_sizes.items() for _ in range(size)]
        candidates = self.generator.random(labels, rng).assign(**{LABEL: labels})
        return self._with_lookahead(candidates, self.schedule.r0, rng)

    def vary(self, survivors: pd.DataFrame, iteration: int, iterations: int, rng: np.random.Generator) -> pd.DataFrame:
        """Variation API: one variation of every survivor at r(t); lookahead at r(t + 1)."""
        survivors = survivors.drop(columns=LOOKAHEAD, errors="ignore").reset_index(drop=True)
        varied = self.generator.vary(survivors, self.schedule.degree(iteration, iterations), rng)
        varied = varied.assign(**{LABEL: survivors[LABEL].to_numpy()})
        return self._with_lookahead(varied, self.schedule.degree(min(iteration + 1, iterations), iterations), rng)

    def embed(self, population: pd.DataFrame) -> np.ndarray:
        """The vote embedding: the lookahead mean if the population carries one, else its own."""
        if LOOKAHEAD in population.columns:
            return np.stack(population[LOOKAHEAD].to_numpy()).astype(np.float32)
        return self.features(population)

    def summarise_reference(self, reference: pd.DataFrame) -> EmbeddedReference:
        """The held-out images' embeddings and labels."""
        return EmbeddedReference.of(self.features(reference), reference[LABEL].to_numpy())

    def quality(self, population: pd.DataFrame, reference_summary: EmbeddedReference) -> dict[str, float]:
        """Frechet distance of the population's embeddings to the held-out images."""
        return {"frechet_distance": frechet_distance(GaussianFit.of(self.features(population)), reference_summary.fit)}
