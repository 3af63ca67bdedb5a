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
            logger.warning(
                "Skipping incomplete checkpoint %s (killed while saving); resuming from %s", skipped, latest
            )
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


class CheckpointedTraining:
    """The Trainer overrides that make a GAIL run resumable and guarded, mixed into `GAILTrainer` before TRL's class.

    It expects the trainer's ``discriminator``, ``discriminator_optimizer``, ``discriminator_pretrained``,
    ``policy_warmed_up``,
    ``nonfinite`` (a `NonFiniteGuard`) and ``current_demo_ratio()``. Checkpoints gain D, its optimizer and
    ``gail_state.json`` (written last); ``train`` resumes only from complete ones; ``save_model`` puts D beside the
    policy; the policy step is skipped on every process after a non-finite loss on any; the Hub token stays out of
    ``training_args.bin``; checkpoints are never pushed mid-run.
    """

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """Train, resuming from a checkpoint if asked: ``resume_from_checkpoint=True`` (or "last") resumes from the newest *complete* checkpoint in
        ``output_dir``; a half-written one, left by a kill during saving, is never loaded.
        """
        checkpoint = resolve_checkpoint(self.args.output_dir, resume_from_checkpoint)
        return super().train(resume_from_checkpoint=checkpoint, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.nonfinite.saw(loss)
        return loss

    def create_optimizer(self, model=None):
        """The policy optimizer, whose step is skipped on every process after a non-finite loss on any."""
        optimizer = super().create_optimizer(model)
        if not getattr(optimizer, "_egail_guarded", False):
            step = optimizer.step

            def guarded_step(*args, **kwargs):
                flag = torch.tensor([float(self.nonfinite.seen)], device=self.accelerator.device)
                any_bad = bool(self.accelerator.gather(flag).max().item())
                if self.nonfinite.skip_update(any_bad, self.state.global_step + 1, self.args.output_dir):
                    return None
                return step(*args, **kwargs)

            optimizer.step = guarded_step
            optimizer._egail_guarded = True
        return optimizer

    def gail_state(self) -> dict[str, Any]:
        return {
            "global_step": self.state.global_step,
            "demo_ratio": self.current_demo_ratio(),
            "discriminator_pretrained": self.discriminator_pretrained,
            "policy_warmed_up": self.policy_warmed_up,
        }

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            save_gail_checkpoint(folder, self.discriminator, self.discriminator_optimizer, self.gail_state())

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            state = load_gail_checkpoint(
                checkpoint, self.discriminator, self.discriminator_optimizer, self.accelerator.device
            )
            self.discriminator_pretrained = state["discriminator_pretrained"]
            self.policy_warmed_up = state.get("policy_warmed_up", True)  # checkpoints from before the warm-up option

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Save the policy and, beside it, the discriminator. Never pushes: `push_to_hub` does that, once."""
        super().save_model(output_dir, _internal_call=True)
        if self.args.should_save and not _internal_call:
            self.discriminator.save_pretrained(Path(output_dir or self.args.output_dir) / DISCRIMINATOR_DIR)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Trainer pickles the whole config into ``training_args.bin``: keep the Hub token out of that file."""
        token, self.args.hub_token = self.args.hub_token, None
        try:
            super()._save(output_dir, state_dict)
        finally:
            self.args.hub_token = token

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Checkpoints are not published mid-run: they would carry pickles and lack the card. Push at the end."""
