"""Plain helpers shared by test modules (fixtures live in the conftest.py files, and are never imported)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
