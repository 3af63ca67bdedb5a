"""Perplexity of reference responses: exact on a model whose logits we set, and equal to a plain loop."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from egail.evaluation.perplexity import ResponseNLL, encode_state, perplexity, response_nlls
from egail.formatting import render_prompt, response_suffix

HISTORIES = [[], ["I lost my keys.", "Oh no, where did you last see them?"], ["a", "b", "c", "d"]]
PROMPTS = ["I passed my exam!", "I think at the gym.", "e"]
RESPONSES = ["Congratulations, that is great news!", "Did you ask at the front desk?", "f g h"]


class UniformLM(torch.nn.Module):
    """Every next token equally likely: each response token costs log V nats, so perplexity is V."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.config = SimpleNamespace(max_position_embeddings=4096)
        self.vocab_size = vocab_size
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask=None, position_ids=None):  # no logits_to_keep: full logits
        return SimpleNamespace(logits=torch.zeros(*input_ids.shape, self.vocab_size))


@pytest.fixture(scope="module")
def tiny(tiny_lm_path):
    from egail.models import load_causal_lm, load_tokenizer

    return load_causal_lm(tiny_lm_path).eval(), load_tokenizer(tiny_lm_path)


def test_uniform_model_has_perplexity_vocab_size(tiny):
    _, tokenizer = tiny
    vocab = len(tokenizer)
    scores = response_nlls(UniformLM(vocab), tokenizer, HISTORIES, PROMPTS, RESPONSES, batch_size=2)
    for score, response in zip(scores, RESPONSES, strict=True):
        n = len(tokenizer(response + response_suffix(tokenizer), add_special_tokens=False)["input_ids"])
        assert score.tokens == n
        assert score.nll == pytest.approx(n * math.log(vocab), rel=1e-5)
    assert perplexity(scores) == pytest.approx(vocab, rel=1e-5)
    words = sum(len(r.split()) for r in RESPONSES)
    tokens = sum(s.tokens for s in scores)
    assert perplexity(scores, words=words) == pytest.approx(vocab ** (tokens / words), rel=1e-4)


def test_perplexity_aggregates_over_tokens_not_rows():
    scores = [ResponseNLL(nll=2.0, tokens=1), ResponseNLL(nll=2.0, tokens=3)]
    assert perplexity(scores) == pytest.approx(math.exp(4.0 / 4))  # not the mean of exp(2) and exp(2/3)
    assert perplexity(scores, words=2) == pytest.approx(math.exp(2.0))
    assert math.isnan(perplexity([]))


def test_batched_scoring_matches_a_plain_loop(tiny):
    """Left padding, position ids and logits_to_keep must not change any row's NLL."""
    model, tokenizer = tiny
    batched = response_nlls(model, tokenizer, HISTORIES, PROMPTS, RESPONSES, batch_size=3)
    for history, prompt, response, score in zip(HISTORIES, PROMPTS, RESPONSES, batched, strict=True):
        prefix = tokenizer(render_prompt(tokenizer, history, prompt), add_special_tokens=False)["input_ids"]
        answer = tokenizer(response + response_suffix(tokenizer), add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prefix + answer])
        with torch.no_grad():
            log_probs = model(ids).logits[0].log_softmax(-1)
        nll = -sum(log_probs[len(prefix) + j - 1, token].item() for j, token in enumerate(answer))
        assert score.tokens == len(answer)
        assert score.nll == pytest.approx(nll, rel=1e-4, abs=1e-3)


def test_long_state_keeps_the_response_and_the_template_and_drops_the_oldest_turns(tiny):
    _, tokenizer = tiny
    history = ["word " * 200, "reply"]
    ids, n_response, truncated = encode_state(tokenizer, history, "prompt", "the answer", max_length=64)
    answer = tokenizer("the answer" + response_suffix(tokenizer), add_special_tokens=False)["input_ids"]
    kept = tokenizer(render_prompt(tokenizer, [], "prompt"), add_special_tokens=False)["input_ids"]
    assert truncated and len(ids) <= 64 and n_response == len(answer)
    assert ids == kept + answer, "the old turn goes whole; the template's header and the prompt stay"
    short_ids, _, short_truncated = encode_state(tokenizer, [], "hi", "hello", max_length=512)
    assert not short_truncated and len(short_ids) < 64


def test_prompt_longer_than_the_context_keeps_its_end_and_the_header(tiny):
    _, tokenizer = tiny
    ids, n_response, truncated = encode_state(tokenizer, [], "blah " * 300 + "what now?", "Rest.", max_length=64)
    header = tokenizer(render_prompt(tokenizer, [], ""), add_special_tokens=False)["input_ids"][:5]
    assert truncated and len(ids) <= 64 and ids[:5] == header
    assert tokenizer.decode(ids[:-n_response]).rstrip().endswith("what now?<|im_end|>\n<|im_start|>assistant")


def test_model_without_chat_template_uses_the_plain_format(tiny):
    model, tokenizer = tiny
    tokenizer = type(tokenizer).from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = None
    history = ["hello", "hi there"]
    ids, n_response, _ = encode_state(tokenizer, history, "how are you?", "fine", max_length=512)
    assert tokenizer.decode(ids) == "User: hello\nAssistant: hi there\nUser: how are you?\nAssistant: fine\n<|im_end|>"
    (score,) = response_nlls(model, tokenizer, [history], ["how are you?"], ["fine"])
    assert score.tokens == n_response and score.nll > 0
