"""Emotional attunement: can the conversation's emotion be read off a response alone?

A 32-way softmax regression on MiniLM sentence embeddings, trained on EmpatheticDialogues *listener*
utterances (the role our models play) labelled with their conversation's emotion. Applied to a model's
responses, its accuracy says how much of the speaker's feeling the responses pick up; applied to the
reference responses of the same rows it gives the ceiling that a perfectly expert-like model would reach.

Only the ED validation CSV is public here (see the raw data's SOURCES.md), and the evaluation test split
is made from it too; so the classifier trains only on conversations that the data's development split
puts in "train", picks its L2 strength on "validation" conversations, and reports its accuracy on the
held-back "test" conversations. It is trained once and cached (safetensors + JSON) under
``egail.models.cache_dir() / "emotion-classifier"``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from egail.models import MINILM, cache_dir, load_sentence_encoder

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
ED_VALID_CSV = Path("empatheticdialogues") / "reconstructed" / "ed_valid.csv"
L2_GRID = (1e-5, 1e-4, 1e-3)
logger = logging.getLogger(__name__)


class SentenceEncoder:
    """Mean-pooled, L2-normalised embeddings: the sentence-transformers recipe of all-MiniLM-L6-v2."""

    def __init__(self, name_or_path: str = MINILM, device: str | None = None, max_length: int = 128) -> None:
        self.name = str(name_or_path)
        self.tokenizer, self.model = load_sentence_encoder(name_or_path)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.max_length = max_length

    @torch.no_grad()
    def __call__(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """One unit-length row per text, in order; batches group similar lengths to pad less."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        embeddings = torch.empty(len(texts), self.model.config.hidden_size)
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in indices],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            embeddings[indices] = F.normalize(pooled, dim=-1).float().cpu()
        return embeddings


def fit_softmax_regression(
    features: torch.Tensor, targets: torch.Tensor, n_classes: int, l2: float, max_iter: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression by L-BFGS: mean cross-entropy + ``l2 * ||W||^2``; returns (W, b)."""
    weight = torch.zeros(n_classes, features.shape[1], requires_grad=True)
    bias = torch.zeros(n_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(features @ weight.T + bias, targets) + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


@dataclass
class EmotionClassifier:
    """A linear head over a sentence encoder that names a response's emotion (one of ``labels``)."""

    labels: list[str]
    weight: torch.Tensor
    bias: torch.Tensor
    encoder_name: str = MINILM
    info: dict[str, Any] = field(default_factory=dict)
    _encoder: SentenceEncoder | None = field(default=None, repr=False)

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = SentenceEncoder(self.encoder_name)
        return self._encoder

    def predict(self, texts: list[str]) -> list[str]:
        if not texts:
            return []
        logits = self.encoder(texts) @ self.weight.T + self.bias
        return [self.labels[i] for i in logits.argmax(-1).tolist()]

    def accuracy(self, texts: list[str], labels: list[str]) -> float:
        """Share of ``texts`` predicted as their label; NaN with no texts."""
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels.")
        if not texts:
            return float("nan")
        return sum(p == y for p, y in zip(self.predict(texts), labels, strict=True)) / len(texts)

    def save(self, directory: str | Path) -> None:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"weight": self.weight.contiguous(), "bias": self.bias.contiguous()}, str(directory / WEIGHTS_NAME))
        config = {"labels": self.labels, "encoder": self.encoder_name, "info": self.info}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> EmotionClassifier:
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / CONFIG_NAME).is_file() or not (directory / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"{directory} holds no emotion classifier ({CONFIG_NAME} + {WEIGHTS_NAME}).")
        config = json.loads((directory / CONFIG_NAME).read_text())
        tensors = load_file(str(directory / WEIGHTS_NAME))
        return cls(config["labels"], tensors["weight"], tensors["bias"], config["encoder"], config.get("info", {}))


def train_emotion_classifier(
    train: tuple[list[str], list[str]],
    validation: tuple[list[str], list[str]],
    labels: list[str] | None = None,
    encoder: str | SentenceEncoder = MINILM,
    l2_grid: tuple[float, ...] = L2_GRID,
) -> EmotionClassifier:
    """Fit on ``train`` (texts, labels) for each L2 strength and keep the one best on ``validation``."""
    encoder = encoder if isinstance(encoder, SentenceEncoder) else SentenceEncoder(encoder)
    labels = sorted(set(train[1])) if labels is None else list(labels)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted(set(train[1]) - set(index))
    if unknown:
        raise ValueError(f"training labels not in the label set: {unknown}")
    x_train = encoder(list(train[0]))
    y_train = torch.tensor([index[y] for y in train[1]])
    x_valid = encoder(list(validation[0]))
    y_valid = torch.tensor([index.get(y, -1) for y in validation[1]])
    best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None
    scores = {}
    for l2 in l2_grid:
        weight, bias = fit_softmax_regression(x_train, y_train, len(labels), l2)
        accuracy = ((x_valid @ weight.T + bias).argmax(-1) == y_valid).float().mean().item() if len(y_valid) else 0.0
        scores[str(l2)] = accuracy
        if best is None or accuracy > best[0]:
            best = (accuracy, l2, weight, bias)
    assert best is not None, "l2_grid is empty"
    info = {"n_train": len(y_train), "n_validation": len(y_valid), "validation_accuracy_by_l2": scores, "l2": best[1]}
    return EmotionClassifier(labels, best[2], best[3], encoder.name, info, encoder)


def raw_data_dir() -> Path:
    """The shared raw corpora: ``$EGAIL_RAW_DATA``, else ``shared/data/raw`` beside the repository."""
    default = Path(__file__).resolve().parents[3] / "shared" / "data" / "raw"
    return Path(os.environ.get("EGAIL_RAW_DATA", default))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _listener_examples(split: Any) -> tuple[list[str], list[str]]:
    """(responses, emotions) of ED rows: every response is a listener utterance, labelled by its conversation."""
    from egail.data import ED_EMOTIONS

    pairs = [(r, e) for r, e in zip(split["response"], split["emotion"], strict=True) if e in ED_EMOTIONS]
    return [r for r, _ in pairs], [e for _, e in pairs]


def default_emotion_classifier(
    csv_path: str | Path | None = None,
    directory: str | Path | None = None,
    retrain: bool = False,
    seed: int = 0,
) -> EmotionClassifier:
    """The cached ED emotion classifier, trained on first use (about two minutes on a CPU).

    The CSV is split exactly as ``egail.data`` builds a dataset from it (by conversation, default ratios,
    ``seed``): train on "train", pick L2 on "validation", report accuracy on held-back "test". The train
    conversations' ids are kept (``info["train_conv_ids"]``) so an evaluation can leave those rows out.
    The cache is keyed by the CSV's sha256 and the seed.
    """
    from egail.data import DEFAULT_SPLITS, ED_EMOTIONS, build_dataset

    directory = Path(directory) if directory else cache_dir() / "emotion-classifier"
    csv_path = Path(csv_path) if csv_path else raw_data_dir() / ED_VALID_CSV
    if (directory / CONFIG_NAME).is_file() and not retrain:
        cached = EmotionClassifier.load(directory)
        source_matches = not csv_path.is_file() or cached.info.get("source_sha256") == _sha256(csv_path)
        if source_matches and cached.info.get("split", {}).get("seed") == seed:
            return cached
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"The emotion classifier trains on {csv_path}, which is missing: set EGAIL_RAW_DATA to the raw "
            f"corpora folder, or evaluate without emotional attunement (--no-emotion)."
        )
    logger.info("training the emotion classifier on %s once (about two minutes on a CPU)", csv_path)
    splits = build_dataset([("ed", str(csv_path))], seed=seed, progress=False).dataset
    classifier = train_emotion_classifier(
        _listener_examples(splits["train"]), _listener_examples(splits["validation"]), labels=list(ED_EMOTIONS)
    )
    held_back = _listener_examples(splits["test"])
    classifier.info |= {
        "source": str(csv_path),
        "source_sha256": _sha256(csv_path),
        "split": {"ratios": dict(DEFAULT_SPLITS), "seed": seed, "by": "conversation (egail.data)"},
        "held_back_accuracy": classifier.accuracy(*held_back),
        "n_held_back": len(held_back[0]),
        "chance": 1 / len(ED_EMOTIONS),
        "train_conv_ids": sorted(set(splits["train"]["conv_id"])),
    }
    classifier.save(directory)
    return classifier
