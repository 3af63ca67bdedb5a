"""Perplexity of the reference response given the dialogue state, through the model's own chat template.

Only the response is scored: the model reads ``render_prompt(history, prompt)`` and we sum the negative
log-likelihood of ``response + response_suffix`` (the end-of-turn token is part of answering). A bucket's
perplexity is corpus-level, ``exp(total NLL / total response tokens)``, like the paper's formula over a
test set. Token counts depend on the tokenizer, so we also report per-word perplexity,
``exp(total NLL / total reference words)``, which compares models with different tokenizers.

The prompt is `egail.formatting.fit_state`'s, as the chat and the GAIL rollouts build it, and the response is
`egail.formatting.response_ids`, as GAIL's demos and SFT's targets end it, so the scored tokens are the ones the
model would have to generate after that prompt. A state longer than the context keeps the response and loses
its oldest turns, then the start of its prompt, never the template.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from egail.formatting import fit_state, response_ids
from egail.generation import context_window


@dataclass(frozen=True)
class ResponseNLL:
    """Summed NLL (nats) of one response's tokens, how many tokens, and whether the prompt was cut."""

    nll: float
    tokens: int
    truncated: bool = False


def encode_state(
    tokenizer: Any, history: list[str], prompt: str, response: str, max_length: int, system: str | None = None
) -> tuple[list[int], int, bool]:
    """Token ids of prompt + response, the number of response tokens at the end, and whether either was cut."""
    answer = response_ids(tokenizer, response)
    if not answer:
        raise ValueError("The response and its suffix tokenize to nothing; there is nothing to score.")
    minimal = len(fit_state(tokenizer, [], "x", None, system=system).input_ids)
    # The prompt keeps room for its format and a token of its own: the first response token is predicted from it.
    truncated = len(answer) > max_length - minimal
    if truncated:
        answer = answer[: max_length - minimal]
    state = fit_state(tokenizer, history, prompt, max_length - len(answer), system=system)
    truncated = truncated or state.prompt_cut or len(state.history) < len(history)
    return state.input_ids + answer, len(answer), truncated


def _accepts(model: Any, argument: str) -> bool:
    return argument in inspect.signature(model.forward).parameters


@torch.inference_mode()
def response_nlls(
    model: Any,
    tokenizer: Any,
    histories: list[list[str]],
    prompts: list[str],
    responses: list[str],
    batch_size: int = 8,
    max_length: int | None = None,
    system: str | None = None,
) -> list[ResponseNLL]:
    """Per-row summed NLL of each reference response, batched with left padding.

    Left padding puts every response at the end of the batch, so only the last positions' logits are
    needed (``logits_to_keep``); position ids follow the attention mask so a padded row scores exactly as
    it would alone.
    """
    if not (len(histories) == len(prompts) == len(responses)):
        raise ValueError("histories, prompts and responses must have the same length.")
    model.eval()
    device = next(model.parameters()).device
    limit = context_window(model, tokenizer, max_length)
    encoded = [
        encode_state(tokenizer, h, p, r, limit, system) for h, p, r in zip(histories, prompts, responses, strict=True)
    ]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    keep_logits = _accepts(model, "logits_to_keep")
    pass_positions = _accepts(model, "position_ids")

    results: list[ResponseNLL | None] = [None] * len(encoded)
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        width = max(len(encoded[i][0]) for i in batch)
        n_keep = max(encoded[i][1] for i in batch)
        input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):
            ids = encoded[i][0]
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            attention_mask[row, width - len(ids) :] = 1
        inputs = {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}
        if pass_positions:
            inputs["position_ids"] = (attention_mask.cumsum(-1) - 1).clamp(min=0).to(device)
        if keep_logits:
            inputs["logits_to_keep"] = n_keep + 1
        logits = model(**inputs).logits[:, -(n_keep + 1) : -1].float()
        targets = input_ids[:, -n_keep:].to(device)
        token_nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
        token_nll = token_nll.view(len(batch), n_keep)
        for row, i in enumerate(batch):
            n = encoded[i][1]
            results[i] = ResponseNLL(float(token_nll[row, n_keep - n :].sum()), n, encoded[i][2])
    return results  # type: ignore[return-value]


def perplexity(scores: list[ResponseNLL], words: int | None = None) -> float:
    """``exp(total NLL / total tokens)``, or per ``words`` when given (per-word perplexity)."""
    if not scores:
        return float("nan")
    total = sum(s.nll for s in scores)
    denominator = words if words is not None else sum(s.tokens for s in scores)
    if denominator <= 0:
        return float("nan")
    return math.exp(total / denominator)
