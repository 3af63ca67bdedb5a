"""Fixtures for the Space: its module imported from ``space/``, a tiny responder, a served app on loopback."""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest

from tests.space.helpers import SPACE_DIR, RecordingResponder, serve_on_loopback

# The app must start with no network: no analytics, no version check, no Hub.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def space_app():
    """``space/app.py`` as a module (the Space folder is not a package; "app" is too common a name)."""
    spec = importlib.util.spec_from_file_location("egail_space_app", SPACE_DIR / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_responder(tiny_lm_path):
    from egail.chat import EmpatheticResponder, GenerationSettings

    return EmpatheticResponder.from_pretrained(
        tiny_lm_path, settings=GenerationSettings(max_new_tokens=8, do_sample=False), device="cpu"
    )


@pytest.fixture(scope="session")
def emotion_reader(space_app):
    return space_app.EmotionReader()


@pytest.fixture(scope="module")
def served_app(space_app, tiny_responder, emotion_reader):
    """The Space served on loopback with the tiny model: (url, recording responder)."""
    recorder = RecordingResponder(tiny_responder)
    with serve_on_loopback(space_app, recorder, emotion_reader) as url:
        yield url, recorder
