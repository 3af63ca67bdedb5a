"""Sampling responses for evaluation with one explicit set of generation settings for every model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from egail.formatting import has_chat_template, render_prompt


@dataclass(frozen=True)
class GenerationSettings:
    """How every model answers during evaluation; written into results.json.

    Sample-based metrics are averaged over ``seeds`` (mean ± std); with ``do_sample=False`` decoding is
    greedy and one seed is enough. Every field is passed to ``generate`` explicitly (``top_k=0`` turns
    top-k off), so no model's own ``generation_config`` defaults change how it is decoded.
    """

    max_new_tokens: int = 48
    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.0
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 32  # on a CPU, 32 generates about twice as fast as 8 (SmolLM2-135M)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
        if not self.seeds:
            raise ValueError("seeds must name at least one seed.")
        if self.do_sample and not (self.temperature > 0 and 0 < self.top_p <= 1):
            raise ValueError(
                f"sampling needs temperature > 0 and 0 < top_p <= 1, got {self.temperature}, {self.top_p}."
            )
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    @property
    def decoding_seeds(self) -> tuple[int, ...]:
        """Greedy decoding is deterministic: only the first seed is run."""
        return self.seeds if self.do_sample else self.seeds[:1]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"seeds": list(self.seeds)}


def clean_response(text: str, tokenizer: Any) -> str:
    """The answer part of a decoded continuation.

    In the plain format (no chat template) each utterance is one line, so the answer ends at the first
    newline; a template ends it with its end-of-turn token, which generation stops on and decoding drops.
    """
    if not has_chat_template(tokenizer):
        text = text.split("\n", 1)[0]
    return text.strip()


@torch.inference_mode()
def generate_responses(
    model: Any,
    tokenizer: Any,
    histories: list[list[str]],
    prompts: list[str],
    settings: GenerationSettings,
    seed: int,
    max_prompt_length: int | None = None,
    system: str | None = None,
) -> list[str]:
    """One response per state, sampled under ``seed`` (the same seed gives the same responses).

    States are batched by length (less padding); a prompt longer than ``max_prompt_length`` tokens loses
    its oldest tokens, as in perplexity scoring.
    """
    from transformers import set_seed

    model.eval()
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    texts = [render_prompt(tokenizer, h, p, system) for h, p in zip(histories, prompts, strict=True)]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    sampling = (
        {"temperature": settings.temperature, "top_p": settings.top_p, "top_k": settings.top_k}
        if settings.do_sample
        else {}
    )
    truncation_side, tokenizer.truncation_side = tokenizer.truncation_side, "left"
    set_seed(seed)
    responses: list[str] = [""] * len(texts)
    try:
        for start in range(0, len(order), settings.batch_size):
            indices = order[start : start + settings.batch_size]
            batch = tokenizer(
                [texts[i] for i in indices],
                add_special_tokens=False,
                padding=True,
                padding_side="left",
                truncation=max_prompt_length is not None,
                max_length=max_prompt_length,
                return_tensors="pt",
            ).to(device)
            output = model.generate(
                **batch,
                max_new_tokens=settings.max_new_tokens,
                do_sample=settings.do_sample,
                pad_token_id=pad_id,
                eos_token_id=tokenizer.eos_token_id,
                repetition_penalty=settings.repetition_penalty,
                **sampling,
            )
            decoded = tokenizer.batch_decode(output[:, batch["input_ids"].shape[1] :], skip_special_tokens=True)
            for i, text in zip(indices, decoded, strict=True):
                responses[i] = clean_response(text, tokenizer)
    finally:
        tokenizer.truncation_side = truncation_side
    return responses
