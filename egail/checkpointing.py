"""What a GAIL checkpoint holds beyond TRL's, how a complete one is told from a torn one, and the non-finite guard.

A ``checkpoint-N`` folder written by `GAILTrainer` holds TRL's files (policy or adapter, optimizer, scheduler,
RNG, trainer state) plus the discriminator (``discriminator/``), its optimizer (``discriminator_optimizer.pt``)
and ``gail_state.json``. The last is written last and atomically, so its presence marks the checkpoint complete:
a run killed while saving leaves a folder without it, which resuming skips.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from egail.discriminator import DISCRIMINATOR_DIR, WEIGHTS_NAME, Discriminator

logger = logging.getLogger(__name__)

DISCRIMINATOR_OPTIMIZER = "discriminator_optimizer.pt"
GAIL_STATE = "gail_state.json"


class NonFiniteTrainingError(RuntimeError):
    """Training stopped after ``max_nonfinite_steps`` consecutive steps with a NaN or infinite loss."""


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """A GAIL checkpoint is complete once its ``gail_state.json`` exists: it is written last, atomically."""
    return (Path(path) / GAIL_STATE).is_file()


def latest_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` in ``output_dir``; half-written ones (a kill while saving) are skipped."""
    folders = [p for p in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()]
    complete = [p for p in folders if is_complete_checkpoint(p)]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def resolve_checkpoint(output_dir: str | os.PathLike, checkpoint: str | bool | None) -> str | None:
    """The checkpoint to resume from: ``True``/"last" is the newest complete one in ``output_dir``; a named one must
    be complete. ``None``/``False`` is a fresh start."""
    if checkpoint in (None, False, "", "false", "False"):
        return None
    if checkpoint is True or str(checkpoint).lower() in ("true", "last", "latest"):
        latest = latest_complete_checkpoint(output_dir)
        if latest is None:
            raise ValueError(f"no complete checkpoint to resume from in {output_dir}")
        skipped = get_last_checkpoint(str(output_dir))
        if skipped and Path(skipped) != Path(latest):
            logger.warning("Skipping incomplete checkpoint %s (killed while saving); resuming from %s", skipped, latest)
        return latest
    if not Path(checkpoint).is_dir():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    if not is_complete_checkpoint(checkpoint):
        raise ValueError(
            f"checkpoint {checkpoint} is incomplete (no {GAIL_STATE}: the run stopped while saving it); resume "
            f"from {latest_complete_checkpoint(Path(checkpoint).parent) or 'an earlier checkpoint'} instead"
        )
    return str(checkpoint)


def save_gail_checkpoint(
    folder: Path, discriminator: Discriminator, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    """Add the discriminator, its optimizer and the GAIL state to a checkpoint TRL has written; state last."""
    discriminator.save_pretrained(folder / DISCRIMINATOR_DIR)
    torch.save(optimizer.state_dict(), folder / DISCRIMINATOR_OPTIMIZER)
    staging = folder / (GAIL_STATE + ".tmp")
    staging.write_text(json.dumps(state, indent=2))
    staging.replace(folder / GAIL_STATE)


def load_gail_checkpoint(
    folder: str | os.PathLike, discriminator: Discriminator, optimizer: torch.optim.Optimizer, device: torch.device
) -> dict[str, Any]:
    """Restore the discriminator and its optimizer from a checkpoint; returns the saved GAIL state."""
    from safetensors.torch import load_file

    folder = Path(folder)
    weights = folder / DISCRIMINATOR_DIR / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has no discriminator ({weights}); it was not written by GAILTrainer.")
    discriminator.load_state_dict(load_file(str(weights), device=str(device)))
    optimizer.load_state_dict(torch.load(folder / DISCRIMINATOR_OPTIMIZER, map_location=device, weights_only=True))
    return json.loads((folder / GAIL_STATE).read_text())


class NonFiniteGuard:
    """Skips updates after a NaN or infinite loss, and stops training after ``limit`` such steps in a row.

    A loss is reported with `saw`; at each optimizer step `skip_update` says (the same on every rank, given the
    ranks' flags gathered by the caller) whether to skip it.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.seen = False  # a non-finite loss on this rank since the last optimizer step
        self.consecutive = 0

    def saw(self, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss).all():
            self.seen = True

    def skip_update(self, any_rank_bad: bool, step: int, output_dir: str) -> bool:
        self.seen = False
        if not any_rank_bad:
            self.consecutive = 0
            return False
        self.consecutive += 1
        logger.warning("Non-finite loss at step %d: policy update skipped (%d in a row).", step, self.consecutive)
        if self.consecutive >= self.limit:
            last = latest_complete_checkpoint(output_dir)
            raise NonFiniteTrainingError(
                f"training stopped at step {step}: {self.consecutive} consecutive steps with a non-finite loss. "
                f"Last good checkpoint: {last or 'none saved'}. Lower the learning rate or check the data, then "
                f"resume from it."
            )
        return True
