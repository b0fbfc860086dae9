"""The image job's settings (``image:`` in ``conf/base/parameters_image.yml``), defaults in code.

The parameter file shows what users change: the budget, T, N, the released rows and the
generator (the offline glyph simulator, a local diffusion or text-to-image model, or a public
image folder).
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


class StableDiffusionSettings(Section):
    """``image.generator.stable_diffusion``: a local diffusers text-to-image pipeline (Stable
    Diffusion 1.x or 2.x, SDXL...): random API = text-to-image, variation API = image-to-image.

    Prompts are built from public fields only: each class's prompts are ``prompts`` (or its own
    list in ``class_prompts``), ``str.format`` templates with ``{label}`` (the class name) and
    ``{description}`` (the schema's ``class_descriptions`` entry, else the name), each repeated
    once per style word with ", <style>" appended; a candidate is drawn from one of them at
    random and varied with the same one.

    Attributes:
        model: The local pipeline directory; required with ``backend: stable_diffusion``.
        allow_download: Never download at run time unless set.
        device: ``auto`` (cuda if available), ``cpu`` or ``cuda``; CUDA runs in float16.
        attention_slicing: Compute attention in slices on CUDA: less GPU memory, less speed (an
            SD-1.5-sized model on an H100, 512 x 512, 50 steps, batch 8: 1.1 images/s with it,
            2.7 without); for a GPU that runs out of memory.
        num_inference_steps: Denoising steps of a text-to-image sample.
        guidance_scale: Classifier-free guidance weight (1 or less: none).
        batch_size: Images per pipeline call.
        resolution: Side of the square images the model draws (resized to the schema's size);
            ``None``: the model's own (512 for SD 1.5).
        prompts: The prompt templates of every class.
        class_prompts: Templates that replace ``prompts`` for some classes.
        styles: Optional style words.
        negative_prompt: What no image should show, or ``None``.
    """

    model: str | None = None
    allow_download: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    attention_slicing: bool = False
    num_inference_steps: PositiveInt = 50
    guidance_scale: Annotated[float, Field(ge=0.0)] = 7.5
    batch_size: PositiveInt = 8
    resolution: PositiveInt | None = None
    prompts: list[str] = ["a photo of {description}"]
    class_prompts: dict[str, list[str]] = {}
    styles: list[str] = []
    negative_prompt: str | None = None


class RetrievalSettings(Section):
    """``image.generator.retrieval``: the public folder ``image.public_images`` as the generator.

    Attributes:
        neighbourhood: r(t), the share of a class's public images (all of them, when unlabelled)
            that a survivor may be replaced by: its ``ceil(r x m)`` nearest. Narrower than the
            simulator's width: at epsilon 1 on the digits, r0 = 0.5, rf = 0.05 loses 0.03
            accuracy (3 seeds).
    """

    neighbourhood: ScheduleSettings = ScheduleSettings(r0=0.1, rf=0.01, gamma=1.0)


class ImageGenerator(Section):
    """``image.generator``.

    Attributes:
        backend: ``simulator`` (the offline default), ``diffusion`` (a local ``UNet2DModel``),
            ``stable_diffusion`` (a local text-to-image pipeline) or ``retrieval`` (the public
            image folder ``image.public_images`` of the catalog).
        simulator: The glyph simulator's settings.
        diffusion: The diffusion model's settings.
        stable_diffusion: The text-to-image model's settings.
        retrieval: The retrieval simulator's settings.
        variation: r(t): the simulator's perturbation width (share of each parameter's range),
            or the diffusion models' strength (the retrieval simulator has its own).
        lookahead: L, vote on the mean embedding of L variations of each candidate (0: off).
    """

    backend: Literal["simulator", "diffusion", "stable_diffusion", "retrieval"] = "simulator"
    simulator: SimulatorSettings = SimulatorSettings()
    diffusion: DiffusionSettings = DiffusionSettings()
    stable_diffusion: StableDiffusionSettings = StableDiffusionSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    variation: ScheduleSettings = ScheduleSettings(r0=0.5, rf=0.05, gamma=1.0)
    lookahead: Annotated[int, Field(ge=0)] = 0


class EncoderSettings(Section):
    """``image.embedding.encoder``: a pretrained image encoder instead of pixels, for the vote
    and the Frechet distance (``encoders.ImageEncoder``).

    Attributes:
        model: A local transformers image model directory with its image processor (CLIP, ViT,
            DINOv2: L2-normalised features), or a TorchScript Inception-v3 (FID's network, a
            ``.pt`` file or a folder holding one: raw pool features, so the Frechet distance is
            the FID); ``None``: pixels.
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
    epsilon = 1). The image job reads its private images with the pandas engine only."""

    engine: Literal["pandas"] = "pandas"

    dp: PrivacySettings = PrivacySettings()
    pe: EvolutionSettings = EvolutionSettings()
    release: ReleaseSettings = ReleaseSettings()
    generator: ImageGenerator = ImageGenerator()
    embedding: ImageEmbedding = ImageEmbedding()
    evaluation: ImageEvaluation = ImageEvaluation()
