"""Sampling for evaluation: seeded, the chat's own path, so what is evaluated is what is served."""

from __future__ import annotations

import pytest

from egail.chat import EmpatheticResponder
from egail.evaluation.generation import generate_responses
from egail.formatting import decode_reply
from egail.generation import GenerationSettings, stop_token_ids

HISTORIES = [[], ["I lost my keys.", "Oh no!"], []]
PROMPTS = ["I passed my exam!", "I found them in the fridge.", "Hello"]


@pytest.fixture(scope="module")
def tiny(tiny_lm_path):
    from egail.models import load_policy

    return load_policy(tiny_lm_path, device="cpu")


def test_same_seed_same_responses_other_seed_other_responses(tiny):
    model, tokenizer = tiny
    settings = GenerationSettings(max_new_tokens=5, top_p=1.0)
    first = generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=0, batch_size=2)
    assert len(first) == 3 and all(isinstance(r, str) for r in first)
    assert generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=0, batch_size=2) == first
    assert generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=1, batch_size=2) != first


def test_greedy_ignores_the_seed(tiny):
    model, tokenizer = tiny
    settings = GenerationSettings(max_new_tokens=4, do_sample=False)
    a = generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=0)
    assert generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=5) == a


@pytest.mark.parametrize("do_sample", [True, False])
def test_evaluation_and_chat_give_the_same_text_for_a_state_and_seed(tiny, do_sample):
    """The evaluated model is the served one: same fitting, same sampling, same end of reply, same text."""
    model, tokenizer = tiny
    settings = GenerationSettings(max_new_tokens=12, do_sample=do_sample, top_p=1.0, seed=7)
    chat = EmpatheticResponder(model, tokenizer, settings=settings, guard=False, max_turns=1)
    history = ["My sister is visiting.", "How lovely!", "We have not met in years.", "That is a long time."]
    for state_history, prompt in [(history, "I am nervous."), ([], "I passed my exam!")]:
        served = chat.generate(state_history, prompt)
        evaluated = generate_responses(
            model, tokenizer, [state_history], [prompt], settings, seed=7,
            max_prompt_length=chat.prompt_budget, history_max_turns=1,
        )  # fmt: skip
        assert evaluated == [served]
    # the prompt was fitted: the second-oldest turn is gone in both
    assert chat.build_prompt(history, "I am nervous.").history == history[-2:]


def test_settings_are_checked_and_serialisable():
    assert GenerationSettings(top_k=5).to_dict()["top_k"] == 5
    assert GenerationSettings(do_sample=False).generate_kwargs()["temperature"] is None
    for bad, match in [({"temperature": 0.0}, "temperature"), ({"max_new_tokens": 0}, "max_new_tokens"),
                       ({"top_p": 1.5}, "top_p"), ({"top_k": -1}, "top_k"),
                       ({"repetition_penalty": 0}, "repetition_penalty")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            GenerationSettings(**bad)


def test_plain_format_reply_ends_at_the_line_end(tiny):
    """The plain format writes one utterance per line, so a reply ends at its first newline; a template's at
    its end-of-turn token, and a multi-line reply there stays whole."""
    model, tokenizer = tiny
    plain = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    stops = stop_token_ids(model, tokenizer)
    ids = plain(" Fine, thanks.\nUser: and you?", add_special_tokens=False)["input_ids"]
    assert decode_reply(plain, ids, stops, max_new_tokens=64) == "Fine, thanks."
    ids = tokenizer(" Fine,\nthanks. ", add_special_tokens=False)["input_ids"]
    assert decode_reply(tokenizer, ids, stops, max_new_tokens=64) == "Fine,\nthanks."
