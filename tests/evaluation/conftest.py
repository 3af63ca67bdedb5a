"""Fixtures for the evaluation tests: a small hand-built split, a toy emotion classifier, a tiny discriminator."""

from __future__ import annotations

import pytest

TURNS = [
    # (conv_id, emotion, utterances): staggered below into rows with 0, 1 and 2 earlier turns.
    ("c1", "joyful", ["I got the job!", "Congratulations, you earned it!", "I start on Monday.",
                      "Good luck on your first day!", "Thanks, I am nervous.", "That is normal, you will do great."]),
    ("c2", "sad", ["My dog died yesterday.", "I am so sorry for your loss.", "He was fourteen.",
                   "That is a long and good life."]),
    ("c3", "afraid", ["I heard a noise downstairs.", "That sounds scary, are you safe?"]),
]  # fmt: skip


def staggered_rows() -> list[dict]:
    rows = []
    for conv_id, emotion, utterances in TURNS:
        for turn, i in enumerate(range(0, len(utterances) - 1, 2), start=1):
            rows.append(
                {
                    "conv_id": conv_id,
                    "turn": turn,
                    "history": utterances[:i],
                    "prompt": utterances[i],
                    "response": utterances[i + 1],
                    "emotion": emotion,
                    "situation": None,
                    "source": "empatheticdialogues",
                }
            )
    rows.append(
        {
            "conv_id": "o1",
            "turn": 1,
            "history": [],
            "prompt": "Every day is a fresh start.",
            "response": "Every day is a fresh start.",
            "emotion": None,
            "situation": None,
            "source": "oneliners",
        }
    )
    return rows


@pytest.fixture(scope="session")
def small_split():
    """6 conversation rows (buckets 1: 3, 2: 2, 3+: 1) and one one-liner, in the trajectory schema."""
    import datasets

    from egail.data import FEATURES

    return datasets.Dataset.from_list(staggered_rows(), features=FEATURES)


@pytest.fixture(scope="session")
def toy_emotion_classifier(tiny_encoder_path):
    """An emotion classifier on the tiny random encoder: fast, and enough to exercise the code paths."""
    from egail.evaluation.emotion import SentenceEncoder, train_emotion_classifier

    texts = ["Congratulations!", "So sorry for your loss.", "Are you safe?", "Great news!", "That is sad.", "Scary!"]
    labels = ["joyful", "sad", "afraid", "joyful", "sad", "afraid"]
    return train_emotion_classifier(
        (texts, labels),
        (texts, labels),
        labels=["afraid", "joyful", "sad"],
        encoder=SentenceEncoder(tiny_encoder_path),
    )


@pytest.fixture(scope="session")
def tiny_discriminator_path(tmp_path_factory, tiny_encoder_path) -> str:
    from egail.discriminator import Discriminator, DiscriminatorConfig

    path = tmp_path_factory.mktemp("discriminator")
    Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path, max_length=64)).save_pretrained(path)
    return str(path)
