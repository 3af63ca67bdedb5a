"""Fixtures for the Space: its module imported from ``space/``, a tiny responder, a served app on loopback."""

from __future__ import annotations

import importlib
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

SPACE_DIR = Path(__file__).resolve().parents[2] / "space"

# The app must start with no network: no analytics, no version check, no Hub.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def space_app():
    """``space/app.py`` as a module (the Space folder is not a package)."""
    sys.path.insert(0, str(SPACE_DIR))
    try:
        return importlib.import_module("app")
    finally:
        sys.path.remove(str(SPACE_DIR))


#: A message on which the recording responder fails, as a model might, with a path in the error.
FAIL_MESSAGE = "please fail now"


class RecordingResponder:
    """The real tiny-model responder, recording the history each call received; fails on ``FAIL_MESSAGE``."""

    def __init__(self, responder):
        self.inner = responder
        self.guard = responder.guard
        self.calls: list[tuple[list[str], str]] = []
        self._lock = threading.Lock()

    def respond(self, history, message):
        with self._lock:
            self.calls.append((list(history), message))
        if message == FAIL_MESSAGE:
            raise RuntimeError("/secret/server/path/model.safetensors is corrupt")
        return self.inner.respond(history, message)


@pytest.fixture(scope="session")
def tiny_responder(tiny_lm_path):
    from egail.chat import EmpatheticResponder, GenerationSettings

    return EmpatheticResponder.from_pretrained(
        tiny_lm_path, settings=GenerationSettings(max_new_tokens=8, do_sample=False), device="cpu"
    )


@pytest.fixture(scope="session")
def emotion_reader(space_app):
    return space_app.EmotionReader()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served_app(space_app, tiny_responder, emotion_reader):
    """The Space served on loopback with the tiny model: (url, recording responder)."""
    recorder = RecordingResponder(tiny_responder)
    demo = space_app.build_demo(responder=recorder, emotion_reader=emotion_reader)
    port = free_port()
    demo.queue(default_concurrency_limit=space_app.CONCURRENCY_LIMIT, max_size=space_app.MAX_QUEUE_SIZE).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=False
    )
    try:
        yield f"http://127.0.0.1:{port}/", recorder
    finally:
        demo.close()
