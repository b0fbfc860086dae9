"""Fixtures of the image tests: one torch thread, and no network."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """The tiny models gain nothing from threads, and on a busy machine they spin-wait: 1 s becomes 10."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hugging Face offline, and any connection attempt fails the test."""

    def refuse(*args: object) -> None:
        raise AssertionError("the code under test tried to reach the network")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
