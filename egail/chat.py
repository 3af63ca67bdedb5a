"""Talking to a trained model: ``EmpatheticResponder`` and a terminal chat.

The responder shows the model exactly the text it was trained on (``egail.formatting.render_prompt``),
keeps the conversation inside the model's context window by dropping the oldest turns, and puts a
``CrisisGuard`` in front of the model and behind it. It holds no conversation state: every call gets the
whole history, so one responder can serve many users at once without mixing their conversations.

Terminal chat, for the README's quickstart::

    python -m egail.chat smollm2-135m-instruct
    python -m egail.chat path/to/run --max-new-tokens 96 --seed 0
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from egail.formatting import PLAIN_USER_PREFIX, has_chat_template, render_prompt, truncate_history
from egail.models import EMBEDDED_MODELS, load_causal_lm, load_tokenizer
from egail.safety import CrisisGuard, GuardResult

#: Said when the model produced nothing usable (only special tokens, whitespace or punctuation).
FALLBACK_REPLY = "I'm sorry, I'm not sure what to say. Could you tell me a bit more about how you feel?"

# A sentence ends at . ! ? or an ellipsis, with any closing quotes or brackets, before a space or the end.
_SENTENCE_END = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s|$)")

# Larger "context windows" are placeholders (tokenizers use 1e30 for "unknown"), not real limits.
_MAX_SANE_CONTEXT = 1_000_000


@dataclass
class GenerationSettings:
    """How replies are sampled. Explicit, so a demo and an evaluation can state what they ran with."""

    max_new_tokens: int = 64
    do_sample: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 (use do_sample=False for greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    def generate_kwargs(self) -> dict[str, Any]:
        """Arguments for ``model.generate`` (the seed is applied separately, per call)."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "do_sample": self.do_sample,
            "repetition_penalty": self.repetition_penalty,
        }
        if self.do_sample:
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        else:  # transformers warns about sampling arguments on greedy decoding; say greedy plainly
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs


@dataclass(frozen=True)
class Reply:
    """A reply and where it came from: ``model``, ``crisis_guard`` (user's message flagged),
    ``output_guard`` (model's reply flagged and replaced) or ``fallback`` (model said nothing usable)."""

    text: str
    source: str
    guard: GuardResult | None = None


@dataclass
class _Prompt:
    input_ids: list[int]
    history: list[str]
    message: str
    message_truncated: bool = False
    text: str = field(repr=False, default="")


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
        self.context_window = context_window or self._infer_context_window()
        if self.settings.max_new_tokens >= self.context_window:
            raise ValueError(
                f"max_new_tokens={self.settings.max_new_tokens} leaves no room for the prompt in a "
                f"{self.context_window}-token context window"
            )
        # One generation at a time: on CPU parallel generations only compete for the same cores, and a
        # seeded call must not have its random stream consumed by another thread mid-way.
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        settings: GenerationSettings | None = None,
        guard: CrisisGuard | bool = True,
        system: str | None = None,
        max_turns: int | None = None,
        device: str | None = None,
        **model_kwargs: Any,
    ) -> EmpatheticResponder:
        """Load an embedded model name, a local folder, a Hub id, or a LoRA adapter (folder or Hub repo).

        An adapter (``adapter_config.json`` present) is applied to its base model and merged into it, so
        generation runs at the speed of a plain model.
        """
        import torch

        name = str(name_or_path)
        adapter_config = None if name in EMBEDDED_MODELS else _read_repo_json(name, "adapter_config.json")
        if adapter_config is not None:
            from peft import PeftModel

            base = adapter_config.get("base_model_name_or_path")
            if not base:
                raise ValueError(f"{name}: adapter_config.json has no 'base_model_name_or_path'")
            if _repo_file(name, "adapter_model.safetensors") is None:  # peft would unpickle adapter_model.bin
                raise ValueError(
                    f"'{name}' has no adapter_model.safetensors. egail loads only safetensors, because pickled "
                    f".bin weights can execute code on load. Re-save the adapter with "
                    f"`model.save_pretrained(dir, safe_serialization=True)` in a trusted environment."
                )
            model = PeftModel.from_pretrained(load_causal_lm(base, **model_kwargs), name).merge_and_unload()
            has_tokenizer = _read_repo_json(name, "tokenizer_config.json") is not None
            tokenizer = load_tokenizer(name if has_tokenizer else base)
        else:
            model = load_causal_lm(name, **model_kwargs)
            tokenizer = load_tokenizer(name)
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        return cls(model, tokenizer, settings=settings, guard=guard, system=system, max_turns=max_turns)

    def _infer_context_window(self) -> int:
        candidates = [
            getattr(self.model.config, "max_position_embeddings", None),
            getattr(self.tokenizer, "model_max_length", None),
        ]
        sane = [int(c) for c in candidates if isinstance(c, int) and 0 < c <= _MAX_SANE_CONTEXT]
        if not sane:
            raise ValueError(
                "Cannot tell the model's context window (no sane config.max_position_embeddings or "
                "tokenizer.model_max_length); pass context_window= to EmpatheticResponder."
            )
        return min(sane)

    def _encode(self, text: str) -> list[int]:
        # A chat template writes its own special tokens; plain-format models get the tokenizer's usual ones.
        return self.tokenizer(text, add_special_tokens=not has_chat_template(self.tokenizer))["input_ids"]

    def build_prompt(self, history: list[str], message: str) -> _Prompt:
        """The model input for a state, dropping the oldest turns until prompt + reply fit the window.

        A message that alone does not fit is cut from the front, keeping its end (where a question
        usually is).
        """
        budget = self.context_window - self.settings.max_new_tokens
        history = truncate_history(history, self.max_turns)
        while True:
            text = render_prompt(self.tokenizer, history, message, self.system)
            ids = self._encode(text)
            if len(ids) <= budget or not history:
                break
            history = history[2:]
        if len(ids) <= budget:
            return _Prompt(ids, history, message, False, text)

        overhead = len(self._encode(render_prompt(self.tokenizer, [], "", self.system)))
        message_ids = self.tokenizer(message, add_special_tokens=False)["input_ids"]
        keep = budget - overhead
        while keep > 0:
            message = self.tokenizer.decode(message_ids[-keep:], skip_special_tokens=True).strip()
            text = render_prompt(self.tokenizer, [], message, self.system)
            ids = self._encode(text)
            if len(ids) <= budget:
                return _Prompt(ids, [], message, True, text)
            keep -= max(1, len(ids) - budget)  # decode/encode may not round-trip token for token
        raise ValueError(
            f"The prompt format alone needs {overhead} tokens, more than the {budget} left by a "
            f"{self.context_window}-token window and max_new_tokens={self.settings.max_new_tokens}"
        )

    def _stop_ids(self) -> set[int]:
        ids = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        for source in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return ids

    def decode_reply(self, new_token_ids: list[int]) -> str:
        """The reply text of generated tokens: cut at the first special token (end of turn), stripped.

        A reply that ran into ``max_new_tokens`` without ending its turn is cut back to its last finished
        sentence, when it has one, rather than shown stopping mid-word.
        """
        stops = self._stop_ids()
        cut = next((i for i, t in enumerate(new_token_ids) if t in stops), None)
        text = self.tokenizer.decode(new_token_ids[:cut], skip_special_tokens=True)
        if not has_chat_template(self.tokenizer):
            # Plain-format models end a turn by starting the next one: "\nUser: ...".
            parts = text.split("\n" + PLAIN_USER_PREFIX.strip())
            text, cut = parts[0], (cut if len(parts) == 1 else len(parts[0]))
        text = text.strip()
        if cut is None and len(new_token_ids) >= self.settings.max_new_tokens:
            # "2." alone on a line is a list marker, not the end of a sentence.
            ends = [
                m.end()
                for m in _SENTENCE_END.finditer(text)
                if not text[text.rfind("\n", 0, m.start()) + 1 : m.start()].strip().isdigit()
            ]
            if ends:
                text = text[: ends[-1]].strip()
        return text

    def generate(self, history: list[str], message: str) -> str:
        """The model's own reply (no guard): empty when it produced nothing usable."""
        import torch

        prompt = self.build_prompt(history, message)
        device = next(self.model.parameters()).device
        input_ids = torch.tensor([prompt.input_ids], device=device)
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.tokenizer.eos_token_id
        with self._lock, torch.inference_mode():
            if self.settings.seed is not None:
                torch.manual_seed(self.settings.seed)
            output = self.model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                pad_token_id=pad_id,
                eos_token_id=sorted(self._stop_ids()),
                **self.settings.generate_kwargs(),
            )
        return self.decode_reply(output[0, input_ids.shape[1] :].tolist())

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


def _repo_file(name: str, filename: str) -> Path | None:
    """``filename`` of a local folder or a Hub repo as a local path, or None when the repo has no such file.

    Any failure to find it (no such repo, offline and not cached, not a valid id) is None: the model
    loader that runs next reports those problems with a message that says what to do.
    """
    path = Path(name)
    if path.is_dir():
        return path / filename if (path / filename).is_file() else None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(name, filename))
    except Exception:  # noqa: BLE001 - see docstring
        return None


def _read_repo_json(name: str, filename: str) -> dict[str, Any] | None:
    """``filename`` from a local folder or a Hub repo as JSON, or None when the repo has no such file."""
    path = _repo_file(name, filename)
    return json.loads(path.read_text()) if path is not None else None


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = GenerationSettings()
    parser = argparse.ArgumentParser(
        prog="python -m egail.chat",
        description="Chat with an egail model in the terminal. A research demo, not therapy.",
    )
    parser.add_argument("model", help="embedded name (smollm2-135m-instruct), local folder, Hub id or LoRA adapter")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens)
    parser.add_argument("--temperature", type=float, default=defaults.temperature)
    parser.add_argument("--top-p", type=float, default=defaults.top_p)
    parser.add_argument("--repetition-penalty", type=float, default=defaults.repetition_penalty)
    parser.add_argument("--greedy", action="store_true", help="greedy decoding instead of sampling")
    parser.add_argument("--seed", type=int, default=None, help="re-seed before every reply (reproducible)")
    parser.add_argument("--max-turns", type=int, default=None, help="keep at most this many past turns")
    parser.add_argument("--system", default=None, help="system prompt (only if the model was trained with one)")
    parser.add_argument("--no-guard", action="store_true", help="turn the crisis guard off (evaluation only)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    settings = GenerationSettings(
        max_new_tokens=args.max_new_tokens,
        do_sample=not args.greedy,
        temperature=args.temperature,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
    )
    responder = EmpatheticResponder.from_pretrained(
        args.model, settings=settings, guard=not args.no_guard, system=args.system, max_turns=args.max_turns
    )
    interactive = sys.stdin.isatty()
    print(
        f"egail chat with {args.model} ({json.dumps(asdict(settings))}). A research demo, not therapy. "
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
