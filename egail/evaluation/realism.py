"""A realism probe: how easily a fresh classifier tells a model's responses from people's, to the same states.

GAIL is trained to fool its own discriminator, so that discriminator's score measures success at the
training objective, not realism. An independent judge is needed, and this one shares nothing with the
discriminator's encoder: word 1-2-gram and character 2-5-gram (``char_wb``) TF-IDF features and a logistic
regression. The figure is the cross-validated ROC AUC of "model-written" against "written by a person":
0.5 means the probe cannot tell them apart, 1.0 that they are trivially separable. Sparse n-grams catch
what makes generated text easy to spot (stock phrases, recurring openings, punctuation habits, length),
they are deterministic, and 600 states take about a second on one core.

Folds are grouped by state (``GroupKFold``): a state's reference and its response(s) are always in the same
fold. Otherwise the probe could learn a state's topic words from the half of the pair it trained on and
score the other half by them, so the figure would measure pair matching rather than realism.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

#: Words, with punctuation marks as tokens of their own: "!" and "..." are habits a generator gives away.
WORD_PATTERN = r"(?u)\b\w+\b|[^\w\s]"


@dataclass(frozen=True)
class RealismResult:
    """The probe's cross-validated AUC and the out-of-fold scores it came from.

    ``reference_scores[i]`` and ``response_scores[i]`` are the probe's probability that the text is
    model-written, for pair ``i``, from the fold model that did not train on pair ``i``'s state;
    ``folds[i]`` is that fold. They let `auc_on` recompute the figure on a bootstrap resample of pairs.
    """

    auc: float
    fold_aucs: tuple[float, ...]
    n: int
    reference_scores: np.ndarray
    response_scores: np.ndarray
    folds: np.ndarray

    def auc_on(self, pairs: np.ndarray) -> float:
        """The mean over folds of the AUC on the given pairs (repeats count as often as they appear).

        On all pairs this is `auc`. The fold models stay fixed, so a bootstrap over it measures how much the
        figure depends on which rows were held back, not the (smaller) noise of refitting the probe.
        """
        aucs = []
        for fold in np.unique(self.folds[pairs]):
            chosen = pairs[self.folds[pairs] == fold]
            aucs.append(_auc(self.response_scores[chosen], self.reference_scores[chosen]))
        return float(np.mean(aucs))


def _auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC as P(positive scores above negative) + P(tie) / 2, in O(n log n) (the Mann-Whitney U)."""
    ordered = np.sort(negatives)
    below = np.searchsorted(ordered, positives, side="left")
    at_most = np.searchsorted(ordered, positives, side="right")
    return float((below + at_most).sum() / (2 * len(positives) * len(negatives)))


def _probe() -> Pipeline:
    """TF-IDF word and character n-grams into a logistic regression; fitted on the training folds only, so
    the vocabulary and IDF weights never see the held-back states. Sublinear TF keeps one repeated word from
    dominating a short response; characters keep their case, which is a realism cue too."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, make_pipeline

    features = FeatureUnion(
        [
            ("words", TfidfVectorizer(ngram_range=(1, 2), token_pattern=WORD_PATTERN, sublinear_tf=True)),
            ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), lowercase=False, sublinear_tf=True)),
        ]
    )
    return make_pipeline(features, LogisticRegression(max_iter=1000))  # lbfgs: deterministic


def realism_probe(
    references: Sequence[str],
    responses: Sequence[str],
    groups: Sequence[Hashable] | None = None,
    n_splits: int = 5,
    seed: int = 0,
) -> RealismResult:
    """Cross-validated ROC AUC of a TF-IDF probe separating ``responses`` (model) from ``references`` (people).

    ``references[i]`` and ``responses[i]`` answer the same state; ``groups[i]`` names that state (default:
    every pair its own state). Several pairs may share a state, e.g. one response per sampling seed with the
    reference repeated: they stay in one fold. ``seed`` decides which states go to which fold; the result is
    the same for the same inputs and seed. Empty texts are allowed (a fold whose training texts are all empty
    scores everything alike, AUC 0.5). Needs at least ``2 * n_splits`` states, so every fold holds back a few.
    """
    from sklearn.model_selection import GroupKFold

    if len(references) != len(responses):
        raise ValueError(f"{len(references)} references but {len(responses)} responses; they must pair up.")
    groups = list(range(len(references))) if groups is None else list(groups)
    if len(groups) != len(references):
        raise ValueError(f"{len(groups)} groups for {len(references)} pairs; give one group per pair.")
    if n_splits < 2:
        raise ValueError(f"n_splits must be at least 2, got {n_splits}.")
    states: dict[Hashable, int] = {}
    codes = np.array([states.setdefault(group, len(states)) for group in groups], dtype=int)
    n_states = len(states)
    if n_states < 2 * n_splits:
        raise ValueError(
            f"the realism probe needs at least {2 * n_splits} states for {n_splits} folds, got {n_states}."
        )

    # GroupKFold places states by size and then by label; relabelling them at random makes the seed decide the
    # folds, so folds do not follow the data's order (e.g. rows sorted by conversation length).
    labels = np.random.default_rng(seed).permutation(n_states)[codes]
    n = len(references)
    texts = np.array([*references, *responses], dtype=object)
    y = np.r_[np.zeros(n), np.ones(n)]
    scores = np.full(2 * n, 0.5)
    folds = np.empty(n, dtype=int)
    fold_aucs = []
    for fold, (train, test) in enumerate(GroupKFold(n_splits=n_splits).split(np.arange(n), groups=labels)):
        folds[test] = fold
        train_texts = np.r_[train, train + n]
        test_texts = np.r_[test, test + n]
        if any(text.strip() for text in texts[train_texts]):
            probe = _probe().fit(texts[train_texts], y[train_texts])
            scores[test_texts] = probe.predict_proba(texts[test_texts])[:, 1]
        fold_aucs.append(_auc(scores[test + n], scores[test]))
    return RealismResult(
        auc=float(np.mean(fold_aucs)),
        fold_aucs=tuple(fold_aucs),
        n=n,
        reference_scores=scores[:n],
        response_scores=scores[n:],
        folds=folds,
    )
