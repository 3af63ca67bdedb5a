"""What a GAIL rollout is made of: the states it samples from, and the record the discriminator learns from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset

from egail.config import GAILConfig
from egail.formatting import build_messages, fit_state, has_chat_template, render_plain, response_ids
from egail.schema import is_oneliner, validate_trajectories


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The text of a completion, conversational (a list of messages) or plain."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


@dataclass(frozen=True)
class Rollout:
    """A rollout as D learns from it: per completion, its state, the expert's response (cut and decoded like a
    completion) and the completion's text, and whether that completion is a demo (expert text, not a sample)."""

    histories: list[list[str]]
    prompts: list[str]
    expert: list[str]
    completions: list[str]
    is_demo: list[bool]

    @property
    def sampled(self) -> list[int]:
        return [i for i, demo in enumerate(self.is_demo) if not demo]


def rollout_states(dataset: Dataset, tokenizer: Any, args: GAILConfig, name: str) -> Dataset:
    """Validate trajectories and add what a rollout needs: the policy prompt, the state, the demo.

    The state is fitted by `egail.formatting.fit_state` (as SFT, evaluation and the chat fit it): ``prompt``
    becomes chat messages (or the plain rendering), the utterance moves to ``prompt_text``. The demo is the
    expert's response as the policy would end it (`response_ids`), cut at ``max_completion_length`` like a
    sample; ``expert_text`` is those tokens decoded as completions are, so D compares like with like.
    One-liners are dropped unless ``args.include_oneliners``.
    """
    validate_trajectories(dataset, name)
    if not args.include_oneliners:
        dataset = dataset.filter(lambda row: not is_oneliner(row), desc=f"Dropping one-liners from {name}")
        if len(dataset) == 0:
            raise ValueError(f"{name} holds only one-liners, which GAIL leaves out; set include_oneliners=True.")
    chat = has_chat_template(tokenizer)

    def to_state(row: dict) -> dict:
        state = fit_state(
            tokenizer, row["history"], row["prompt"], args.max_prompt_length, args.history_max_turns,
            args.system_prompt,
        )  # fmt: skip
        messages = build_messages(state.history, state.prompt, args.system_prompt)
        demo_ids = response_ids(tokenizer, row["response"])[: args.max_completion_length]
        return {
            "prompt": messages if chat else render_plain(messages),
            "prompt_text": state.prompt,
            "history": state.history,
            "demo_ids": demo_ids,
            "expert_text": tokenizer.decode(demo_ids, skip_special_tokens=True),
        }

    return dataset.map(to_state, desc=f"Preparing {name}")


def supervised_batch(
    prompt_ids: list[list[int]], completion_ids: list[list[int]], pad_id: int, device: torch.device
) -> dict[str, torch.Tensor]:
    """Prompt + completion sequences padded on the right, with labels on the completion tokens only (-100 elsewhere):
    the MLE warm-up's batch, so the loss is that of the expert's reply given its state."""
    sequences = [list(p) + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    labels = [[-100] * len(p) + list(c) for p, c in zip(prompt_ids, completion_ids, strict=True)]
    width = max(map(len, sequences))
    return {
        "input_ids": torch.tensor([s + [pad_id] * (width - len(s)) for s in sequences], device=device),
        "attention_mask": torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device),
        "labels": torch.tensor([lab + [-100] * (width - len(lab)) for lab in labels], device=device),
    }
