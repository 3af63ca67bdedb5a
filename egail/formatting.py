"""Turning a dialogue state (history, prompt) into model input.

Every part of egail (the GAIL rollouts, the SFT baseline, evaluation, the chat demo) must show a model
the same text for the same state, or their numbers are not comparable. This module is that one place.

A state is ``history`` (earlier utterances, oldest first, alternating user / assistant and starting with
the user) plus ``prompt`` (the user's latest utterance). The answer is the assistant's ``response``.
"""

from __future__ import annotations

from typing import Any

#: Used when a tokenizer has no chat template (e.g. plain ``gpt2``): documented, stable, plain text.
PLAIN_USER_PREFIX = "User: "
PLAIN_ASSISTANT_PREFIX = "Assistant: "


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
