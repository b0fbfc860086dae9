"""The image job's measured figures (``make bench-image-figures``; docs/benchmarks.md).

1. Quality on scikit-learn's digits: ``kedro run --pipelines=image`` at the defaults (T = 10,
   N = 300, pixel embedding) with each generator (the glyph simulator; the retrieval simulator
   over the glyph demo folder, which ``make image-public-glyphs`` writes), at each epsilon and
   seed; per run the held-out accuracy of a logistic regression trained on the released images
   and the Frechet distance of the released images to the held-out ones on the embedding
   (pixels: no Inception weights are available offline, so this is not the FID's scale).
2. Throughput of the Stable Diffusion path: the tests' tiny random Stable Diffusion (16 x 16
   images, 8 x 8 latents) through the real diffusers pipelines, text-to-image and
   image-to-image, in images per second. It times the machinery, not a real model.

Usage::

    python benchmarks/image_figures.py [--epsilons 1,10] [--seeds 0,1,2]
        [--generators simulator,retrieval] [--throughput-images 64] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from bench import PROJECT_ROOT, run_once

from dp_synth.modalities.image.stable_diffusion import StableDiffusionImageGenerator

METRICS = (
    ("accuracy", "final.utility.synthetic.accuracy"),
    ("Frechet distance", "final.fidelity.frechet_distance"),
)
"""The columns of the quality table, and the MLflow metric of each."""


def quality_table(generators: list[str], epsilons: list[float], seeds: list[int]) -> None:
    """Run the job for every generator, epsilon and seed; print one row per (generator, epsilon)."""
    print(
        "| generator | epsilon | accuracy (seeds " + ", ".join(map(str, seeds)) + ") | mean | Frechet distance | mean |"
    )
    print("| --- | ---: | --- | ---: | --- | ---: |")
    reference: dict[str, float] = {}
    for generator in generators:
        for epsilon in epsilons:
            params = f"image.dp.seed={{seed}},image.dp.epsilon={epsilon},image.generator.backend={generator}"
            runs = [run_once("image", params.format(seed=seed))[1] for seed in seeds]
            cells = []
            for _, metric in METRICS:
                values = [metrics[metric] for metrics in runs]
                cells += [", ".join(f"{value:.3f}" for value in values), f"{statistics.mean(values):.3f}"]
            print(f"| {generator} | {epsilon:g} | " + " | ".join(cells) + " |", flush=True)
            reference = runs[0]
    print(
        f"trained on the private images (the non-private reference): accuracy "
        f"{reference['final.utility.real_train.accuracy']:.3f}, Frechet distance "
        f"{reference['final.fidelity.frechet_distance_real_train']:.3f}"
    )


def throughput(images: int, device: str, steps: int) -> None:
    """Images per second of the tiny Stable Diffusion's random and variation APIs (median of 3)."""
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from tiny_diffusion import build_tiny_stable_diffusion

    with tempfile.TemporaryDirectory() as directory:
        generator = StableDiffusionImageGenerator(
            build_tiny_stable_diffusion(Path(directory) / "sd"),
            image_size=(8, 8),
            channels=1,
            device=device,
            num_inference_steps=steps,
            batch_size=16,
        )
    prompts = [f"a photo of the digit {index % 10}" for index in range(images)]
    start = generator.random(prompts, seed=0)  # also warms up
    for name, call in (
        ("text-to-image (random API)", lambda seed: generator.random(prompts, seed)),
        ("image-to-image at strength 0.5 (variation API)", lambda seed: generator.vary(start, prompts, 0.5, seed)),
    ):
        seconds = []
        for seed in range(3):
            began = time.perf_counter()
            call(seed)
            seconds.append(time.perf_counter() - began)
        print(f"{name:<48} {images / statistics.median(seconds):8.1f} images/s")
    print(
        f"(tiny Stable Diffusion on {generator.device}, {steps} steps, guidance 7.5, batches of 16, "
        f"{images} images, torch threads {torch.get_num_threads()})"
    )


def main() -> None:
    """Print the quality table, then the throughput."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generators", default="simulator,retrieval")
    parser.add_argument("--epsilons", default="1,10")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--throughput-images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="denoising steps in the throughput figure")
    parser.add_argument("--device", default="cpu", help="device of the throughput figure (cpu, cuda, auto)")
    arguments = parser.parse_args()
    if arguments.generators:
        quality_table(
            arguments.generators.split(","),
            [float(value) for value in arguments.epsilons.split(",")],
            [int(value) for value in arguments.seeds.split(",")],
        )
    if arguments.throughput_images:
        throughput(arguments.throughput_images, arguments.device, arguments.steps)


if __name__ == "__main__":
    main()
