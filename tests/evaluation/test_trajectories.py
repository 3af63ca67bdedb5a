"""Bucket assignment and the checks on the data handed to the evaluation."""

from __future__ import annotations

import datasets
import pytest

from egail.evaluation.trajectories import EvaluationInputError, bucket_of, select_rows


@pytest.mark.parametrize(
    ("history_length", "bucket"), [(0, "1"), (1, "2"), (2, "2"), (3, "3+"), (4, "3+"), (10, "3+")]
)
def test_bucket_counts_earlier_turns(history_length, bucket):
    assert bucket_of(["u"] * history_length) == bucket


def test_rows_of_a_split(small_split):
    rows = select_rows(small_split)
    assert [r.bucket for r in rows] == ["1", "2", "3+", "1", "2", "1"]
    assert all(r.source != "oneliners" for r in rows)
    assert rows[2].history[0] == "I got the job!" and rows[2].emotion == "joyful"
    with_oneliners = select_rows(small_split, include_oneliners=True)
    assert len(with_oneliners) == 7 and with_oneliners[-1].prompt == with_oneliners[-1].response


def test_max_samples_is_a_fixed_subset_in_order(small_split):
    first = select_rows(small_split, max_samples=3, seed=1)
    again = select_rows(small_split, max_samples=3, seed=1)
    assert [r.index for r in first] == [r.index for r in again]
    assert len(first) == 3 and [r.index for r in first] == sorted(r.index for r in first)
    with pytest.raises(EvaluationInputError, match="max_samples must be at least 1"):
        select_rows(small_split, max_samples=0)


def test_missing_columns_are_named(small_split):
    with pytest.raises(EvaluationInputError, match="my split is missing column\\(s\\) \\['response'\\]"):
        select_rows(small_split.remove_columns("response"), "my split")


def test_empty_split_is_an_error(small_split):
    with pytest.raises(EvaluationInputError, match="is empty"):
        select_rows(small_split.select([]))


def test_only_oneliners_is_an_error(small_split):
    with pytest.raises(EvaluationInputError, match="only one-liner rows"):
        select_rows(small_split.filter(lambda r: r["source"] == "oneliners"))


def test_bad_history_names_the_row():
    bad = datasets.Dataset.from_list([{"history": "not a list", "prompt": "hi", "response": "hello"}])
    with pytest.raises(EvaluationInputError, match="row 0: 'history' must be a list of strings"):
        select_rows(bad)
