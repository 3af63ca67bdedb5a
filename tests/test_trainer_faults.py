"""Numerical faults and interrupted checkpoints: skip bad updates, stop cleanly, never load half a checkpoint."""

from __future__ import annotations

import logging

import pytest
import torch

from egail.checkpointing import GAIL_STATE, NonFiniteTrainingError, latest_complete_checkpoint, resolve_checkpoint


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _unchanged(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_nan_policy_loss_skips_the_update_with_a_warning(trainer_factory, caplog, monkeypatch):
    trainer = trainer_factory(max_steps=1, demo_ratio_start=0.0)
    original = trainer.compute_loss
    monkeypatch.setattr(trainer, "compute_loss", lambda *a, **k: original(*a, **k) * float("nan"))
    before = _snapshot(trainer.model)
    with caplog.at_level(logging.WARNING, logger="egail.trainer"):
        trainer.train()
    assert _unchanged(trainer.model, before)
    assert trainer.state.global_step == 1
    assert "policy update skipped" in caplog.text


def test_nan_discriminator_loss_skips_its_update(trainer_factory, caplog):
    trainer = trainer_factory(max_steps=1)
    before = _snapshot(trainer.discriminator)
    trainer.discriminator.head.register_forward_hook(lambda module, inputs, output: output * float("nan"))
    with caplog.at_level(logging.WARNING, logger="egail.trainer"):
        trainer.train()
    assert _unchanged(trainer.discriminator, before)
    assert "Non-finite discriminator loss" in caplog.text


def test_consecutive_nan_steps_stop_training_and_keep_the_last_checkpoint(trainer_factory, tmp_path, monkeypatch):
    trainer = trainer_factory(max_steps=8, save_strategy="steps", save_steps=2, max_nonfinite_steps=3)
    original = trainer.compute_loss

    def poisoned_after_step_two(*args, **kwargs):
        loss = original(*args, **kwargs)
        return loss * float("nan") if trainer.state.global_step >= 2 else loss

    monkeypatch.setattr(trainer, "compute_loss", poisoned_after_step_two)
    with pytest.raises(NonFiniteTrainingError, match="3 consecutive steps .* Last good checkpoint: .*checkpoint-4"):
        trainer.train()
    from safetensors.torch import load_file

    run = tmp_path / "run"
    assert latest_complete_checkpoint(run) == str(run / "checkpoint-4")
    # steps 3-4 were skipped, so checkpoint-4 holds exactly the good weights of step 2, all finite
    before, after = (load_file(str(run / name / "model.safetensors")) for name in ("checkpoint-2", "checkpoint-4"))
    assert all(torch.equal(before[k], after[k]) and torch.isfinite(after[k]).all() for k in before)


def test_half_written_checkpoint_is_skipped_on_resume(trainer_factory, tmp_path, caplog):
    trainer = trainer_factory(max_steps=4, save_strategy="steps", save_steps=2)
    trainer.train()
    run = tmp_path / "run"
    (run / "checkpoint-4" / GAIL_STATE).unlink()  # as if killed while writing checkpoint-4
    assert latest_complete_checkpoint(run) == str(run / "checkpoint-2")

    resumed = trainer_factory(max_steps=4, save_strategy="no")
    with caplog.at_level(logging.WARNING, logger="egail.checkpointing"):
        assert resolve_checkpoint(resumed.args.output_dir, True) == str(run / "checkpoint-2")
    assert "Skipping incomplete checkpoint" in caplog.text
    with pytest.raises(ValueError, match="checkpoint-4 is incomplete .* resume from .*checkpoint-2"):
        resumed.train(resume_from_checkpoint=str(run / "checkpoint-4"))
