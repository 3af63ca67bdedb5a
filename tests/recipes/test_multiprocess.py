"""Two real CPU processes (torchrun, gloo) run 2 GAIL steps; both ranks must end identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import RECIPES

WORKER = Path(__file__).with_name("distributed_worker.py")


def run_two_ranks(tmp_path, tiny_overrides, port: int, extra: tuple[str, ...] = (), **env_extra: str) -> list[dict]:
    overrides = [*tiny_overrides, *extra]
    overrides[overrides.index("--max_steps") + 1] = "2"
    overrides[overrides.index("--generation_batch_size") + 1] = "8"  # 2 ranks x one group of 4
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(port),
        str(WORKER),
        str(tmp_path),
        "--config",
        str(RECIPES / "configs" / "quickstart-cpu.yaml"),
        *overrides,
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env_extra}
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.multiprocess
def test_two_processes_keep_identical_policy_and_discriminator(tmp_path, tiny_overrides):
    reports = run_two_ranks(tmp_path, tiny_overrides, 29517)
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["backend"] == "gloo"
    assert [r["global_step"] for r in reports] == [2, 2]
    assert reports[0]["policy"] == reports[1]["policy"]
    assert reports[0]["discriminator"] == reports[1]["discriminator"]
    assert reports[0]["demo_ratio"] == reports[1]["demo_ratio"]


@pytest.mark.multiprocess
def test_a_nan_discriminator_loss_on_one_rank_skips_the_step_on_both_without_a_hang(tmp_path, tiny_overrides):
    reports = run_two_ranks(tmp_path, tiny_overrides, 29518, NAN_DISCRIMINATOR_RANK="1")  # 900 s timeout: no hang
    assert [r["global_step"] for r in reports] == [2, 2]
    # neither rank took a discriminator step (pre-training included): both still hold the initial weights
    assert reports[0]["discriminator"] == reports[1]["discriminator"] == reports[0]["discriminator_at_start"]
    assert reports[0]["policy"] == reports[1]["policy"]
