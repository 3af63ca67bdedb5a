"""The emotion classifier: fitting, saving and loading; and, slow, its accuracy on held-back ED conversations."""

from __future__ import annotations

import pytest
import torch

from egail.evaluation.emotion import EmotionClassifier, fit_softmax_regression


def test_softmax_regression_separates_separable_classes():
    torch.manual_seed(0)
    centers = torch.eye(3) * 4
    targets = torch.arange(3).repeat(20)
    features = centers[targets] + 0.3 * torch.randn(60, 3)
    weight, bias = fit_softmax_regression(features, targets, 3, l2=1e-4)
    assert ((features @ weight.T + bias).argmax(-1) == targets).float().mean() == 1.0


def test_save_and_load_give_the_same_predictions(toy_emotion_classifier, tmp_path):
    texts = ["Congratulations!", "So sorry for your loss.", "Are you safe?"]
    toy_emotion_classifier.save(tmp_path)
    loaded = EmotionClassifier.load(tmp_path)
    assert loaded.labels == ["afraid", "joyful", "sad"]
    assert loaded.predict(texts) == toy_emotion_classifier.predict(texts)
    assert torch.equal(loaded.weight, toy_emotion_classifier.weight)
    assert loaded.info["l2"] == toy_emotion_classifier.info["l2"]


def test_accuracy_and_bad_input(toy_emotion_classifier, tmp_path):
    texts = ["Congratulations!", "Scary!"]
    predicted = toy_emotion_classifier.predict(texts)
    assert toy_emotion_classifier.accuracy(texts, predicted) == 1.0
    with pytest.raises(ValueError, match="2 texts but 1 labels"):
        toy_emotion_classifier.accuracy(texts, ["sad"])
    with pytest.raises(FileNotFoundError, match="holds no emotion classifier"):
        EmotionClassifier.load(tmp_path)


@pytest.mark.slow
def test_ed_classifier_is_well_above_chance_on_held_back_conversations(raw_data, tmp_path):
    """Trains the real classifier (MiniLM, ED listener responses; about two minutes on a CPU)."""
    from egail.evaluation.emotion import ED_VALID_CSV, default_emotion_classifier

    classifier = default_emotion_classifier(raw_data / ED_VALID_CSV, directory=tmp_path, retrain=True)
    info = classifier.info
    print(f"held-back accuracy {info['held_back_accuracy']:.3f} on {info['n_held_back']} responses, chance 1/32")
    assert len(classifier.labels) == 32 and info["n_held_back"] > 500
    assert info["held_back_accuracy"] > 4 * info["chance"]  # measured: 0.195 (chance 0.031)
    from egail.data import build_dataset

    held_back = build_dataset([("ed", str(raw_data / ED_VALID_CSV))], progress=False).dataset["test"]["conv_id"]
    assert held_back and not set(held_back) & set(info["train_conv_ids"])
    assert EmotionClassifier.load(tmp_path).info["held_back_accuracy"] == info["held_back_accuracy"]
