"""A real OpenAI-compatible HTTP server on loopback with scripted answers, for tests."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Reply:
    """One scripted answer: status, JSON body (a canned completion when None), headers, delay."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    """One request the server received, with lower-cased header names."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeServer:
    """An OpenAI-compatible server answering scripted replies first, then canned completions.

    A canned completion is ``"completion of <prompt>"``; a prompt ``"slow:<seconds>:..."`` is
    answered after that delay, to shuffle the order in which concurrent requests finish.
    """

    def __init__(self) -> None:
        self.script: list[Reply] = []
        self.fail_from_request: int | None = None  # from this request on (counting from 1), answer 401
        self.requests: list[Recorded] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                reply = server.record(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                try:
                    time.sleep(reply.delay or server.delay_for(body))
                finally:
                    with server.lock:
                        server.in_flight -= 1
                payload = json.dumps(server.canned(self.path, body) if reply.body is None else reply.body)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def record(self, request: Recorded) -> Reply:
        with self.lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.fail_from_request is not None and len(self.requests) >= self.fail_from_request:
                return Reply(status=401, body={"error": {"message": "invalid key"}})
            return self.script.pop(0) if self.script else Reply()

    @staticmethod
    def prompt_of(body: dict[str, Any]) -> str:
        return body["messages"][0]["content"] if "messages" in body else body["prompt"]

    def delay_for(self, body: dict[str, Any]) -> float:
        prompt = self.prompt_of(body)
        return float(prompt.split(":")[1]) if prompt.startswith("slow:") else 0.0

    def canned(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if "logprobs" in body and "/chat/" not in path:
            return self.logprobs(body["prompt"], echo=bool(body.get("echo")))
        text = f"completion of {self.prompt_of(body)}"
        chat = "/chat/completions" in path
        choice = {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
        return {"choices": [{"index": 0, **choice}]}

    @staticmethod
    def logprobs(prompt: str, echo: bool) -> dict[str, Any]:
        """A completion with log-probabilities. Echoed: the prompt's words (with their leading
        spaces) as tokens, each of log-probability -0.1 per character (the first: none). Else the
        next token's top log-probabilities: " a" likeliest until the text after the last "Text:"
        holds two words, then a line break."""
        if echo:
            tokens = re.findall(r"\s*\S+", prompt)
            offsets = [sum(map(len, tokens[:index])) for index in range(len(tokens))]
            logprobs = [None, *(-0.1 * len(token) for token in tokens[1:])]
            text, top = prompt + " x", None
        else:
            words = len(prompt.rsplit("Text:", 1)[-1].split())
            top = [{"\n": -0.1, " a": -3.0} if words >= 2 else {" a": -0.3, " b": -1.5, "\n": -3.0}]
            tokens, logprobs, offsets = [next(iter(top[0]))], [-0.1], [len(prompt)]
            text = tokens[0]
        choice = {"tokens": tokens, "token_logprobs": logprobs, "text_offset": offsets, "top_logprobs": top}
        return {"choices": [{"index": 0, "text": text, "logprobs": choice}]}


@pytest.fixture
def llm_server() -> Iterator[FakeServer]:
    """A running ``FakeServer`` on loopback."""
    fake = FakeServer()
    thread = threading.Thread(target=fake.httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()
