"""The evaluation rows: checking a split, dropping one-liners, and the paper's conversation-length buckets.

The paper's Table 2 splits results by conversation length: "a single turn conversation contains no
history; a 2 turn conversation contains the history of a single turn; and a 3+ turn conversation contains
the history of multiple turns". A turn is a user utterance and its reply (two utterances), so a row's
bucket follows from the number of earlier turns, ``ceil(len(history) / 2)``: 0 -> "1", 1 -> "2",
2 or more -> "3+".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from egail.schema import is_oneliner, validate_trajectories

BUCKETS = ("1", "2", "3+")
ALL = "all"
BUCKET_LABELS = {"1": "1 turn", "2": "2 turns", "3+": "3+ turns", ALL: "all"}


class EvaluationInputError(ValueError):
    """The data or a model given to the evaluation cannot be evaluated (the message says why)."""


def bucket_of(history: list[str]) -> str:
    """The Table 2 bucket of a state with this history: "1", "2" or "3+" turns."""
    earlier_turns = (len(history) + 1) // 2
    if earlier_turns == 0:
        return "1"
    if earlier_turns == 1:
        return "2"
    return "3+"


@dataclass(frozen=True)
class Row:
    """One evaluation state and its reference response."""

    index: int
    history: list[str]
    prompt: str
    response: str
    emotion: str | None = None
    conv_id: str | None = None
    source: str | None = None

    @property
    def bucket(self) -> str:
        return bucket_of(self.history)


def select_rows(
    dataset: Any,
    name: str = "dataset",
    include_oneliners: bool = False,
    max_samples: int | None = None,
    seed: int = 0,
) -> list[Row]:
    """Check ``dataset`` (a ``datasets.Dataset`` of trajectories) and return the rows to evaluate.

    ``max_samples`` takes a fixed random subset (drawn with ``seed``, kept in dataset order) so that a short
    run still covers every bucket and source rather than the first conversations of the file.
    """
    try:
        validate_trajectories(dataset, name)
    except (TypeError, ValueError) as error:
        raise EvaluationInputError(str(error)) from error
    keep = list(range(len(dataset)))
    if not include_oneliners:
        # One-liner rows repeat the prompt as the response: they teach a generator to echo, and scoring a model
        # on them measures copying, not conversation. They are left out unless asked for.
        keep = [i for i, row in zip(keep, dataset, strict=True) if not is_oneliner(row)]
        if not keep:
            raise EvaluationInputError(
                f"{name} holds only one-liner rows, which evaluation leaves out; pass include_oneliners=True "
                f"(--include-oneliners) to score them."
            )
    if max_samples is not None:
        if max_samples < 1:
            raise EvaluationInputError(f"max_samples must be at least 1, got {max_samples}.")
        if max_samples < len(keep):
            keep = sorted(random.Random(seed).sample(keep, max_samples))
    dataset = dataset.select(keep)

    rows = []
    for i, record in zip(keep, dataset, strict=True):
        rows.append(
            Row(
                index=i,
                history=list(record["history"]),
                prompt=record["prompt"],
                response=record["response"],
                emotion=record.get("emotion"),
                conv_id=None if record.get("conv_id") is None else str(record["conv_id"]),
                source=record.get("source"),
            )
        )
    return rows
