"""The retrieval simulator's default demo: glyph renders written once as a public image folder.

The renders come from the public schema (each class's glyph) and the glyph simulator's public
parameter ranges, so the folder holds nothing private. Usage (``make image-public-glyphs``)::

    python -m dp_synth.modalities.image.public_glyphs --schema data/01_raw/digits/schema.json \\
        --folder data/02_intermediate/image/public_glyphs --per-class 200 --seed 0
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from dp_synth.modalities.image.glyphs import discover_fonts
from dp_synth.modalities.image.modality import GlyphSimulator, ImageSchema, images_of, parse_image_schema


def write_glyph_folder(schema: ImageSchema, folder: Path, per_class: int, seed: int) -> int:
    """Render ``per_class`` random glyphs of every class into ``folder/<class>/<n>.png``.

    The folder appears whole or not at all: the images are written next to it, then moved.

    Args:
        schema: The classes, their glyphs, the image size and channels.
        folder: The folder to create.
        per_class: Images per class.
        seed: Seed of the glyph parameters.

    Returns:
        The number of images written.

    Raises:
        FileExistsError: if ``folder`` exists (it is never overwritten).
    """
    if folder.exists():
        raise FileExistsError(f"{folder} exists; delete it to render the glyphs again")
    simulator = GlyphSimulator(schema=schema, fonts=discover_fonts())
    rng = np.random.default_rng(seed)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for label in schema.classes:
        (partial / label).mkdir(parents=True)
        pixels = (images_of(simulator.random([label] * per_class, rng), schema) * 255).round().astype(np.uint8)
        for index, image in enumerate(pixels):
            Image.fromarray(image[..., 0] if schema.channels == 1 else image).save(partial / label / f"{index:05d}.png")
    partial.rename(folder)
    return per_class * len(schema.classes)


def main() -> None:
    """Write the folder named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schema", type=Path, required=True, help="the public image schema (JSON)")
    parser.add_argument("--folder", type=Path, required=True, help="the folder to create")
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    schema = parse_image_schema(json.loads(arguments.schema.read_text()))
    count = write_glyph_folder(schema, arguments.folder, arguments.per_class, arguments.seed)
    print(f"wrote {count} public glyph images to {arguments.folder}")


if __name__ == "__main__":
    main()
