"""BLEU, BLEU-2, distinct-n, length and VADER agreement against values computed by hand."""

from __future__ import annotations

import math

import pytest
import sacrebleu

from egail.evaluation import text_metrics
from egail.evaluation.text_metrics import bleu, distinct, mean_length, sentiment_agreement, sentiment_class


def test_metric_modules_load_from_local_files_offline():
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # tests/conftest.py: no Hub, so these load from egail's files
    for name in ("sacrebleu_local", "distinct_local"):
        module = text_metrics.load_local_metric(name)
        assert module.name == name


def test_identical_responses_score_100():
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"]) == pytest.approx(100.0)
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat"], max_ngram_order=2) == pytest.approx(100.0)


def test_bleu2_by_hand():
    # 1-grams: the, cat, sat, on, mat match, "a" does not: 5/6. 2-grams: "the cat", "cat sat", "sat on"
    # match, "on a", "a mat" do not: 3/5. Same length, so no brevity penalty: sqrt(5/6 * 3/5) = sqrt(1/2).
    assert bleu(["the cat sat on a mat"], ["the cat sat on the mat"], max_ngram_order=2) == pytest.approx(
        100 * math.sqrt(0.5)
    )


def test_bleu_with_brevity_penalty_by_hand():
    # All 2-grams of "the cat sat" are in the reference (precisions 1, 1); c = 3, r = 6: BP = exp(1 - 6/3).
    assert bleu(["the cat sat"], ["the cat sat on the mat"], max_ngram_order=2) == pytest.approx(100 * math.exp(-1))


def test_bleu_is_corpus_level_like_sacrebleu():
    predictions = ["I am so sorry to hear that.", "That sounds great!", "What happened next?"]
    references = ["I am sorry to hear that.", "That sounds like fun!", "What did you do next?"]
    expected = sacrebleu.corpus_bleu(predictions, [references]).score
    assert bleu(predictions, references) == pytest.approx(expected)
    # Corpus BLEU is not the mean of sentence BLEU.
    sentence_mean = sum(bleu([p], [r]) for p, r in zip(predictions, references, strict=True)) / 3
    assert bleu(predictions, references) != pytest.approx(sentence_mean)


def test_bleu_needs_one_reference_per_prediction():
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        bleu(["a", "b"], ["a"])
    assert math.isnan(bleu([], []))


def test_distinct_by_hand():
    # unigrams a b a | a b c: 3 unique of 6. bigrams (a b) (b a) | (a b) (b c): 3 unique of 4.
    assert distinct(["a b a", "a b c"]) == {1: 0.5, 2: 0.75}
    # n-grams never cross from one response into the next: "x" + "y" makes no bigram.
    assert distinct(["x", "y"]) == {1: 1.0, 2: 0.0}
    assert distinct(["x y z"], orders=(3,)) == {3: 1.0}


def test_mean_length_counts_words():
    assert mean_length(["one two three", "four"]) == 2.0
    assert math.isnan(mean_length([]))


def test_sentiment_classes_and_agreement():
    assert sentiment_class("I am so happy for you, that is wonderful!") == "positive"
    assert sentiment_class("That is terrible and awful.") == "negative"
    assert sentiment_class("The bus leaves at nine.") == "neutral"
    predictions = ["What wonderful news!", "That is awful.", "The bus leaves at nine."]
    references = ["I am so happy for you!", "How wonderful!", "It is on Tuesday."]
    # positive=positive, negative!=positive, neutral=neutral
    assert sentiment_agreement(predictions, references) == pytest.approx(2 / 3)
