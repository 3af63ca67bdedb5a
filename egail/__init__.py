"""egail: empathetic chatbots by Generative Adversarial Imitation Learning, built on TRL."""

from __future__ import annotations

import importlib
from typing import Any

#: The one definition of egail's version: pyproject.toml reads it from here (``[tool.setuptools.dynamic]``).
__version__ = "0.1.0"

# Imports are lazy so `import egail` (and the CLIs) stay fast and torch loads only when needed.
_EXPORTS = {
    "GAILConfig": "egail.config",
    "GAILTrainer": "egail.trainer",
    "Discriminator": "egail.discriminator",
    "DiscriminatorConfig": "egail.discriminator",
    "SentimentHistory": "egail.sentiment",
    "EmpatheticResponder": "egail.chat",
    "GenerationSettings": "egail.generation",
    "CrisisGuard": "egail.safety",
    "load_trajectories": "egail.data",
    "load_causal_lm": "egail.models",
    "load_policy": "egail.models",
    "load_tokenizer": "egail.models",
    "resolve_model_path": "egail.models",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'egail' has no attribute {name!r}")
