"""Node functions specific to image PE: the image set, the generator, the evaluation."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from functools import partial
from types import ModuleType
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dp_synth.datasets import PublicImageFolder
from dp_synth.evaluation.embeddings import EmbeddedReference, GaussianFit, classifier_accuracy, frechet_distance
from dp_synth.modalities.image.encoders import ImageEncoder
from dp_synth.modalities.image.glyphs import GlyphBounds, discover_fonts
from dp_synth.modalities.image.modality import (
    IMAGE,
    LABEL,
    DiffusionGenerator,
    GlyphSimulator,
    ImageGenerator,
    ImageModality,
    ImageSchema,
    TextToImageGenerator,
    check_images,
    class_prompts,
    describe_image_problems,
    embed_images,
    image_problems,
    images_of,
    parse_image_schema,
)
from dp_synth.modalities.image.retrieval import RetrievalSimulator
from dp_synth.modalities.image.settings import DiffusionSettings, ImageSettings, StableDiffusionSettings
from dp_synth.modalities.image.settings import ImageGenerator as ImageGeneratorSettings
from dp_synth.pe.engine import EmbeddedRows, OnInvalid
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.settings import SettingsError
from dp_synth.pipelines.pe.nodes import RowCheck, load_private_rows

logger = logging.getLogger(__name__)


def _extra(module: str, backend: str) -> ModuleType:
    """Import a module of the image extra, or say how to install it.

    Raises:
        SettingsError: if the extra is not installed.
    """
    try:
        return importlib.import_module(f"dp_synth.modalities.image.{module}")
    except ImportError as error:
        raise SettingsError(
            f"the {backend} backend needs the image extra ({error.name} is missing): "
            "pip install -e '.[image]', or make install-all"
        ) from None


def _required_model(model: str | None, backend: str, what: str) -> str:
    """The configured model directory.

    Raises:
        SettingsError: naming the setting, if it is not set.
    """
    if not model:
        raise SettingsError(f"image.generator.{backend}.model is not set: point it at {what}")
    return model


def _diffusion(schema: ImageSchema, settings: DiffusionSettings) -> DiffusionGenerator:
    """A local ``UNet2DModel`` pipeline (random = sampling, variation = SDEdit)."""
    options = settings.model_dump()
    model = _required_model(
        options.pop("model"),
        "diffusion",
        "a local diffusers pipeline directory (a UNet2DModel with its scheduler, e.g. saved by "
        "DDPMPipeline.save_pretrained)",
    )
    generator = _extra("diffusion", "diffusion").DiffusionImageGenerator(
        model, image_size=(schema.height, schema.width), channels=schema.channels, **options
    )
    return DiffusionGenerator(schema=schema, model=generator)


def _stable_diffusion(schema: ImageSchema, settings: StableDiffusionSettings) -> TextToImageGenerator:
    """A local text-to-image pipeline (random = text-to-image, variation = image-to-image),
    prompted from the public schema."""
    options = settings.model_dump()
    prompts = class_prompts(schema, options.pop("prompts"), options.pop("class_prompts"), options.pop("styles"))
    model = _required_model(
        options.pop("model"),
        "stable_diffusion",
        "a local diffusers text-to-image pipeline directory (e.g. Stable Diffusion saved by save_pretrained)",
    )
    generator = _extra("stable_diffusion", "stable_diffusion").StableDiffusionImageGenerator(
        model, image_size=(schema.height, schema.width), channels=schema.channels, **options
    )
    return TextToImageGenerator(schema=schema, model=generator, prompts=prompts)


def _retrieval(
    schema: ImageSchema, folder: PublicImageFolder, embed: Callable[[np.ndarray], np.ndarray]
) -> RetrievalSimulator:
    """The public image folder as the generator, its neighbourhoods taken in the vote's embedding."""
    public = folder.load((schema.height, schema.width), schema.channels)
    labels = public[LABEL].to_numpy() if folder.labelled else None
    return RetrievalSimulator(schema=schema, images=images_of(public, schema), labels=labels, embed=embed)


def _generator(
    schema: ImageSchema,
    settings: ImageGeneratorSettings,
    public_images: PublicImageFolder,
    embed: Callable[[np.ndarray], np.ndarray],
) -> ImageGenerator:
    """The configured generator: the glyph simulator, a diffusion or text-to-image model, or
    the retrieval simulator over the public image folder."""
    if settings.backend == "diffusion":
        return _diffusion(schema, settings.diffusion)
    if settings.backend == "stable_diffusion":
        return _stable_diffusion(schema, settings.stable_diffusion)
    if settings.backend == "retrieval":
        return _retrieval(schema, public_images, embed)
    simulator = settings.simulator
    return GlyphSimulator(
        schema=schema, fonts=discover_fonts(simulator.font_folders), bounds=GlyphBounds(**simulator.bounds.model_dump())
    )


def build_modality(
    schema_json: Mapping[str, Any], settings: ImageSettings, public_images: PublicImageFolder
) -> ImageModality:
    """Build the image modality from the public schema, the settings and the public image folder.

    Args:
        schema_json: The public image schema (see ``dp_synth.modalities.image.modality.parse_image_schema``).
        settings: The job's settings: ``generator`` (``backend`` and its settings, the
            ``variation`` schedule, or the retrieval simulator's ``neighbourhood``, and
            ``lookahead`` L) and ``embedding`` (``pool``, the
            average-pooling factor of the pixel embedding, and ``encoder``: a local pretrained
            image encoder, null: pixels, with its ``batch_size`` and ``device``).
        public_images: The declared-public image folder; read only by the retrieval backend.
    """
    schema = parse_image_schema(schema_json)
    generator, encoder_settings = settings.generator, settings.embedding.encoder
    encoder = None if encoder_settings.model is None else ImageEncoder(**encoder_settings.model_dump())
    pool = settings.embedding.pool
    schedule = generator.retrieval.neighbourhood if generator.backend == "retrieval" else generator.variation
    modality = ImageModality(
        schema=schema,
        generator=_generator(schema, generator, public_images, partial(embed_images, pool=pool, encoder=encoder)),
        schedule=VariationSchedule(**schedule.model_dump()),
        lookahead=generator.lookahead,
        pool=pool,
        encoder=encoder,
    )
    logger.info("Image generator: %s, lookahead L=%d", modality.generator.description, modality.lookahead)
    return modality


def load_private_images(private_raw: pd.DataFrame, modality: ImageModality, on_invalid: OnInvalid) -> pd.DataFrame:
    """The private images fitted to the public schema, invalid ones handled as ``on_invalid``
    says (``pe_nodes.load_private_rows``; the image job reads with the pandas engine only)."""
    schema = modality.schema
    check = RowCheck(
        problems=partial(image_problems, schema=schema),
        describe=partial(describe_image_problems, schema=schema),
        conform=partial(check_images, schema=schema),
        columns=f"{LABEL} string, {IMAGE} array<float>",
    )
    return load_private_rows(private_raw, check, on_invalid)


def load_reference_images(
    reference_raw: pd.DataFrame, modality: ImageModality, settings: ImageSettings
) -> pd.DataFrame:
    """The held-out images fitted to the public schema as the private ones are (``dp.on_invalid``)."""
    return check_images(reference_raw, modality.schema, on_invalid=settings.dp.on_invalid)


def evaluate_synthetic_images(
    synthetic_data: pd.DataFrame,
    private_table: pd.DataFrame,
    private_embeddings: EmbeddedRows,
    reference_table: pd.DataFrame,
    reference_summary: EmbeddedReference,
    modality: ImageModality,
    settings: ImageSettings,
) -> dict[str, Any]:
    """Fidelity and utility of the released images (diagnostics for the data owner, not DP).

    - fidelity: Frechet distance of embeddings (the encoder's, else pixels; with FID's
      Inception-v3 it is the FID) to the held-out images, beside the private images' own distance
      (what real data reaches), and the embedding's name (``pixels``, ``inception``,
      ``transformers``);
    - utility: accuracy and macro-F1 on the held-out images of a logistic regression on pixels
      trained on the synthetic images, and on the private images (the non-private upper bound).

    The private and held-out images come already embedded (by the loop and by its quality
    diagnostic), so an encoder does not run over them twice.
    """
    seed = settings.evaluation.seed
    pixels = {
        name: modality.pixels(table)
        for name, table in (
            ("synthetic", synthetic_data),
            ("real_train", private_table),
            ("reference", reference_table),
        )
    }
    reference_labels = reference_table[LABEL].to_numpy()
    report = {
        "rows": len(synthetic_data),
        "fidelity": {
            "embedding": "pixels" if modality.encoder is None else modality.encoder.kind,
            "frechet_distance": frechet_distance(
                GaussianFit.of(modality.features(synthetic_data)), reference_summary.fit
            ),
            "frechet_distance_real_train": frechet_distance(
                GaussianFit.of(private_embeddings.embeddings), reference_summary.fit
            ),
        },
        "utility": {
            name: classifier_accuracy(
                pixels[name], table[LABEL].to_numpy(), pixels["reference"], reference_labels, seed
            )
            for name, table in (("synthetic", synthetic_data), ("real_train", private_table))
        },
    }
    logger.info(
        "Evaluation of %d released images: accuracy %.4f (private images %.4f), Frechet distance on %s %.4f (private %.4f)",
        report["rows"],
        report["utility"]["synthetic"]["accuracy"],
        report["utility"]["real_train"]["accuracy"],
        report["fidelity"]["embedding"],
        report["fidelity"]["frechet_distance"],
        report["fidelity"]["frechet_distance_real_train"],
    )
    return report


def plot_image_grid(synthetic_data: pd.DataFrame, modality: ImageModality, settings: ImageSettings) -> Figure:
    """A grid of released images: one row per class, ``evaluation.grid_columns`` images each."""
    columns, rng = settings.evaluation.grid_columns, np.random.default_rng(settings.evaluation.seed)
    classes = modality.classes
    figure, axes = plt.subplots(len(classes), columns, figsize=(columns * 0.8, len(classes) * 0.8), squeeze=False)
    for row, label in enumerate(classes):
        members = synthetic_data[synthetic_data[LABEL] == label]
        chosen = members.iloc[rng.choice(len(members), size=min(columns, len(members)), replace=False)]
        images = images_of(chosen, modality.schema)
        for column, axis in enumerate(axes[row]):
            axis.axis("off")
            if column < len(images):
                image = images[column]
                axis.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0.0, vmax=1.0)
        axes[row, 0].set_title(label, fontsize=7, loc="left")
    figure.suptitle("Released images per class")
    figure.tight_layout()
    plt.close("all")  # the catalog saves the figure; pyplot must not keep it alive
    return figure
