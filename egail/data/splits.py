"""Splitting by conversation, never by turn: the turns of one conversation share their history, so a
conversation split across train and test would leak the test set into training."""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence

from egail.data.conversation import Conversation, Skip
from egail.schema import ONELINERS_SOURCE

#: The paper's train/test/validation proportions (§4.2: "70-20-10").
DEFAULT_SPLITS: dict[str, float] = {"train": 0.7, "test": 0.2, "validation": 0.1}


def parse_splits(text: str) -> dict[str, float]:
    """``"train=0.7,test=0.2,validation=0.1"`` -> ratios (checked by :func:`check_splits`)."""
    splits = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        try:
            splits[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"split {item!r}: expected NAME=RATIO, e.g. train=0.7") from None
        if not sep:
            raise ValueError(f"split {item!r}: expected NAME=RATIO, e.g. train=0.7")
    return check_splits(splits)


def check_splits(splits: Mapping[str, float]) -> dict[str, float]:
    if not splits:
        raise ValueError("no splits given")
    for name, ratio in splits.items():
        if not re.fullmatch(r"\w+(?:[.-]\w+)*", name):
            raise ValueError(f"split name {name!r}: use letters, digits, _, . or -")
        if not (math.isfinite(ratio) and ratio >= 0):
            raise ValueError(f"split {name!r}: ratio {ratio} must be a finite number >= 0")
    if sum(splits.values()) <= 0:
        raise ValueError(f"split ratios {dict(splits)} sum to 0")
    return dict(splits)


def dedupe(conversations: Sequence[Conversation]) -> tuple[list[Conversation], list[tuple[Conversation, Skip]]]:
    """Keep the first of conversations with the same normalised utterances (DailyDialog's train, validation
    and test share dialogues); conversations that reuse a conv_id are dropped too, so ids stay unique.
    Returns the kept conversations and, for each dropped one, the record of why."""
    kept: list[Conversation] = []
    dropped: list[tuple[Conversation, Skip]] = []
    by_text: dict[tuple, Conversation] = {}
    by_id: dict[str, Conversation] = {}
    for conversation in conversations:
        key = (conversation.source == ONELINERS_SOURCE, tuple(conversation.utterances))
        where = (conversation.path or conversation.source, conversation.line)
        if key in by_text:
            first = by_text[key]
            dropped.append((conversation, Skip(*where, "duplicate conversation dropped", f"same as {first.conv_id}")))
        elif conversation.conv_id in by_id:
            first = by_id[conversation.conv_id]
            detail = f"{conversation.conv_id}, first at {_location(first)}"
            dropped.append((conversation, Skip(*where, "conv_id already used; conversation dropped", detail)))
        else:
            by_text[key] = by_id[conversation.conv_id] = conversation
            kept.append(conversation)
    return kept, dropped


def _location(conversation: Conversation) -> str:
    if conversation.path is None:
        return conversation.source
    return conversation.path if conversation.line is None else f"{conversation.path}:{conversation.line}"


def _rank(seed: int, conv_id: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{conv_id}".encode()).digest()


def _sizes(n: int, splits: Mapping[str, float]) -> dict[str, int]:
    """Split sizes that add up to ``n``: floors, then the largest remainders get the leftovers."""
    total = sum(splits.values())
    exact = {name: n * ratio / total for name, ratio in splits.items()}
    sizes = {name: math.floor(value) for name, value in exact.items()}
    by_remainder = sorted(splits, key=lambda name: exact[name] - sizes[name], reverse=True)
    for name in by_remainder[: n - sum(sizes.values())]:
        sizes[name] += 1
    return sizes


def split_conversations(
    conversations: Sequence[Conversation], splits: Mapping[str, float] = DEFAULT_SPLITS, seed: int = 0
) -> dict[str, list[Conversation]]:
    """Assign whole conversations to splits in the given proportions, separately for each source.

    The order is a seeded hash of the conv_id, so the assignment depends only on the seed and the
    conversations, not on the order they were read in; within a split the reading order is kept.
    Call :func:`dedupe` first: a conv_id must occur once.
    """
    splits = check_splits(splits)
    assigned: dict[int, str] = {}
    by_source: dict[str, list[int]] = {}
    for index, conversation in enumerate(conversations):
        by_source.setdefault(conversation.source, []).append(index)
    for indices in by_source.values():
        ranked = sorted(indices, key=lambda i: _rank(seed, conversations[i].conv_id))
        start = 0
        for name, size in _sizes(len(ranked), splits).items():
            for i in ranked[start : start + size]:
                assigned[i] = name
            start += size
    result: dict[str, list[Conversation]] = {name: [] for name in splits}
    for index, conversation in enumerate(conversations):
        result[assigned[index]].append(conversation)
    return result
