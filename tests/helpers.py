"""Plain helpers shared by test modules (fixtures live in the conftest.py files, and are never imported)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
RECIPES = REPO_ROOT / "recipes"
PYTHON = sys.executable


def load_recipe(name: str):
    """``recipes/<name>.py`` as a module, to run a recipe in-process (fast)."""
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- GAIL trainer inputs
SAD = "My dog passed away this morning and the house feels empty."
SAD_REPLY = "I'm so sorry. Losing a dog is losing family. How are you holding up?"


def trajectories(n: int = 16) -> Any:
    """``n`` sad expert trajectories, a third without history."""
    from datasets import Dataset

    rows = []
    for i in range(n):
        history = [] if i % 3 == 0 else ["I had a rough week at work.", "That sounds exhausting. What happened?"]
        rows.append(
            {"history": history, "prompt": f"{SAD} ({i})", "response": f"{SAD_REPLY} ({i})", "conv_id": str(i)}
        )
    return Dataset.from_list(rows)


def make_args(tmp_path, **overrides) -> Any:
    """A `GAILConfig` for two-group rollouts of tiny models on CPU; ``overrides`` win."""
    from egail import GAILConfig

    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        per_device_train_batch_size=4,
        num_generations=4,
        generation_batch_size=8,
        max_completion_length=10,
        discriminator_pretrain_steps=0,
        demo_warmup_steps=0,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=0,
        use_cpu=True,
        gradient_checkpointing=False,
        learning_rate=1e-3,
    )
    settings.update(overrides)
    return GAILConfig(**settings)
