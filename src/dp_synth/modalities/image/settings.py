"""The image job's settings (``image:`` in ``conf/base/parameters_image.yml``), defaults in code.

The parameter file shows what users change: the budget, T, N, the released rows and the
generator (the offline glyph simulator, or a local diffusion model).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from dp_synth.pe.settings import (
    EvolutionSettings,
    JobSettings,
    PositiveInt,
    PrivacySettings,
    ReleaseSettings,
    ScheduleSettings,
    Section,
)

Range = tuple[float, float]


class GlyphBoundsSettings(Section):
    """``image.generator.simulator.bounds``: public ranges [low, high] of the glyph parameters
    (``glyphs.GlyphBounds`` explains each and checks them)."""

    size: Range = (1.1, 1.35)
    rotation: Range = (-20.0, 20.0)
    stroke: Range = (0.0, 1.5)
    aspect: Range = (0.7, 1.0)
    offset_x: Range = (-0.08, 0.08)
    offset_y: Range = (-0.05, 0.05)


class SimulatorSettings(Section):
    """``image.generator.simulator``: glyphs rendered with fonts, offline.

    Attributes:
        font_folders: Extra .ttf/.otf folders besides matplotlib's DejaVu fonts.
        bounds: The public parameter ranges.
    """

    font_folders: list[str] = []
    bounds: GlyphBoundsSettings = GlyphBoundsSettings()


class DiffusionSettings(Section):
    """``image.generator.diffusion``: a local diffusers pipeline (``UNet2DModel`` + scheduler).

    Attributes:
        model: The local pipeline directory; required with ``backend: diffusion``.
        allow_download: Never download at run time unless set.
        device: ``auto`` (cuda if available), ``cpu`` or ``cuda``.
        num_inference_steps: Denoising steps of each sample.
        batch_size: Images per forward pass.
    """

    model: str | None = None
    allow_download: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_inference_steps: PositiveInt = 50
    batch_size: PositiveInt = 64


class ImageGenerator(Section):
    """``image.generator``.

    Attributes:
        backend: ``simulator`` (the offline default) or ``diffusion``.
        simulator: The glyph simulator's settings.
        diffusion: The diffusion model's settings.
        variation: r(t): the simulator's perturbation width (share of each parameter's range),
            or SDEdit's strength.
        lookahead: L, vote on the mean embedding of L variations of each candidate (0: off).
    """

    backend: Literal["simulator", "diffusion"] = "simulator"
    simulator: SimulatorSettings = SimulatorSettings()
    diffusion: DiffusionSettings = DiffusionSettings()
    variation: ScheduleSettings = ScheduleSettings(r0=0.5, rf=0.05, gamma=1.0)
    lookahead: Annotated[int, Field(ge=0)] = 0


class EncoderSettings(Section):
    """``image.embedding.encoder``: a pretrained image encoder instead of pixels.

    Attributes:
        model: A local transformers directory with its image processor; ``None``: pixels.
        batch_size: Images per forward pass.
        device: ``cpu``, ``cuda``...
    """

    model: str | None = None
    batch_size: PositiveInt = 64
    device: str = "cpu"


class ImageEmbedding(Section):
    """``image.embedding``.

    Attributes:
        pool: Average-pooling factor of the pixel embedding (1: raw pixels).
        encoder: A pretrained encoder, if any.
    """

    pool: PositiveInt = 1
    encoder: EncoderSettings = EncoderSettings()


class ImageEvaluation(Section):
    """``image.evaluation``: diagnostics for the data owner, not DP releases.

    Attributes:
        seed: Seed of the classifier and of the grid figure's choice of images.
        grid_columns: Images per class in ``reports/grid.png``.
    """

    seed: int = 0
    grid_columns: PositiveInt = 10


class ImageSettings(JobSettings):
    """Every setting of the image job: about 4 private images per candidate (N = 300); with many
    more candidates each one's few votes drown in the noise (N = 2,000 loses 0.1 accuracy at
    epsilon = 1)."""

    dp: PrivacySettings = PrivacySettings()
    pe: EvolutionSettings = EvolutionSettings()
    release: ReleaseSettings = ReleaseSettings()
    generator: ImageGenerator = ImageGenerator()
    embedding: ImageEmbedding = ImageEmbedding()
    evaluation: ImageEvaluation = ImageEvaluation()
