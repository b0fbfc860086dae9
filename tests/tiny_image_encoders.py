"""Tiny, randomly initialised image encoders for tests, built locally (nothing is downloaded): a
CLIP with its image processor, and a TorchScript stand-in for FID's Inception-v3."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel


def build_tiny_clip(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny randomly initialised CLIP (text and vision towers of width 16, 16x16 inputs,
    projection to 8 dimensions) with its image processor in ``directory``."""
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config={
            "vocab_size": 64,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "bos_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
        vision_config={
            "image_size": 16,
            "patch_size": 4,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
        },
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16}).save_pretrained(directory)
    return directory


class _TinyInception(torch.nn.Module):
    """Called as FID's TorchScript Inception-v3 is: uint8 RGB images (n, 3, H, W) in, 12 pool
    features out with ``return_features=True`` (else 5 logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 12, kernel_size=5, stride=4)
        self.head = torch.nn.Linear(12, 5)

    def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        features = self.conv(images.float() / 127.5 - 1.0).relu().mean(dim=(2, 3))
        return features if return_features else self.head(features)


def build_tiny_inception(directory: Path, *, seed: int = 0) -> Path:
    """Save a tiny random TorchScript network with the call signature of FID's Inception-v3
    (``inception-2015-12-05.pt``) as ``directory/tiny-inception.pt``; returns ``directory``."""
    torch.manual_seed(seed)
    directory.mkdir(parents=True, exist_ok=True)
    torch.jit.script(_TinyInception()).save(str(directory / "tiny-inception.pt"))
    return directory
