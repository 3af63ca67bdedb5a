"""The side panel's readings (VADER sentiment, nearest-centroid emotion) and the Space's metadata files."""

from __future__ import annotations

import random

import pytest
import yaml

from tests.space.helpers import SPACE_DIR


@pytest.mark.parametrize(
    ("text", "emotion"),
    [
        ("We just got engaged and I can't stop smiling!", "joy"),
        ("My dog died this morning and the house feels empty.", "sadness"),
        ("There's someone walking around outside my window at night and I'm shaking.", "fear"),
        ("He scratched my car and drove off without a word, I'm fuming.", "anger"),
    ],
)
def test_clear_emotions_are_read(emotion_reader, text, emotion):
    scores = emotion_reader.scores(text)
    assert max(scores, key=scores.get) == emotion, scores


def test_vader_labels(space_app):
    assert space_app.vader_sentiment("I love this, it's wonderful!").label == "positive"
    assert space_app.vader_sentiment("This is terrible and I hate it.").label == "negative"
    assert space_app.vader_sentiment("The bus leaves at noon.").label == "neutral"


@pytest.mark.slow
def test_emotion_reading_on_dailydialog(emotion_reader, raw_data):
    """Balanced accuracy on DailyDialog validation utterances (every emotional one, 500 neutral ones)."""
    folder = raw_data / "dailydialog" / "original" / "validation"
    names = ["neutral", "anger", "disgust", "fear", "joy", "sadness", "surprise"]
    texts, gold = [], []
    dialogues = (folder / "dialogues_validation.txt").read_text(encoding="utf-8").splitlines()
    emotions = (folder / "dialogues_emotion_validation.txt").read_text(encoding="utf-8").splitlines()
    for dialogue, labels in zip(dialogues, emotions, strict=False):  # as the corpus pairs them, line by line
        utterances = [u.strip() for u in dialogue.split("__eou__") if u.strip()]
        for utterance, label in zip(utterances, labels.split(), strict=False):
            texts.append(utterance)
            gold.append(names[int(label)])
    neutral = [i for i, g in enumerate(gold) if g == "neutral"]
    keep = sorted(random.Random(0).sample(neutral, 500) + [i for i, g in enumerate(gold) if g != "neutral"])
    predicted = []
    for start in range(0, len(keep), 128):
        predicted += emotion_reader.predict([texts[i] for i in keep[start : start + 128]])
    recalls = {}
    for name in names:
        rows = [j for j, i in enumerate(keep) if gold[i] == name]
        recalls[name] = sum(predicted[j] == name for j in rows) / len(rows)
    balanced = sum(recalls.values()) / len(recalls)
    print(
        f"emotion reader on DailyDialog validation: balanced accuracy {balanced:.3f} (chance {1 / 7:.3f}); {recalls}"
    )
    assert balanced >= 0.35


def test_space_readme_has_the_spaces_header():
    text = (SPACE_DIR / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header = yaml.safe_load(text.split("---\n")[1])
    for key in ("title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "license", "tags"):
        assert key in header, key
    assert header["sdk"] == "gradio" and header["app_file"] == "app.py" and header["license"] == "apache-2.0"
    import gradio

    assert header["sdk_version"].split(".")[0] == gradio.__version__.split(".")[0]
    assert (SPACE_DIR / header["app_file"]).is_file()
    assert "not therapy" in text
