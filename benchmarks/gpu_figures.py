"""Throughput of the image (Stable Diffusion) and text (local LLM) generator paths on a GPU.

What it measures, through the project's own code with models built from configs (random weights:
nothing is downloaded, so the figures time the compute, not the quality):

1. Image: ``StableDiffusionImageGenerator`` over a Stable-Diffusion-1.5-sized pipeline (UNet
   ``(320, 640, 1280, 1280)`` with cross-attention 768, SD's ``AutoencoderKL``, a CLIP ViT-L/14
   text encoder, PNDM), saved with ``save_pretrained`` and loaded by the generator (float16 on
   CUDA, PyTorch's SDPA attention, as the project does by default). Its random API
   (text-to-image) and variation API (image-to-image at ``--strength``) at 512 x 512, in images
   per second after a warm-up; then the random API again with attention slicing (the
   ``attention_slicing`` setting, for GPUs short of memory).
2. Text: ``TextModality.random_population`` and ``.vary`` over ``HuggingFaceGenerator`` and a
   Qwen2-0.5B-sized causal LM (saved in bfloat16, as Qwen's checkpoints are, so ``dtype: auto``
   runs bfloat16 on CUDA) with a byte-level BPE tokenizer trained here on the bundled AG News
   texts and a ChatML chat template; the project's default generation settings (batch 8,
   ``max_new_tokens`` 96, temperatures 1.0 and r(1) of 10). Texts and generated tokens per second.
   Random weights rarely sample the end of text, so every completion runs the full 96 tokens.

The modality modules are imported without ``dp_synth/__init__`` (the tabular Python API and
Kedro's runner), so a bare GPU machine needs only diffusers, pydantic and kedro (its
``kedro.utils``) added.

Usage::

    python benchmarks/gpu_figures.py --tiny            # CPU smoke test: tiny models, seconds
    python benchmarks/gpu_figures.py [--steps 50] [--image-batch 8] [--images 16]
        [--texts 32] [--out figures.md]                # real sizes, on CUDA when available
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_PROMPTS = ["a photo of a handwritten digit {i}", "a photo of a red sports car number {i}"]


@dataclass(frozen=True)
class Row:
    """One line of the table: a timed call of one API."""

    path: str
    api: str
    model: str
    setting: str
    items: int
    seconds: float
    tokens: int | None = None

    def cells(self) -> list[str]:
        rate = self.items / self.seconds
        tokens = "" if self.tokens is None else f"{self.tokens / self.seconds:,.0f}"
        return [
            self.path,
            self.api,
            self.model,
            self.setting,
            str(self.items),
            f"{self.seconds:.2f}",
            f"{rate:.2f}",
            tokens,
        ]


def import_modalities_without_package_init() -> None:
    """Register ``dp_synth`` as a bare package over ``src/dp_synth``: importing its modality
    modules then skips ``dp_synth/__init__`` (``dp_synth.api``: Kedro's runner, the tabular job)."""
    if "dp_synth" not in sys.modules:
        package = types.ModuleType("dp_synth")
        package.__path__ = [str(PROJECT_ROOT / "src" / "dp_synth")]
        sys.modules["dp_synth"] = package


def timed(call: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``call(*args, **kwargs)`` and its wall time in seconds (the device synchronised after it)."""
    started = time.perf_counter()
    result = call(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - started


def build_stable_diffusion(directory: Path, *, tiny: bool, half: bool) -> Path:
    """Save a random Stable Diffusion 1.5-sized pipeline (``tiny``: the tests' sizes) built from configs."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tokenizers import pre_tokenizers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    # As tests/tiny_diffusion.py: a CLIP tokenizer of byte symbols, no merges (a token per character).
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    words = [*symbols, *(symbol + "</w>" for symbol in symbols), "<|startoftext|>", "<|endoftext|>"]
    vocab = {word: index for index, word in enumerate(words)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    widths, vae_widths = ((8, 16), (8, 16)) if tiny else ((320, 640, 1280, 1280), (128, 256, 512, 512))
    depth = len(widths)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8 if tiny else 64,
        in_channels=4,
        out_channels=4,
        block_out_channels=widths,
        layers_per_block=1 if tiny else 2,
        down_block_types=("CrossAttnDownBlock2D",) * (depth - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (depth - 1),
        cross_attention_dim=32 if tiny else 768,
        attention_head_dim=2 if tiny else 8,
        norm_num_groups=4 if tiny else 32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=vae_widths,
        layers_per_block=1 if tiny else 2,
        down_block_types=("DownEncoderBlock2D",) * len(vae_widths),
        up_block_types=("UpDecoderBlock2D",) * len(vae_widths),
        norm_num_groups=4 if tiny else 32,
        sample_size=16 if tiny else 512,
    )
    text = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2)
    if not tiny:  # CLIP ViT-L/14's text tower
        text = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab) if tiny else 49408,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            projection_dim=768,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"],
            **text,
        )
    )
    scheduler = PNDMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", skip_prk_steps=True, steps_offset=1
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    if half:
        pipeline.to(torch.float16)  # the generator loads float16 on CUDA anyway: half the bytes to write
    pipeline.save_pretrained(directory)
    return directory


def image_figures(args: argparse.Namespace, device: str, work: Path) -> list[Row]:
    """Time the Stable Diffusion generator's random and variation APIs."""
    from dp_synth.modalities.image.stable_diffusion import StableDiffusionImageGenerator

    _, seconds = timed(build_stable_diffusion, work / "sd", tiny=args.tiny, half=device == "cuda")
    print(f"built and saved the Stable Diffusion pipeline in {seconds:.1f} s", flush=True)
    generator, seconds = timed(
        StableDiffusionImageGenerator,
        work / "sd",
        image_size=(16, 16) if args.tiny else (512, 512),
        channels=3,
        device=device,
        num_inference_steps=args.steps,
        batch_size=args.image_batch,
    )
    unet = generator._text_to_image.unet
    print(
        f"loaded in {seconds:.1f} s: UNet {sum(p.numel() for p in unet.parameters()) / 1e6:.0f} M parameters, "
        f"{unet.dtype}, resolution {generator.resolution}",
        flush=True,
    )
    model = "SD-1.5-sized" if not args.tiny else "tiny SD"
    side = generator.resolution
    prompts = [IMAGE_PROMPTS[i % 2].format(i=i) for i in range(args.images)]
    starts = np.random.default_rng(0).random((args.images, *generator.image_size, 3), dtype=np.float32)
    warm = args.image_batch
    generator.random(prompts[:warm], seed=1)
    generator.vary(starts[:warm], prompts[:warm], args.strength, seed=1)
    images, seconds = timed(generator.random, prompts, seed=2)
    precision = str(unet.dtype).removeprefix("torch.") + (" SDPA" if device == "cuda" else "")
    setting = f"{side}x{side}, {args.steps} steps, batch {args.image_batch}, CFG 7.5, {precision}"
    rows = [Row("image", "random (txt2img)", model, setting, len(prompts), seconds)]
    print(f"random: finite share of pixels {np.isfinite(images).mean():.3f}", flush=True)
    _, seconds = timed(generator.vary, starts, prompts, args.strength, seed=3)
    vary_setting = setting.replace(f"{args.steps} steps", f"strength {args.strength}")
    rows.append(Row("image", "variation (img2img)", model, vary_setting, len(prompts), seconds))
    if device == "cuda":  # the same call with attention slicing (image.generator.stable_diffusion.attention_slicing)
        generator._text_to_image.enable_attention_slicing()
        generator.random(prompts[:warm], seed=1)
        _, seconds = timed(generator.random, prompts, seed=2)
        rows.append(
            Row("image", "random, slicing on", model, setting.replace(" SDPA", "+slicing"), len(prompts), seconds)
        )
    return rows


def train_tokenizer(texts: list[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer trained on ``texts`` with Qwen's special tokens and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    fast.chat_template = CHATML
    return fast


def build_causal_lm(directory: Path, texts: list[str], *, tiny: bool) -> Path:
    """Save a random Qwen2-0.5B-sized causal LM (``tiny``: 2 layers of width 32) and its tokenizer."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokenizer = train_tokenizer(texts, 512 if tiny else 16384)
    size = dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14)
    size |= dict(num_key_value_heads=2, vocab_size=151936)  # Qwen2-0.5B; ids past the tokenizer's decode to ""
    if tiny:
        size = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        size |= dict(num_key_value_heads=1, vocab_size=len(tokenizer))
    config = Qwen2Config(
        max_position_embeddings=32768,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **size,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def text_figures(args: argparse.Namespace, device: str, work: Path) -> list[Row]:
    """Time the text modality's random and variation APIs over the local transformers generator."""
    from dp_synth.modalities.text.llm_local import HuggingFaceGenerator
    from dp_synth.modalities.text.modality import (
        TEXT,
        PromptTemplates,
        SentenceEmbedder,
        TextModality,
        load_corpus,
        parse_corpus_schema,
    )
    from dp_synth.modalities.text.settings import TextSettings
    from dp_synth.pe.schedule import VariationSchedule

    settings = TextSettings().generator  # the project's defaults
    schema = parse_corpus_schema(json.loads((PROJECT_ROOT / "data/01_raw/agnews/schema.json").read_text()))
    raw = pd.read_csv(PROJECT_ROOT / "data/01_raw/agnews/agnews_train.csv")
    corpus = load_corpus(raw, schema)
    _, seconds = timed(build_causal_lm, work / "lm", corpus[TEXT].tolist(), tiny=args.tiny)
    print(f"built and saved the causal LM in {seconds:.1f} s", flush=True)
    options = settings.huggingface.model_dump() | {"model": str(work / "lm"), "device": device}
    generator = HuggingFaceGenerator(**options)
    model, tokenizer, chat = generator._load()
    print(
        f"LM: {sum(p.numel() for p in model.parameters()) / 1e6:.0f} M parameters, {model.dtype}, "
        f"chat template {chat}, {model.config._attn_implementation} attention",
        flush=True,
    )
    counts = {"new": 0, "prompt": 0, "rows": 0}
    generate = model.generate

    def counting_generate(**kwargs: Any) -> torch.Tensor:
        output = generate(**kwargs)
        new = output[:, kwargs["input_ids"].shape[1] :]
        counts["new"] += int((new != tokenizer.pad_token_id).sum())
        counts["prompt"] += int(kwargs["attention_mask"].sum())
        counts["rows"] += new.shape[0]
        return output

    model.generate = counting_generate  # counts the tokens; the project's call is unchanged
    modality = TextModality(
        schema=schema,
        generator=generator,
        embedder=SentenceEmbedder(),
        prompts=PromptTemplates(**settings.prompts.model_dump()),
        mask_schedule=VariationSchedule(**settings.variation.mask_share.model_dump()),
        temperature_schedule=VariationSchedule(**settings.variation.temperature.model_dump()),
        random_temperature=settings.random_temperature,
        paraphrase_share=settings.variation.paraphrase_share,
        max_new_tokens=settings.max_new_tokens,
    )
    per_class = max(1, args.texts // len(schema.classes))
    sizes = dict.fromkeys(schema.classes, per_class)
    survivors = corpus.sample(n=per_class * len(schema.classes), random_state=0).reset_index(drop=True)
    rng = np.random.default_rng(0)
    modality.random_population(dict.fromkeys(schema.classes, max(1, settings.huggingface.batch_size // 4)), rng)
    rows = []
    name = "Qwen2-0.5B-sized" if not args.tiny else "tiny Qwen2"
    setting = f"batch {settings.huggingface.batch_size}, max_new_tokens {settings.max_new_tokens}, {model.dtype}"
    for api, call, call_args in (
        ("random", modality.random_population, (sizes, rng)),
        ("variation (fill-in)", modality.vary, (survivors, 1, 10, rng)),
    ):
        counts.update(new=0, prompt=0, rows=0)
        texts, seconds = timed(call, *call_args)
        prompt_tokens = counts["prompt"] / max(counts["rows"], 1)
        rows.append(
            Row("text", api, name, f"{setting}, prompt ~{prompt_tokens:.0f} tok", len(texts), seconds, counts["new"])
        )
    return rows


def print_table(rows: list[Row], device: str, out: Path | None, *, show: bool = True) -> None:
    """Print the figures as a Markdown table (when ``show``) and write it to ``out``."""
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    header = ["path", "API", "model", "setting", "items", "seconds", "items/s", "new tokens/s"]
    lines = [
        f"Device: {name}; torch {torch.__version__}",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
    ]
    text = "\n".join(lines)
    if show:
        print(text, flush=True)
    if out is not None:
        out.write_text(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models and counts: a CPU smoke test")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--steps", type=int, default=50, help="denoising steps of a text-to-image sample (the default)")
    parser.add_argument("--image-batch", type=int, default=8, help="images per pipeline call")
    parser.add_argument("--images", type=int, default=16, help="images timed per API")
    parser.add_argument("--strength", type=float, default=0.5, help="strength of the image variation")
    parser.add_argument("--texts", type=int, default=32, help="texts timed per API")
    parser.add_argument("--skip", choices=["image", "text"], help="leave one path out")
    parser.add_argument("--out", type=Path, help="also write the table here")
    args = parser.parse_args()
    if args.tiny:
        args.steps, args.image_batch, args.images, args.texts = min(args.steps, 3), 2, 4, 4
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import_modalities_without_package_init()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as work:
        for path, figures in (("image", image_figures), ("text", text_figures)):
            if args.skip == path:
                continue
            try:
                rows += figures(args, device, Path(work))
            except Exception as error:  # report and go on to the other path
                logging.exception("the %s path failed: %s", path, error)
            print_table(rows, device, args.out, show=False)  # what is done so far, should a later step stop
    print_table(rows, device, args.out)


if __name__ == "__main__":
    main()
