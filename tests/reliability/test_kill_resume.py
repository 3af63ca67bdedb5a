"""Kill -9 a training run while it saves a checkpoint, resume it, and end where an uninterrupted run ends.

Both runs are real ``recipes/train.py`` subprocesses. The killed run saves ``checkpoint-2``, then is held in
the middle of saving ``checkpoint-4`` (a ``sitecustomize`` hook blocks the discriminator's save, so the kill
lands there every time) and SIGKILLed: ``checkpoint-4`` is left half-written and must be skipped, never
loaded. A torn ``checkpoint-5`` (garbage weights, newest trainer state) is planted too, for good measure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from egail.checkpointing import GAIL_STATE, latest_complete_checkpoint
from tests.helpers import PYTHON, RECIPES

RUN_ARGS = [
    "--max_steps", "6",
    "--save_strategy", "steps",
    "--save_steps", "2",
    "--demo_ratio_start", "0.5",
    "--demo_ratio_end", "0.1",
    "--demo_warmup_steps", "1",
    "--learning_rate", "1e-3",  # large enough that a wrong resume shows in the weights
    "--seed", "7",
]  # fmt: skip
TIMEOUT_S = 300


def _command(tiny_overrides: list[str], output_dir: Path, *extra: str) -> list[str]:
    return [PYTHON, str(RECIPES / "train.py"), *tiny_overrides, *RUN_ARGS, "--output_dir", str(output_dir), *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "EGAIL_DEBUG": "1"}


#: Imported by the killed run's interpreter: blocks the discriminator's save into ``checkpoint-4`` after
#: announcing it, so SIGKILL always hits a checkpoint that is half-written (policy and optimizer saved,
#: discriminator and ``gail_state.json`` not).
HOLD_SAVE_HOOK = """
import os, time
from pathlib import Path

if os.environ.get("EGAIL_TEST_HOLD_SAVE"):
    from egail.discriminator import Discriminator

    _save = Discriminator.save_pretrained

    def save_pretrained(self, directory):
        if Path(directory).parent.name == "checkpoint-4":
            Path(os.environ["EGAIL_TEST_HOLD_SAVE"]).write_text("saving checkpoint-4")
            time.sleep(3600)
        return _save(self, directory)

    Discriminator.save_pretrained = save_pretrained
"""


def _start(command: list[str], log: Path, **env: str) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**_env(), **env})


def _finish(process: subprocess.Popen, log: Path) -> None:
    try:
        assert process.wait(timeout=TIMEOUT_S) == 0, log.read_text()[-3000:]
    finally:
        process.kill()


def _kill_while_saving(command: list[str], hooks: Path, log: Path) -> None:
    """Start the run and SIGKILL it while it is writing ``checkpoint-4``."""
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HOLD_SAVE_HOOK)
    saving = hooks / "saving"
    pythonpath = os.pathsep.join(filter(None, [str(hooks), os.environ.get("PYTHONPATH")]))
    process = _start(command, log, PYTHONPATH=pythonpath, EGAIL_TEST_HOLD_SAVE=str(saving))
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while not saving.is_file():
            assert process.poll() is None, f"run ended before checkpoint-4:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "checkpoint-4 was not reached within the time limit"
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def _plant_half_written_checkpoint(output_dir: Path, good: Path, step: int) -> Path:
    """What a kill during saving leaves: trainer files and torn weights, but no ``gail_state.json``."""
    torn = output_dir / f"checkpoint-{step}"
    torn.mkdir()
    for name in ("config.json", "trainer_state.json", "training_args.bin"):
        (torn / name).write_bytes((good / name).read_bytes())
    weights = (good / "model.safetensors").read_bytes()
    (torn / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    (torn / "discriminator").mkdir()
    (torn / "discriminator" / "model.safetensors").write_bytes(b"\0" * 64)
    return torn


def _assert_same_weights(left: Path, right: Path) -> None:
    a, b = load_file(str(left)), load_file(str(right))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=f"{left.name} differs at {key}")


def _demo_ratios(trainer_state: Path) -> dict[int, float]:
    history = json.loads(trainer_state.read_text())["log_history"]
    return {entry["step"]: entry["demo/ratio"] for entry in history if "demo/ratio" in entry}


@pytest.mark.slow  # three training subprocesses: about 1 to 2.5 minutes on 2 CPU cores
def test_sigkill_then_resume_matches_an_uninterrupted_run(tiny_overrides, tiny_lm_path, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    uninterrupted = _start(_command(tiny_overrides, reference), tmp_path / "reference.log")  # alongside
    _kill_while_saving(_command(tiny_overrides, killed), tmp_path / "hooks", tmp_path / "killed.log")
    _finish(uninterrupted, tmp_path / "reference.log")
    half_written = killed / "checkpoint-4"
    assert (half_written / "model.safetensors").is_file() and (half_written / "optimizer.pt").is_file()
    assert not (half_written / GAIL_STATE).exists() and not (half_written / "discriminator").exists()
    resume_from = killed / "checkpoint-2"
    assert latest_complete_checkpoint(killed) == str(resume_from)
    torn = _plant_half_written_checkpoint(killed, resume_from, step=5)

    log = tmp_path / "resumed.log"
    _finish(_start(_command(tiny_overrides, killed, "--resume_from_checkpoint", "true"), log), log)
    text = log.read_text()
    assert f"Skipping incomplete checkpoint {torn}" in text and f"resuming from {resume_from}" in text
    assert (half_written / GAIL_STATE).is_file()  # the resumed run wrote checkpoint-4 again, completely
    assert "Pre-training discriminator" not in text  # a resumed run does not pre-train again

    final_state = json.loads((killed / "checkpoint-6" / "trainer_state.json").read_text())
    steps_logged = [entry["step"] for entry in final_state["log_history"] if "loss" in entry]
    assert steps_logged == list(range(1, 7))  # steps before the checkpoint come from it, the rest were trained

    for name in ("model.safetensors", "discriminator/model.safetensors"):
        _assert_same_weights(reference / name, killed / name)
    with pytest.raises(AssertionError):  # training moved the policy, so equal weights mean an exact resume
        _assert_same_weights(Path(tiny_lm_path) / "model.safetensors", killed / "model.safetensors")
    _assert_same_weights(
        reference / "checkpoint-6" / "model.safetensors", killed / "checkpoint-6" / "model.safetensors"
    )
    reference_gail = json.loads((reference / "checkpoint-6" / GAIL_STATE).read_text())
    resumed_gail = json.loads((killed / "checkpoint-6" / GAIL_STATE).read_text())
    assert resumed_gail["global_step"] == reference_gail["global_step"] == 6
    assert resumed_gail["demo_ratio"] == pytest.approx(reference_gail["demo_ratio"]) == pytest.approx(0.1)
    reference_ratios = _demo_ratios(reference / "checkpoint-6" / "trainer_state.json")
    assert _demo_ratios(killed / "checkpoint-6" / "trainer_state.json") == pytest.approx(reference_ratios)
    assert len(set(reference_ratios.values())) > 1  # the schedule really moved during the run


def test_one_seed_gives_one_discriminator_whatever_ran_before(tmp_path, tiny_lm_path, tiny_encoder_path):
    """A resumed run is only comparable to a fresh one if a fresh one is itself reproducible."""
    from egail import GAILTrainer
    from tests.helpers import make_args, trajectories

    heads = []
    for noise in (1, 2):
        torch.manual_seed(noise)  # what a caller did before building the trainer must not matter
        args = make_args(tmp_path, discriminator_encoder=tiny_encoder_path, seed=3)
        heads.append(
            GAILTrainer(tiny_lm_path, args=args, train_dataset=trajectories()).discriminator.head.state_dict()
        )
    for key, value in heads[0].items():
        assert torch.equal(value, heads[1][key]), key
