"""Human-demo mixing: which completions of a rollout are the expert's response instead of a sample.

The paper (after TextGAIL) replaces a share of each rollout with expert responses: 0.3 for the first
``demo_warmup_steps`` steps, then linearly down to ``demo_ratio_end``. On GRPO the demos must not enter a group's
baseline (their high reward would swamp the mean and std the samples are compared with), so two rules hold here:

- demos are spread over the groups (round-robin over a shuffled group order), and every group keeps at least
  ``MIN_SAMPLES_PER_GROUP`` samples, so each group still has a baseline of its own;
- demos get no reward (``None``): TRL leaves them out of the group statistics and zeroes their advantage, and the
  trainer then gives them the constant ``demo_advantage``.

Everything here is a pure function of its arguments, so every rank and every resumed run draws the same slots.
"""

from __future__ import annotations

import logging
import math

import torch

#: Samples a group keeps beside its demos: two are the fewest that have a mean and a spread.
MIN_SAMPLES_PER_GROUP = 2


def demo_ratio_at(step: int, start: float, end: float, warmup_steps: int, total_steps: int) -> float:
    """Share of expert demos at ``step``: ``start`` for the warm-up, then linear to ``end`` at ``total_steps``."""
    if step < warmup_steps or total_steps <= warmup_steps:
        return start
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return start + (end - start) * progress


def num_demos(batch_size: int, ratio: float) -> int:
    """How many of ``batch_size`` completions are demos: ``ratio * batch_size`` rounded half up."""
    return int(math.floor(ratio * batch_size + 0.5))


def max_demo_ratio(group_size: int) -> float:
    """The largest demo share that leaves every group of ``group_size`` its ``MIN_SAMPLES_PER_GROUP`` samples."""
    return max(0, group_size - MIN_SAMPLES_PER_GROUP) / group_size


def demo_slots(batch_size: int, group_size: int, ratio: float, seed: int) -> list[bool]:
    """Which of ``batch_size`` completions (consecutive groups of ``group_size``, one state each) are demos.

    ``num_demos(batch_size, ratio)`` demos, capped so that each group keeps ``MIN_SAMPLES_PER_GROUP`` samples,
    dealt round-robin over the groups in a seeded random order and placed at seeded random positions.
    """
    if batch_size % group_size:
        raise ValueError(f"a batch of {batch_size} completions is not whole groups of {group_size}")
    groups = batch_size // group_size
    per_group_cap = max(0, group_size - MIN_SAMPLES_PER_GROUP)
    count = min(num_demos(batch_size, ratio), groups * per_group_cap)
    generator = torch.Generator().manual_seed(seed)
    group_order = torch.randperm(groups, generator=generator).tolist()
    per_group = [0] * groups
    for k in range(count):
        per_group[group_order[k % groups]] += 1
    mask = [False] * batch_size
    for group, n in enumerate(per_group):
        for position in torch.randperm(group_size, generator=generator)[:n].tolist():
            mask[group * group_size + position] = True
    return mask


class _DemoRowsFilter(logging.Filter):
    """TRL warns about each completion that no reward function scored; a GAIL demo is one by design (its reward is
    ``None`` to keep it out of the group baseline), so that warning is dropped for demo rows, and only for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("All reward functions returned None" in message and "'is_demo': True" in message)


logging.getLogger("trl.trainer.grpo_trainer").addFilter(_DemoRowsFilter())
