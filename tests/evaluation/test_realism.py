"""The realism probe on constructed cases: indistinguishable, trivially separable, and pairs that must stay together."""

from __future__ import annotations

import random

import numpy as np
import pytest

from egail.evaluation.realism import _auc, realism_probe

WORDS = "i you we the a so that is was feel sorry happy good bad day dog job work friend family really hope".split()

#: Under the null (both sides from one distribution, so which text of a pair is "the reference" is a coin flip) the
#: expected AUC is exactly 0.5: flipping every held-back pair maps a fold's AUC a to 1 - a, and training never sees
#: those labels. Its spread on 300 states, measured over 12 random flips within the pairs of sentences(300, seed=0)
#: and sentences(300, seed=1), is a std of 0.031 (mean 0.503). 0.1 is over three of those: a correct probe stays
#: inside (the seeds fix the draw), a leaking one does not.
NULL_TOLERANCE = 0.1


def sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))) + rng.choice([".", "!", "?"]) for _ in range(n)
    ]


def test_identical_sets_are_indistinguishable():
    texts = sentences(300, seed=0)
    result = realism_probe(texts, texts)
    # Same texts with both labels: the probe learns nothing and the two score sets are one multiset, so 0.5 exactly.
    assert result.auc == pytest.approx(0.5)
    assert result.n == 300 and len(result.fold_aucs) == 5


def test_same_distribution_is_near_chance():
    result = realism_probe(sentences(300, seed=0), sentences(300, seed=1))
    assert abs(result.auc - 0.5) < NULL_TOLERANCE


def test_a_stock_phrase_is_trivially_separable():
    references = sentences(300, seed=0)
    responses = [text + " I hope that helps!" for text in sentences(300, seed=1)]
    assert realism_probe(references, responses).auc > 0.99


def test_a_different_vocabulary_is_separable():
    responses = [text.upper() for text in sentences(300, seed=1)]  # only the characters' case gives it away
    assert realism_probe(sentences(300, seed=0), responses).auc > 0.95


def test_pairs_of_one_state_stay_in_one_fold():
    # 300 states, 3 identical pairs each (as if every sampling seed gave the same response); both sides come from one
    # distribution, but every text is its state's own: a probe that trained on a state recognises its copies.
    states = 300
    references = [text for text in sentences(states, seed=0) for _ in range(3)]
    responses = [text for text in sentences(states, seed=1) for _ in range(3)]
    groups = [s for s in range(states) for _ in range(3)]
    grouped = realism_probe(references, responses, groups=groups)
    assert all(len(set(grouped.folds[np.array(groups) == s])) == 1 for s in range(states))
    assert abs(grouped.auc - 0.5) < NULL_TOLERANCE
    # The control: without the groups, copies of a state fall on both sides of the split and the probe
    # memorises them; the grouping is what keeps the figure honest.
    assert realism_probe(references, responses).auc > 0.8


def test_deterministic_and_seed_decides_folds():
    references, responses = sentences(100, seed=0), sentences(100, seed=1)
    first, again = realism_probe(references, responses, seed=0), realism_probe(references, responses, seed=0)
    assert first.fold_aucs == again.fold_aucs
    assert np.array_equal(first.response_scores, again.response_scores)
    assert not np.array_equal(first.folds, realism_probe(references, responses, seed=1).folds)


def test_auc_on_all_pairs_is_the_mean_fold_auc():
    result = realism_probe(sentences(100, seed=0), [t + " Take care." for t in sentences(100, seed=1)])
    assert result.auc_on(np.arange(result.n)) == pytest.approx(result.auc)
    assert result.auc == pytest.approx(np.mean(result.fold_aucs))


def test_empty_texts_are_allowed():
    references = sentences(20, seed=0)
    assert realism_probe(references, ["" for _ in references]).auc > 0.9  # empty responses are easy to spot
    assert realism_probe([""] * 20, [""] * 20).auc == 0.5  # no n-grams at all: nothing to tell apart


def test_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    positives, negatives = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)  # with ties
    expected = roc_auc_score(np.r_[np.ones(40), np.zeros(30)], np.r_[positives, negatives])
    assert _auc(positives, negatives) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("references", "responses", "kwargs", "message"),
    [
        (["a"] * 9, ["b"] * 9, {}, "at least 10 states"),
        (["a"] * 20, ["b"] * 19, {}, "20 references but 19 responses"),
        (["a"] * 20, ["b"] * 20, {"groups": [0] * 19}, "19 groups for 20 pairs"),
        (["a"] * 20, ["b"] * 20, {"groups": [i // 4 for i in range(20)]}, "got 5"),
        (["a"] * 20, ["b"] * 20, {"n_splits": 1}, "n_splits"),
    ],
)
def test_bad_input(references, responses, kwargs, message):
    with pytest.raises(ValueError, match=message):
        realism_probe(references, responses, **kwargs)
