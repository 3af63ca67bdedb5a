"""Fixtures for the Space: its emotion reader and the app served on loopback (``space_app`` and ``tiny_responder``
are in tests/conftest.py, which the reliability tests share)."""

from __future__ import annotations

import os

import pytest

from tests.space.helpers import RecordingResponder, serve_on_loopback

# The app must start with no network: no analytics, no version check, no Hub.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def emotion_reader(space_app):
    return space_app.EmotionReader()


@pytest.fixture(scope="module")
def served_app(space_app, tiny_responder, emotion_reader):
    """The Space served on loopback with the tiny model: (url, recording responder)."""
    recorder = RecordingResponder(tiny_responder)
    with serve_on_loopback(space_app, recorder, emotion_reader) as url:
        yield url, recorder
