"""What the training recipes share: their script arguments and how they load the expert trajectories.

``recipes/sft.py`` (the MLE baseline) and ``recipes/train.py`` (GAIL) take the same data arguments and read
the same rows, so an SFT run and a GAIL run given the same flags train on the same states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from transformers import TrainerCallback

from egail.config import GAILConfig
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
    before_after_rows: int = field(
        default=0,
        metadata={
            "help": "After training, evaluate the starting and the trained model on this many held-back rows "
            "(the test split) and print a before/after table; 0: skip."
        },
    )
    max_cpu_seconds: float | None = field(
        default=None,
        metadata={
            "help": "Stop training (and save) once the process has used this much CPU time in train(); "
            "for equal-compute comparisons. None: no budget."
        },
    )


@dataclass
class StateScriptArguments(ScriptArguments):
    """The shared data arguments, plus the state-shaping fields GAIL reads from its `GAILConfig` (same defaults),
    for the recipes that fit states without one (SFT, SPIN): every recipe then sees GAIL's states."""

    history_max_turns: int | None = field(
        default=GAILConfig.history_max_turns, metadata={"help": "Earlier turns kept in each state (None keeps all)."}
    )
    max_prompt_length: int | None = field(
        default=GAILConfig.max_prompt_length,
        metadata={
            "help": "Tokens kept of a state (history + prompt), as GAIL's max_prompt_length; oldest turns go first."
        },
    )
    system_prompt: str | None = field(
        default=GAILConfig.system_prompt, metadata={"help": "System message of every state."}
    )


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


class CpuTimeBudget(TrainerCallback):
    """Stops training at the first optimizer step after the process has spent ``seconds`` of CPU time (all its
    threads: ``time.process_time``) since training began, so two methods can be compared at equal compute.
    The trainer then saves and ends as at ``max_steps``; ``spent`` holds the CPU seconds used."""

    def __init__(self, seconds: float):
        if seconds <= 0:
            raise ValueError(f"max_cpu_seconds must be > 0, got {seconds}")
        self.seconds = seconds
        self.spent = 0.0
        self._start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        self._start = time.process_time()

    def on_step_end(self, args, state, control, **kwargs):
        self.spent = time.process_time() - self._start
        if self.spent >= self.seconds:
            control.should_training_stop = True
            control.should_save = True
        return control


def script_callbacks(script_args: ScriptArguments) -> list[TrainerCallback]:
    """The callbacks the script arguments ask for (a CPU-time budget)."""
    return [CpuTimeBudget(script_args.max_cpu_seconds)] if script_args.max_cpu_seconds else []


def print_before_after(script_args: ScriptArguments, start: str, trained: str, max_new_tokens: int,
                       history_max_turns: int | None) -> None:  # fmt: skip
    """Print the before/after table of a finished run when ``before_after_rows`` asks for it (main process)."""
    if not script_args.before_after_rows:
        return
    from egail.evaluation.before_after import before_after

    _, text = before_after(
        start, trained, script_args.dataset_name, script_args.before_after_rows, max_new_tokens, history_max_turns
    )
    print("\n" + text, flush=True)
