"""What the training recipes share: their script arguments and how they load the expert trajectories.

``recipes/sft.py`` (the MLE baseline) and ``recipes/train.py`` (GAIL) take the same data arguments and read
the same rows, so an SFT run and a GAIL run given the same flags train on the same states.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from egail.schema import validate_trajectories


@dataclass
class ScriptArguments:
    """Data arguments of the training recipes (TRL's ``ScriptArguments`` names, plus a sample cap)."""

    dataset_name: str = field(
        default="embedded",
        metadata={"help": "Expert trajectories: 'embedded', a folder from `python -m egail.data build`, or a Hub id."},
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    dataset_eval_split: str | None = field(default=None, metadata={"help": "Split to evaluate on (None: no eval)."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on a seeded sample of this size."})


def load_splits(script_args: ScriptArguments, seed: int) -> tuple[Any, Any]:
    """The train split (a seeded sample when ``max_train_samples`` is set) and the eval split or None, both checked
    to be expert trajectories; a split that is not there is a ``ValueError`` naming the ones that are."""
    from egail.data import load_trajectories

    dataset = load_trajectories(script_args.dataset_name)
    for split in (script_args.dataset_train_split, script_args.dataset_eval_split):
        if split is not None and split not in dataset:
            raise ValueError(f"split '{split}' not in {script_args.dataset_name}: {list(dataset)}")
    train_dataset = dataset[script_args.dataset_train_split]
    validate_trajectories(train_dataset)
    if script_args.max_train_samples:
        count = min(script_args.max_train_samples, len(train_dataset))
        train_dataset = train_dataset.shuffle(seed=seed).select(range(count))
    eval_dataset = None
    if script_args.dataset_eval_split is not None:
        eval_dataset = dataset[script_args.dataset_eval_split]
        validate_trajectories(eval_dataset, "eval_dataset")
    return train_dataset, eval_dataset
