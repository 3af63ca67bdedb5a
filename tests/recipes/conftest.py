"""Helpers to run the recipes in-process (fast) or as real subprocesses (for launchers and exit codes)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def load_recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_overrides(tmp_path, tiny_lm_path, tiny_encoder_path) -> list[str]:
    """Command-line overrides that shrink any GAIL config to one fast step on tiny models."""
    return [
        "--model_name_or_path", tiny_lm_path,
        "--discriminator_encoder", tiny_encoder_path,
        "--dataset_name", "embedded",
        "--output_dir", str(tmp_path / "out"),
        "--max_steps", "1",
        "--num_generations", "4",
        "--generation_batch_size", "8",
        "--per_device_train_batch_size", "4",
        "--max_completion_length", "8",
        "--discriminator_pretrain_steps", "1",
        "--warmup_steps", "0",
        "--use_cpu", "true",
        "--bf16", "false",
        "--report_to", "none",
        "--logging_steps", "1",
    ]


PYTHON = sys.executable
