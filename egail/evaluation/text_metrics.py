"""Reference-based and corpus metrics on response texts: BLEU, BLEU-2, distinct-n, length, sentiment.

BLEU and distinct-n are `evaluate` modules that live in ``egail/evaluation/metrics/`` and load from
those local files, because ``evaluate.load("<hub name>")`` needs the Hub and fails offline. No BLEU is
written by hand: the local module calls sacreBLEU.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

METRICS_DIR = Path(__file__).resolve().parent / "metrics"

#: VADER's usual thresholds on the compound score (Hutto & Gilbert, 2014).
VADER_POSITIVE = 0.05
VADER_NEGATIVE = -0.05


@functools.cache
def load_local_metric(name: str) -> Any:
    """An `evaluate` module from ``metrics/<name>/<name>.py``, kept in memory (no cache files written)."""
    import evaluate

    script = METRICS_DIR / name / f"{name}.py"
    if not script.is_file():
        raise FileNotFoundError(f"egail metric module {script} is missing; reinstall egail.")
    return evaluate.load(str(script), keep_in_memory=True)


def bleu(predictions: list[str], references: list[str], max_ngram_order: int = 4) -> float:
    """sacreBLEU corpus BLEU (0-100) of predictions against one reference each; order 2 gives BLEU-2."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")
    if not predictions:
        return float("nan")
    metric = load_local_metric("sacrebleu_local")
    result = metric.compute(
        predictions=predictions, references=[[r] for r in references], max_ngram_order=max_ngram_order
    )
    return float(result["score"])


def bleu_signature(max_ngram_order: int = 4) -> str:
    """sacreBLEU's signature of the BLEU configuration used (tokenizer, smoothing, version), for reports."""
    metric = load_local_metric("sacrebleu_local")
    return metric.compute(predictions=["a"], references=[["a"]], max_ngram_order=max_ngram_order)["signature"]


def distinct(texts: list[str], orders: tuple[int, ...] = (1, 2)) -> dict[int, float]:
    """Corpus distinct-n for each n: unique word n-grams / all word n-grams over ``texts``."""
    if not texts:
        return {n: float("nan") for n in orders}
    result = load_local_metric("distinct_local").compute(predictions=texts, orders=orders)
    return {n: float(result[f"distinct-{n}"]) for n in orders}


def word_count(text: str) -> int:
    """Words are whitespace-separated tokens: the unit of length, per-word perplexity and distinct-n."""
    return len(text.split())


def mean_length(texts: list[str]) -> float:
    """Mean number of words per text."""
    return sum(map(word_count, texts)) / len(texts) if texts else float("nan")


@functools.lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment_class(text: str) -> str:
    """VADER's class of a text: 'positive' (compound >= 0.05), 'negative' (<= -0.05), else 'neutral'."""
    compound = _vader().polarity_scores(text)["compound"]
    if compound >= VADER_POSITIVE:
        return "positive"
    if compound <= VADER_NEGATIVE:
        return "negative"
    return "neutral"


def sentiment_agreement(predictions: list[str], references: list[str]) -> float:
    """Share of responses whose VADER class (positive / neutral / negative) equals the reference's."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")
    if not predictions:
        return float("nan")
    same = sum(sentiment_class(p) == sentiment_class(r) for p, r in zip(predictions, references, strict=True))
    return same / len(predictions)
