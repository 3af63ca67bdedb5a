"""Sampling responses for evaluation: the chat's own fitting and generation path, batched over many states."""

from __future__ import annotations

from typing import Any

from egail.formatting import fit_state
from egail.generation import GenerationSettings, generate_replies


def generate_responses(
    model: Any,
    tokenizer: Any,
    histories: list[list[str]],
    prompts: list[str],
    settings: GenerationSettings,
    seed: int,
    max_prompt_length: int | None = None,
    system: str | None = None,
    history_max_turns: int | None = None,
    batch_size: int = 1,
) -> list[str]:
    """One response per state, sampled under ``seed`` (the same seed gives the same responses).

    Each state is fitted to ``max_prompt_length`` tokens by `egail.formatting.fit_state` (oldest turns first,
    then the prompt's start; never the template), as the chat fits it, and sampled by
    `egail.generation.generate_replies`, as the chat samples it.
    """
    fitted = [
        fit_state(tokenizer, history, prompt, max_prompt_length, history_max_turns, system).input_ids
        for history, prompt in zip(histories, prompts, strict=True)
    ]
    return generate_replies(model, tokenizer, fitted, settings, seed=seed, batch_size=batch_size)
