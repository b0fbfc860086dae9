"""Node functions specific to image PE: the image set, the generator, the evaluation."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from dp_synth.evaluation.embeddings import EmbeddedReference, GaussianFit, classifier_accuracy, frechet_distance
from dp_synth.modalities.image.glyphs import GlyphBounds, discover_fonts
from dp_synth.modalities.image.modality import (
    LABEL,
    DiffusionGenerator,
    GlyphSimulator,
    ImageEncoder,
    ImageGenerator,
    ImageModality,
    ImageSchema,
    check_images,
    images_of,
    parse_image_schema,
)
from dp_synth.modalities.image.settings import ImageGenerator as ImageGeneratorSettings
from dp_synth.modalities.image.settings import ImageSettings
from dp_synth.pe.schedule import VariationSchedule
from dp_synth.pe.settings import SettingsError

logger = logging.getLogger(__name__)


def _generator(schema: ImageSchema, generator: ImageGeneratorSettings) -> ImageGenerator:
    """The configured generator: the glyph simulator or a local diffusion model."""
    if generator.backend == "simulator":
        simulator = generator.simulator
        return GlyphSimulator(
            schema=schema,
            fonts=discover_fonts(simulator.font_folders),
            bounds=GlyphBounds(**simulator.bounds.model_dump()),
        )
    options = generator.diffusion.model_dump()
    if not options["model"]:
        raise SettingsError(
            "image.generator.diffusion.model is not set: point it at a local diffusers pipeline directory "
            "(a UNet2DModel with its scheduler, e.g. saved by DDPMPipeline.save_pretrained)"
        )
    try:
        from dp_synth.modalities.image.diffusion import DiffusionImageGenerator
    except ImportError as error:
        raise SettingsError(
            f"the diffusion backend needs the image extra ({error.name} is missing): "
            "pip install -e '.[image]', or make install-all"
        ) from None
    model = DiffusionImageGenerator(
        options.pop("model"), image_size=(schema.height, schema.width), channels=schema.channels, **options
    )
    return DiffusionGenerator(schema=schema, model=model)


def build_modality(schema_json: Mapping[str, Any], settings: ImageSettings) -> ImageModality:
    """Build the image modality from the public schema and the generator settings.

    Args:
        schema_json: The public image schema (see ``dp_synth.modalities.image.modality.parse_image_schema``).
        settings: The job's settings: ``generator`` (``backend``, ``simulator`` or
            ``diffusion``, and its settings, the ``variation`` schedule and ``lookahead`` L) and
            ``embedding`` (``pool``, the average-pooling factor of the pixel embedding, and
            ``encoder``: a local pretrained image encoder directory, null: pixels, with its
            ``batch_size`` and ``device``).
    """
    schema = parse_image_schema(schema_json)
    generator, encoder = settings.generator, settings.embedding.encoder
    modality = ImageModality(
        schema=schema,
        generator=_generator(schema, generator),
        schedule=VariationSchedule(**generator.variation.model_dump()),
        lookahead=generator.lookahead,
        pool=settings.embedding.pool,
        encoder=None if encoder.model is None else ImageEncoder(**encoder.model_dump()),
    )
    logger.info("Image generator: %s, lookahead L=%d", modality.generator.description, modality.lookahead)
    return modality


def load_private_images(private_raw: pd.DataFrame, modality: ImageModality) -> pd.DataFrame:
    """Check the private images against the public schema; every declared class must occur."""
    return check_images(private_raw, modality.schema, every_class=True)


def load_reference_images(reference_raw: pd.DataFrame, modality: ImageModality) -> pd.DataFrame:
    """Check the held-out images against the public schema."""
    return check_images(reference_raw, modality.schema, every_class=False)


def evaluate_synthetic_images(
    synthetic_data: pd.DataFrame,
    private_table: pd.DataFrame,
    private_embeddings: np.ndarray,
    reference_table: pd.DataFrame,
    reference_summary: EmbeddedReference,
    modality: ImageModality,
    settings: ImageSettings,
) -> dict[str, Any]:
    """Fidelity and utility of the released images (diagnostics for the data owner, not DP).

    - fidelity: Frechet distance of embeddings (the encoder's, else pixels) to the held-out
      images, beside the private images' own distance (what real data reaches);
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
            "frechet_distance": frechet_distance(
                GaussianFit.of(modality.features(synthetic_data)), reference_summary.fit
            ),
            "frechet_distance_real_train": frechet_distance(GaussianFit.of(private_embeddings), reference_summary.fit),
        },
        "utility": {
            name: classifier_accuracy(
                pixels[name], table[LABEL].to_numpy(), pixels["reference"], reference_labels, seed
            )
            for name, table in (("synthetic", synthetic_data), ("real_train", private_table))
        },
    }
    logger.info(
        "Evaluation of %d released images: accuracy %.4f (private images %.4f), Frechet distance %.4f (private %.4f)",
        report["rows"],
        report["utility"]["synthetic"]["accuracy"],
        report["utility"]["real_train"]["accuracy"],
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
