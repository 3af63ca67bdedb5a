"""Sampling replies: one set of generation settings and one generation path for the chat, the Space and evaluation.

What the evaluation scores must be what the Space serves. Both fit a state with `egail.formatting.fit_state`
to the same budget (`prompt_budget`), sample with the same `GenerationSettings` through `generate_replies`,
and end the reply with `egail.formatting.decode_reply`; only the guard and the fallback line of
`egail.chat.EmpatheticResponder.respond` are on top, in the chat alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from egail.formatting import decode_reply

# Larger "context windows" are placeholders (tokenizers use 1e30 for "unknown"), not real limits.
_MAX_SANE_CONTEXT = 1_000_000


@dataclass(frozen=True)
class GenerationSettings:
    """How a reply is sampled, for the chat, the Space and evaluation alike (results.json records it).

    Every field is passed to ``generate`` explicitly (``top_k=0`` turns top-k off), so no model's own
    ``generation_config`` changes how it is decoded. ``seed`` re-seeds before each call of `generate_replies`
    (``None``: the chat does not re-seed; evaluation passes its own seeds).
    """

    max_new_tokens: int = 64
    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 0
    repetition_penalty: float = 1.1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}.")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 (use do_sample=False for greedy), got {self.temperature}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 turns it off), got {self.top_k}.")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}.")

    def generate_kwargs(self) -> dict[str, Any]:
        """Arguments for ``model.generate`` (the seed is applied separately)."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)
        else:  # transformers warns about sampling arguments on greedy decoding; say greedy plainly
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def add_arguments(parser: Any) -> None:
        """Add the command-line flags of every field but ``seed`` to ``parser`` (an ``argparse`` parser or argument
        group): the chat and the evaluation recipe take the same flags, with the same defaults."""
        defaults = GenerationSettings()
        parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
        parser.add_argument("--temperature", type=float, default=defaults.temperature)
        parser.add_argument("--top-p", type=float, default=defaults.top_p)
        parser.add_argument("--top-k", type=int, default=defaults.top_k, help="0 turns top-k off")
        parser.add_argument("--repetition-penalty", type=float, default=defaults.repetition_penalty)
        parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, seed: int | None = None) -> GenerationSettings:
        """The settings given by the flags of `add_arguments`."""
        return cls(
            max_new_tokens=args.max_new_tokens,
            do_sample=not args.greedy,
            temperature=args.temperature,
            top_p=args.top_p,
            top_k=args.top_k,
            repetition_penalty=args.repetition_penalty,
            seed=seed,
        )


def context_window(model: Any, tokenizer: Any, cap: int | None = None) -> int:
    """The longest input the model takes: its positions, the tokenizer's limit when it is a real one, and ``cap``."""
    config = model.config
    candidates = [
        getattr(config, "max_position_embeddings", None),
        getattr(config, "n_positions", None),
        getattr(tokenizer, "model_max_length", None),
        cap,
    ]
    sane = [int(c) for c in candidates if isinstance(c, int) and 0 < c <= _MAX_SANE_CONTEXT]
    if not sane:
        raise ValueError(
            "Cannot tell the model's context window (no sane config.max_position_embeddings or "
            "tokenizer.model_max_length); pass one explicitly."
        )
    return min(sane)


def prompt_budget(model: Any, tokenizer: Any, settings: GenerationSettings, cap: int | None = None) -> int:
    """Tokens a fitted prompt may take so that it and a whole reply fit the context window."""
    window = context_window(model, tokenizer, cap)
    if settings.max_new_tokens >= window:
        raise ValueError(
            f"max_new_tokens={settings.max_new_tokens} leaves no room for the prompt in a {window}-token context window."
        )
    return window - settings.max_new_tokens


def stop_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Tokens that end a reply: every special token (an end of turn, or the start of another) and the EOS ids."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    for source in (tokenizer.eos_token_id, getattr(model.generation_config, "eos_token_id", None)):
        if isinstance(source, int):
            ids.add(source)
        elif source:
            ids.update(source)
    return sorted(ids)


def generate_replies(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[Sequence[int]],
    settings: GenerationSettings,
    seed: int | None = None,
    batch_size: int = 1,
) -> list[str]:
    """One reply per fitted prompt (token ids from `egail.formatting.fit_state`), in the order given.

    Re-seeds with ``seed`` (else ``settings.seed``) first, when there is one, so one seed gives one set of
    replies. Prompts are batched by length with left padding (less padding); a prompt alone in its batch is
    sampled exactly as the chat samples it.
    """
    import torch
    from transformers import set_seed

    seed = settings.seed if seed is None else seed
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stops = stop_token_ids(model, tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    replies = [""] * len(prompts)
    model.eval()
    if seed is not None:
        set_seed(seed)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            width = max(len(prompts[i]) for i in indices)
            input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
            for row, i in enumerate(indices):
                input_ids[row, width - len(prompts[i]) :] = torch.tensor(list(prompts[i]), dtype=torch.long)
                attention_mask[row, width - len(prompts[i]) :] = 1
            output = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=attention_mask.to(device),
                pad_token_id=pad_id,
                eos_token_id=stops,
                **settings.generate_kwargs(),
            )
            for row, i in enumerate(indices):
                new_ids = output[row, width:].tolist()
                replies[i] = decode_reply(tokenizer, new_ids, stops, settings.max_new_tokens)
    return replies
