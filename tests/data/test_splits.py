"""Splitting by conversation: proportions, seeds, no conversation in two splits, duplicates kept once."""

from __future__ import annotations

import random

import pytest

from egail.data import Conversation, dedupe, split_conversations
from egail.data.splits import parse_splits


def conversations(n: int, source: str = "chat", prefix: str = "c") -> list[Conversation]:
    return [Conversation(f"{prefix}{i}", [f"{prefix}{i} hi", f"{prefix}{i} hello"], source) for i in range(n)]


def membership(splits: dict[str, list[Conversation]]) -> dict[str, str]:
    return {c.conv_id: name for name, members in splits.items() for c in members}


def test_default_is_70_20_10_of_each_source_and_covers_everything_once():
    items = conversations(103) + conversations(10, source="oneliners", prefix="o")
    splits = split_conversations(items)
    assert list(splits) == ["train", "test", "validation"]
    sizes = {name: sum(c.source == "chat" for c in members) for name, members in splits.items()}
    assert sizes == {"train": 72, "test": 21, "validation": 10}  # 72.1 / 20.6 / 10.3, rounded to sum to 103
    assert {name: sum(c.source == "oneliners" for c in m) for name, m in splits.items()} == {
        "train": 7, "test": 2, "validation": 1}  # fmt: skip
    ids = [c.conv_id for members in splits.values() for c in members]
    assert sorted(ids) == sorted(c.conv_id for c in items)  # each conversation exactly once


def test_assignment_depends_on_seed_not_on_reading_order():
    items = conversations(200)
    shuffled = items[:]
    random.Random(1).shuffle(shuffled)
    assert membership(split_conversations(items, seed=3)) == membership(split_conversations(shuffled, seed=3))
    assert membership(split_conversations(items, seed=3)) != membership(split_conversations(items, seed=4))
    kept_order = split_conversations(items, seed=3)["train"]
    assert kept_order == sorted(kept_order, key=items.index)  # reading order inside a split


def test_custom_ratios():
    splits = split_conversations(conversations(10), {"train": 0.5, "dev": 0.5})
    assert {name: len(m) for name, m in splits.items()} == {"train": 5, "dev": 5}
    assert parse_splits("train=0.8, validation=0.2") == {"train": 0.8, "validation": 0.2}
    for bad in ("train", "train=x", "train=-1", "train=0", "a b=1"):
        with pytest.raises(ValueError):
            parse_splits(bad)


def test_dedupe_keeps_the_first_copy_and_says_why():
    a, b = conversations(2)
    copy = Conversation("other", list(a.utterances), "chat", path="f.txt", line=9)
    a.path, a.line = "f.txt", 1
    same_id = Conversation("c0", ["different", "text"], "chat", path="g.txt", line=2)
    kept, dropped = dedupe([a, copy, b, same_id])
    assert kept == [a, b]
    assert [(c.conv_id, str(s)) for c, s in dropped] == [
        ("other", "f.txt:9: duplicate conversation dropped (same as c0)"),
        ("c0", "g.txt:2: conv_id already used; conversation dropped (c0, first at f.txt:1)"),
    ]
