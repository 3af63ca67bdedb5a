"""Turning a dialogue state (history, prompt) into model input, and generated tokens back into a reply.

Every part of egail (the GAIL rollouts, the SFT baseline, evaluation, the chat demo and the Space) must show a
model the same text for the same state, and read its answer the same way, or their numbers are not comparable
and the model evaluated is not the model served. This module is that one place: `fit_state` fits and renders a
state, `response_ids` ends an answer, `decode_reply` reads one back.

A state is ``history`` (earlier utterances, oldest first, alternating user / assistant and starting with
the user) plus ``prompt`` (the user's latest utterance). The answer is the assistant's ``response``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: Used when a tokenizer has no chat template (e.g. plain ``gpt2``): documented, stable, plain text.
PLAIN_USER_PREFIX = "User: "
PLAIN_ASSISTANT_PREFIX = "Assistant: "

# A sentence ends at . ! ? or an ellipsis, with any closing quotes or brackets, before a space or the end.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)")


def build_messages(history: list[str], prompt: str, system: str | None = None) -> list[dict[str, str]]:
    """Chat messages for a state: history alternates user/assistant, then the prompt as a user turn."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    # Count roles backwards from the prompt (always the user), so an odd-length history still alternates.
    n = len(history)
    for i, utterance in enumerate(history):
        role = "user" if (n - i) % 2 == 0 else "assistant"
        messages.append({"role": role, "content": utterance})
    messages.append({"role": "user", "content": prompt})
    return messages


def truncate_history(history: list[str], max_turns: int | None) -> list[str]:
    """Keep the last ``max_turns`` turns (a turn is a user utterance and its reply: two utterances)."""
    if max_turns is None or max_turns < 0:
        return list(history)
    if max_turns == 0:
        return []
    return list(history[-2 * max_turns :])


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_plain(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """The plain-text format for models without a chat template: ``User: ...`` / ``Assistant: ...`` lines."""
    lines = []
    for message in messages:
        if message["role"] == "system":
            lines.append(message["content"])
        else:
            prefix = PLAIN_USER_PREFIX if message["role"] == "user" else PLAIN_ASSISTANT_PREFIX
            lines.append(prefix + message["content"])
    text = "\n".join(lines) + "\n"
    if add_generation_prompt:
        text += PLAIN_ASSISTANT_PREFIX
    return text


def render_prompt(tokenizer: Any, history: list[str], prompt: str, system: str | None = None) -> str:
    """The text a model sees before it answers: its chat template, or the plain format without one."""
    messages = build_messages(history, prompt, system)
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return render_plain(messages)


def response_suffix(tokenizer: Any) -> str:
    """Text that closes an assistant answer: the end-of-turn token of the template, else a newline + EOS."""
    if has_chat_template(tokenizer):
        return tokenizer.eos_token or ""
    return "\n" + (tokenizer.eos_token or "")


def encode_prompt(tokenizer: Any, text: str) -> list[int]:
    """Token ids of a rendered prompt: a chat template writes its own special tokens, the plain format gets the
    tokenizer's usual ones (as TRL tokenizes prompts)."""
    return tokenizer(text, add_special_tokens=not has_chat_template(tokenizer))["input_ids"]


@dataclass(frozen=True)
class FittedState:
    """A state cut to a token budget: what is left of it, its rendering and token ids, and whether the prompt
    itself had to be cut."""

    history: list[str]
    prompt: str
    text: str
    input_ids: list[int]
    prompt_cut: bool


def fit_state(
    tokenizer: Any,
    history: list[str],
    prompt: str,
    max_tokens: int | None,
    history_max_turns: int | None = None,
    system: str | None = None,
) -> FittedState:
    """The state as a model sees it: at most ``history_max_turns`` earlier turns, then the oldest turns dropped
    until the rendered prompt fits ``max_tokens`` tokens (``None``: no limit).

    Training, SFT, evaluation and the chat all call this, so one state is one input everywhere. A prompt that
    alone does not fit keeps its end, where a question usually is; a budget that leaves no room for any prompt
    is a ``ValueError``.
    """
    history = truncate_history(history, history_max_turns)
    while True:
        text = render_prompt(tokenizer, history, prompt, system)
        ids = encode_prompt(tokenizer, text)
        if max_tokens is None or len(ids) <= max_tokens:
            return FittedState(history, prompt, text, ids, prompt_cut=False)
        if not history:
            break
        history = history[2:] if len(history) > 1 else []  # a turn is a user utterance and its reply

    overhead = len(encode_prompt(tokenizer, render_prompt(tokenizer, [], "", system)))
    prompt_ids = tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"]
    keep = max_tokens - overhead
    while keep > 0:
        cut = tokenizer.decode(prompt_ids[-keep:], skip_special_tokens=True).strip()
        text = render_prompt(tokenizer, [], cut, system)
        ids = encode_prompt(tokenizer, text)
        if len(ids) <= max_tokens:
            return FittedState([], cut, text, ids, prompt_cut=True)
        keep -= max(1, len(ids) - max_tokens)  # decode and encode need not round-trip token for token
    raise ValueError(
        f"a budget of {max_tokens} tokens leaves no room for a prompt: the prompt format alone takes {overhead}."
    )


def response_ids(tokenizer: Any, response: str) -> list[int]:
    """Token ids of an answer as the model should produce it: the text, then what closes its turn.

    The demos of GAIL and the targets of SFT both end this way, so both teach the same end of a reply.
    """
    return tokenizer(response + response_suffix(tokenizer), add_special_tokens=False)["input_ids"]


def decode_reply(tokenizer: Any, new_token_ids: list[int], stop_ids: Iterable[int], max_new_tokens: int) -> str:
    """The reply in generated tokens, read the way `response_ids` ends one.

    The reply ends at the first of ``stop_ids`` (an end of turn); in the plain format, where every utterance is
    one line (`response_suffix`), also at the first newline. A reply that ran into ``max_new_tokens`` without
    ending is cut back to its last finished sentence, when it has one, rather than shown stopping mid-word.
    """
    stops = set(stop_ids)
    cut = next((i for i, token in enumerate(new_token_ids) if token in stops), None)
    text = tokenizer.decode(new_token_ids[:cut], skip_special_tokens=True)
    if not has_chat_template(tokenizer):
        line, newline, _ = text.partition("\n")
        text, ended = line, bool(newline)
    else:
        ended = False
    text = text.strip()
    if cut is None and not ended and len(new_token_ids) >= max_new_tokens:
        # "2." alone on a line is a list marker, not the end of a sentence.
        ends = [
            m.end()
            for m in _SENTENCE_END.finditer(text)
            if not text[text.rfind("\n", 0, m.start()) + 1 : m.start()].strip().isdigit()
        ]
        if ends:
            text = text[: ends[-1]].strip()
    return text
