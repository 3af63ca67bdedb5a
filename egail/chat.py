"""Talking to a trained model: ``EmpatheticResponder`` and a terminal chat.

The responder fits a state as training and evaluation do (``egail.formatting.fit_state``: the oldest turns
go first so that prompt and reply fit the context window), samples as evaluation does
(``egail.generation.generate_replies``), and puts a ``CrisisGuard`` in front of the model and behind it. It holds no conversation state: every call gets the
whole history, so one responder can serve many users at once without mixing their conversations.

Terminal chat, for the README's quickstart::

    python -m egail.chat smollm2-135m-instruct
    python -m egail.chat path/to/run --max-new-tokens 96 --seed 0
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egail.formatting import FittedState, decode_reply, fit_state
from egail.generation import GenerationSettings, generate_replies, prompt_budget, stop_token_ids
from egail.models import DEFAULT_CHATBOT, load_policy
from egail.safety import CrisisGuard, GuardResult

__all__ = ["FALLBACK_REPLY", "EmpatheticResponder", "GenerationSettings", "Reply", "main"]

#: Said when the model produced nothing usable (only special tokens, whitespace or punctuation).
FALLBACK_REPLY = "I'm sorry, I'm not sure what to say. Could you tell me a bit more about how you feel?"


@dataclass(frozen=True)
class Reply:
    """A reply and where it came from: ``model``, ``crisis_guard`` (user's message flagged),
    ``output_guard`` (model's reply flagged and replaced) or ``fallback`` (model said nothing usable)."""

    text: str
    source: str
    guard: GuardResult | None = None


class EmpatheticResponder:
    """Answers a user's message given the conversation so far, with a crisis guard on by default.

    ``history`` is a list of earlier utterances, oldest first, alternating user / assistant and starting
    with the user (the training data's convention). The responder is stateless across calls.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        settings: GenerationSettings | None = None,
        guard: CrisisGuard | bool = True,
        system: str | None = None,
        max_turns: int | None = None,
        context_window: int | None = None,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings or GenerationSettings()
        self.guard = CrisisGuard() if guard is True else (guard or None)
        self.system = system
        self.max_turns = max_turns
        self.prompt_budget = prompt_budget(model, tokenizer, self.settings, cap=context_window)
        # One generation at a time: on CPU parallel generations only compete for the same cores, and a
        # seeded call must not have its random stream consumed by another thread mid-way.
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_CHATBOT,
        *,
        settings: GenerationSettings | None = None,
        guard: CrisisGuard | bool = True,
        system: str | None = None,
        max_turns: int | None = None,
        device: str | None = None,
        **model_kwargs: Any,
    ) -> EmpatheticResponder:
        """Load an embedded model name, a local folder, a Hub id, or a LoRA adapter (folder or Hub repo), with
        `egail.models.load_policy`: the loader evaluation uses too. With no name: egail's default chatbot
        (`egail.models.DEFAULT_CHATBOT`, the study's best adapter, shipped inside the package)."""
        model, tokenizer = load_policy(name_or_path, device=device, **model_kwargs)
        return cls(model, tokenizer, settings=settings, guard=guard, system=system, max_turns=max_turns)

    def build_prompt(self, history: list[str], message: str) -> FittedState:
        """The model input for a state: `egail.formatting.fit_state` with room left for a whole reply."""
        return fit_state(self.tokenizer, history, message, self.prompt_budget, self.max_turns, self.system)

    def decode_reply(self, new_token_ids: list[int]) -> str:
        """The reply text of generated tokens (`egail.formatting.decode_reply`)."""
        return decode_reply(
            self.tokenizer, new_token_ids, stop_token_ids(self.model, self.tokenizer), self.settings.max_new_tokens
        )

    def generate(self, history: list[str], message: str) -> str:
        """The model's own reply (no guard): empty when it produced nothing usable.

        Evaluation samples through the same `egail.generation.generate_replies`, so a state answered here and a
        state evaluated alone under the same seed get the same text.
        """
        prompt = self.build_prompt(history, message)
        with self._lock:
            return generate_replies(self.model, self.tokenizer, [prompt.input_ids], self.settings)[0]

    def respond(self, history: list[str], message: str) -> Reply:
        """Reply to ``message`` after ``history``, saying where the reply came from."""
        if not isinstance(message, str):
            raise TypeError(f"message must be a str, got {type(message).__name__}")
        if not isinstance(history, (list, tuple)) or not all(isinstance(u, str) for u in history):
            raise TypeError("history must be a list of str (earlier utterances, alternating user/assistant)")
        if self.guard is not None:
            # The user's own earlier turns (even positions: the history starts with the user) go with the
            # message: a warning sign can be spread over turns.
            verdict = self.guard.check(message, list(history)[0::2])
            if verdict.flagged:
                return Reply(self.guard.reply, "crisis_guard", verdict)
        text = self.generate(list(history), message)
        if not any(ch.isalnum() for ch in text):
            return Reply(FALLBACK_REPLY, "fallback")
        if self.guard is not None:
            verdict = self.guard.screen_output(text)
            if verdict.flagged:
                return Reply(self.guard.output_reply, "output_guard", verdict)
        return Reply(text, "model")

    def reply(self, history: list[str], message: str) -> str:
        """The answer to ``message`` after ``history``: never empty."""
        return self.respond(history, message).text


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m egail.chat",
        description="Chat with an egail model in the terminal. A research demo, not therapy.",
    )
    parser.add_argument(
        "model",
        nargs="?",
        default=DEFAULT_CHATBOT,
        help=f"embedded name, local folder, Hub id or LoRA adapter (default: {DEFAULT_CHATBOT}, shipped with egail)",
    )
    GenerationSettings.add_arguments(parser)
    parser.add_argument("--seed", type=int, default=None, help="re-seed before every reply (reproducible)")
    parser.add_argument("--max-turns", type=int, default=None, help="keep at most this many past turns")
    parser.add_argument("--system", default=None, help="system prompt (only if the model was trained with one)")
    parser.add_argument("--no-guard", action="store_true", help="turn the crisis guard off (evaluation only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = GenerationSettings.from_arguments(args, seed=args.seed)
    responder = EmpatheticResponder.from_pretrained(
        args.model, settings=settings, guard=not args.no_guard, system=args.system, max_turns=args.max_turns
    )
    interactive = sys.stdin.isatty()
    print(
        f"egail chat with {args.model} ({json.dumps(settings.to_dict())}). A research demo, not therapy. "
        "Type 'quit' or press Ctrl-D to leave.",
        file=sys.stderr,
    )
    history: list[str] = []
    while True:
        try:
            line = input("you> " if interactive else "")
        except (EOFError, KeyboardInterrupt):
            break
        message = line.strip()
        if not message:
            continue
        if message.lower() in {"quit", "exit"}:
            break
        answer = responder.reply(history, message)
        print(f"bot> {answer}", flush=True)
        history += [message, answer]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
