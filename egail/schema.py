"""Expert trajectories: the columns every part of egail reads, and the check that a dataset has them.

A trajectory row is one turn of a conversation (the paper's staggering, `egail.data.stagger`): ``history``
(earlier utterances, oldest first, starting with the user), ``prompt`` (the user's latest utterance) and
``response`` (the expert's answer). Built datasets carry more columns (``COLUMNS``); training, SFT,
evaluation and loading need only ``REQUIRED_COLUMNS`` and validate them here, in one way.
"""

from __future__ import annotations

from typing import Any

#: The columns a trajectory must have.
REQUIRED_COLUMNS = ("history", "prompt", "response")
#: The full row schema of a built dataset, in column order.
COLUMNS = ("conv_id", "turn", "history", "prompt", "response", "emotion", "situation", "source")
#: The ``source`` of a one-liner row: no history, and prompt = response (the paper's uplifting tweets).
ONELINERS_SOURCE = "oneliners"


def is_oneliner(row: dict[str, Any]) -> bool:
    """A one-liner row: marked by its source, or (in data without a source column) a bare echo."""
    if row.get("source") is not None:
        return row["source"] == ONELINERS_SOURCE
    return not row["history"] and row["prompt"].strip() == row["response"].strip()


def validate_trajectories(dataset: Any, name: str = "train_dataset") -> None:
    """Raise a ValueError naming the column or row when a dataset is not expert trajectories (a TypeError when it
    is not a ``datasets.Dataset`` at all)."""
    from datasets import Dataset

    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"{name} must be a datasets.Dataset of expert trajectories, got {type(dataset).__name__}; build one "
            f"with datasets.Dataset.from_list(rows) or egail.data.load_trajectories(...)['train']."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; expert trajectories need 'history' (list of str), "
            f"'prompt' (str) and 'response' (str). Found columns: {dataset.column_names}."
        )
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty.")
    for row, (history, prompt, response) in enumerate(
        zip(dataset["history"], dataset["prompt"], dataset["response"], strict=True)
    ):
        if not isinstance(history, list) or not all(isinstance(u, str) for u in history):
            raise ValueError(f"{name} row {row}: 'history' must be a list of strings, got {history!r:.80}.")
        for column, value in (("prompt", prompt), ("response", response)):
            if not isinstance(value, str):
                raise ValueError(f"{name} row {row}: '{column}' must be a string, got {type(value).__name__}.")
            if not value.strip():
                raise ValueError(f"{name} row {row}: '{column}' is empty.")
