"""Helpers shared by the Space's tests."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from pathlib import Path

SPACE_DIR = Path(__file__).resolve().parents[2] / "space"

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_on_loopback(space_app, responder, emotion_reader=False):
    """Launch the Space with its own queue limits on a free loopback port; yields the URL, closes after."""
    demo = space_app.build_demo(responder=responder, emotion_reader=emotion_reader)
    port = free_port()
    demo.queue(default_concurrency_limit=space_app.CONCURRENCY_LIMIT, max_size=space_app.MAX_QUEUE_SIZE).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=False
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
