"""Sampling under explicit settings: seeded, the same for every model, plain format cut at the line end."""

from __future__ import annotations

import pytest

from egail.evaluation.generation import GenerationSettings, clean_response, generate_responses

HISTORIES = [[], ["I lost my keys.", "Oh no!"], []]
PROMPTS = ["I passed my exam!", "I found them in the fridge.", "Hello"]


@pytest.fixture(scope="module")
def tiny(tiny_lm_path):
    from egail.models import load_causal_lm, load_tokenizer

    return load_causal_lm(tiny_lm_path).eval(), load_tokenizer(tiny_lm_path)


def test_same_seed_same_responses_other_seed_other_responses(tiny):
    model, tokenizer = tiny
    settings = GenerationSettings(max_new_tokens=5, top_p=1.0, batch_size=2)
    first = generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=0)
    assert len(first) == 3 and all(isinstance(r, str) for r in first)
    assert generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=0) == first
    assert generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=1) != first


def test_greedy_runs_one_seed_and_ignores_it(tiny):
    model, tokenizer = tiny
    settings = GenerationSettings(max_new_tokens=4, do_sample=False, seeds=(0, 1, 2))
    assert settings.decoding_seeds == (0,)
    a = generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=0)
    assert generate_responses(model, tokenizer, HISTORIES, PROMPTS, settings, seed=5) == a


def test_settings_are_checked_and_serialisable():
    assert GenerationSettings(seeds=[3, 4]).to_dict()["seeds"] == [3, 4]
    with pytest.raises(ValueError, match="temperature > 0"):
        GenerationSettings(temperature=0.0)
    with pytest.raises(ValueError, match="at least one seed"):
        GenerationSettings(seeds=())
    with pytest.raises(ValueError, match="max_new_tokens"):
        GenerationSettings(max_new_tokens=0)


def test_plain_format_answer_ends_at_the_line_end(tiny):
    _, tokenizer = tiny
    plain = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    plain.chat_template = None
    assert clean_response(" Fine, thanks.\nUser: and you?", plain) == "Fine, thanks."
    assert clean_response(" Fine,\nthanks. ", tokenizer) == "Fine,\nthanks."
