"""EmpatheticResponder: loading (folder, LoRA adapter, Hub id), context-window truncation, guard, CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from egail.chat import FALLBACK_REPLY, EmpatheticResponder, GenerationSettings
from egail.chat import main as chat_main
from egail.formatting import build_messages, render_prompt
from egail.models import DEFAULT_CHATBOT, ModelNotFoundError
from egail.safety import CRISIS_REPLY, UNSAFE_OUTPUT_REPLY, GuardResult

GREEDY = GenerationSettings(max_new_tokens=16, do_sample=False)


@pytest.fixture(scope="module")
def responder(tiny_lm_path) -> EmpatheticResponder:
    return EmpatheticResponder.from_pretrained(tiny_lm_path, settings=GREEDY, device="cpu")


def test_chat_and_evaluation_share_one_settings_class_and_its_defaults():
    from egail.evaluation import EvaluationSettings
    from egail.evaluation import GenerationSettings as EvaluationGenerationSettings

    assert EvaluationGenerationSettings is GenerationSettings
    assert EvaluationSettings().generation == GenerationSettings()
    settings = GenerationSettings()
    assert (settings.max_new_tokens, settings.temperature, settings.top_p, settings.top_k) == (64, 0.7, 0.9, 0)
    assert settings.repetition_penalty == 1.1


def test_reply_is_the_models_text_when_it_says_something(responder, monkeypatch):
    """``respond`` passes the model's own text through; the fallback is only for a reply with nothing to read."""
    history, message = ["I lost my keys.", "Oh no, where did you last see them?"], "At the gym, I think."
    monkeypatch.setattr(responder, "generate", lambda history, message: "Did you ask at the front desk?")
    reply = responder.respond(history, message)
    assert (reply.text, reply.source) == ("Did you ask at the front desk?", "model")


def test_generate_decodes_what_the_model_sampled(responder):
    """``generate`` returns the model's own greedy continuation of the fitted prompt, read by ``decode_reply``."""
    import torch

    history, message = ["I lost my keys."], "At the gym, I think."
    prompt = responder.build_prompt(history, message)
    with torch.no_grad():
        output = responder.model.generate(
            input_ids=torch.tensor([prompt.input_ids]), attention_mask=torch.ones(1, len(prompt.input_ids), dtype=torch.long),
            max_new_tokens=GREEDY.max_new_tokens, do_sample=False, pad_token_id=responder.tokenizer.pad_token_id,
            eos_token_id=responder.tokenizer.eos_token_id,
        )  # fmt: skip
    assert responder.generate(history, message) == responder.decode_reply(output[0, len(prompt.input_ids) :].tolist())


def test_seed_makes_sampled_replies_reproducible(tiny_lm_path, responder):
    settings = GenerationSettings(max_new_tokens=12, seed=123)
    seeded = EmpatheticResponder(responder.model, responder.tokenizer, settings=settings)
    first = seeded.generate([], "How was your day?")
    assert seeded.generate([], "How was your day?") == first


def test_prompt_uses_the_training_format(responder):
    prompt = responder.build_prompt(["Hi.", "Hello!"], "I got a puppy.")
    expected = responder.tokenizer.apply_chat_template(
        build_messages(["Hi.", "Hello!"], "I got a puppy."), tokenize=False, add_generation_prompt=True
    )
    assert prompt.text == expected


def test_history_is_truncated_to_the_context_window(responder):
    history = [f"turn {i}: " + "words " * 40 for i in range(40)]
    prompt = responder.build_prompt(history, "And now?")
    assert responder.prompt_budget == 512 - GREEDY.max_new_tokens, "the tiny model's 512 positions, less a reply"
    assert len(prompt.input_ids) <= 512 - GREEDY.max_new_tokens
    assert 0 < len(prompt.history) < len(history) and len(prompt.history) % 2 == 0
    assert prompt.history == history[-len(prompt.history) :], "the newest turns are the ones kept"
    # Without truncation the prompt would not fit: the test exercises the cut.
    assert len(responder.tokenizer(render_prompt(responder.tokenizer, history, "And now?"))["input_ids"]) > 512


def test_message_longer_than_the_window_keeps_its_end(responder):
    message = "blah " * 2000 + "what should I do?"
    prompt = responder.build_prompt(["earlier", "reply"], message)
    assert prompt.prompt_cut and prompt.history == []
    assert len(prompt.input_ids) <= 512 - GREEDY.max_new_tokens
    assert prompt.prompt.endswith("what should I do?")
    assert responder.reply([], message).strip()


def test_decode_cuts_at_end_of_turn_and_falls_back_when_empty(responder, monkeypatch):
    tokenizer = responder.tokenizer
    ids = tokenizer("I hear you.", add_special_tokens=False)["input_ids"]
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    junk = tokenizer("<|im_start|>user\nnext turn", add_special_tokens=False)["input_ids"]
    assert responder.decode_reply(ids + [im_end] + junk) == "I hear you."
    assert responder.decode_reply([im_end] + ids) == ""
    # Out of tokens mid-sentence: back to the last finished sentence; with none finished, keep the text.
    long_ids = tokenizer(
        "I hear you. That sounds hard! Do you want to talk about what happened at the test and",
        add_special_tokens=False,
    )["input_ids"]
    assert len(long_ids) >= GREEDY.max_new_tokens
    assert responder.decode_reply(long_ids) == "I hear you. That sounds hard!"
    unfinished = tokenizer("Well " * GREEDY.max_new_tokens, add_special_tokens=False)["input_ids"]
    assert responder.decode_reply(unfinished) == ("Well " * GREEDY.max_new_tokens).strip()
    listed = tokenizer("Some ideas:\n1. Rest well.\n2. " + "Try " * GREEDY.max_new_tokens, add_special_tokens=False)
    assert responder.decode_reply(listed["input_ids"]) == "Some ideas:\n1. Rest well."
    short = tokenizer("Do you want to", add_special_tokens=False)["input_ids"]
    assert responder.decode_reply(short) == "Do you want to", "not out of tokens: left as the model ended it"
    monkeypatch.setattr(responder, "generate", lambda history, message: "  ...  ")
    assert responder.respond([], "hello") == responder.respond([], "hello")
    assert responder.respond([], "hello").text == FALLBACK_REPLY


def test_crisis_message_never_reaches_the_model(responder, monkeypatch):
    def explode(history, message):
        raise AssertionError("the model must not be called for a crisis message")

    monkeypatch.setattr(responder, "generate", explode)
    reply = responder.respond([], "I want to end it all")
    assert reply.text == CRISIS_REPLY and reply.source == "crisis_guard"
    assert reply.guard is not None and reply.guard.category == "self_harm"


def test_a_crisis_spread_over_turns_never_reaches_the_model(responder, monkeypatch):
    def explode(history, message):
        raise AssertionError("the model must not be called for a crisis message")

    monkeypatch.setattr(responder, "generate", explode)
    history = ["I can't do this anymore", "I'm sorry it's so hard. What's going on?", "nobody gets it", "I hear you."]
    reply = responder.respond(history, "I have the pills here")
    assert reply.text == CRISIS_REPLY and reply.source == "crisis_guard"
    assert reply.guard is not None and reply.guard.reason


def test_the_guard_reads_the_users_turns_not_the_bots(responder, monkeypatch):
    seen = []
    monkeypatch.setattr(
        responder.guard, "check", lambda message, context=(): seen.append(context) or GuardResult(False)
    )
    monkeypatch.setattr(responder, "generate", lambda history, message: "model text")
    responder.respond(["first", "bot one", "second", "bot two"], "third")
    assert seen[0] == ["first", "second"]  # then the output screen reads the reply alone


def test_unsafe_model_output_is_replaced(responder, monkeypatch):
    monkeypatch.setattr(responder, "generate", lambda history, message: "You should kill yourself.")
    reply = responder.respond([], "I had a bad day")
    assert reply.text == UNSAFE_OUTPUT_REPLY and reply.source == "output_guard"


def test_guard_can_be_turned_off(responder, monkeypatch):
    unguarded = EmpatheticResponder(responder.model, responder.tokenizer, settings=GREEDY, guard=False)
    monkeypatch.setattr(unguarded, "generate", lambda history, message: "model text")
    assert unguarded.reply([], "I want to end it all") == "model text"


def test_bad_history_is_a_clear_error(responder):
    with pytest.raises(TypeError, match="history"):
        responder.reply([{"role": "user", "content": "hi"}], "hello")
    with pytest.raises(TypeError, match="message"):
        responder.reply([], None)


@pytest.fixture(scope="module")
def trained_adapter(tiny_lm_path, tmp_path_factory) -> tuple[Path, dict]:
    """A tiny trained run: a LoRA adapter trained a few steps on one exchange, saved with its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_path)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_lm_path),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    text = tokenizer.apply_chat_template(
        build_messages([], "I passed my exam!") + [{"role": "assistant", "content": "That's wonderful!"}],
        tokenize=False,
    )
    batch = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(5):
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0], "the adapter trained"
    run = tmp_path_factory.mktemp("run")
    model.save_pretrained(run)
    tokenizer.save_pretrained(run)
    model.eval()
    with torch.no_grad():
        logits = model(**batch).logits
    return run, {"batch": batch, "logits": logits}


def test_round_trip_trained_adapter(trained_adapter, tiny_lm_path):
    import torch
    from transformers import AutoModelForCausalLM

    run, reference = trained_adapter
    assert json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_lm_path
    loaded = EmpatheticResponder.from_pretrained(run, settings=GREEDY, device="cpu")
    assert type(loaded.model).__name__ == "LlamaForCausalLM", "the adapter is merged into a plain model"
    with torch.no_grad():
        merged = loaded.model(**reference["batch"]).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_lm_path)(**reference["batch"]).logits
    assert torch.allclose(merged, reference["logits"], atol=1e-4)
    assert not torch.allclose(base, reference["logits"], atol=1e-3), "the adapter changes the model"
    assert loaded.reply([], "I passed my exam!").strip()


def test_missing_model_is_a_clear_error():
    with pytest.raises(ModelNotFoundError, match="no-such-org/no-such-model"):
        EmpatheticResponder.from_pretrained("no-such-org/no-such-model")


def _fake_hub_repo(cache: Path, repo_id: str, source: Path) -> None:
    """Lay ``source``'s files out as the Hub cache does, so an offline ``from_pretrained(repo_id)`` finds them.

    A real download also records files the repo lacks (``.no_exist``): an adapter repo has no config.json,
    and offline loaders need that record to tell "absent" from "not downloaded".
    """
    commit = "0" * 40
    root = cache / ("models--" + repo_id.replace("/", "--"))
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(commit)
    shutil.copytree(source, root / "snapshots" / commit)
    if not (source / "config.json").exists():
        (root / ".no_exist" / commit).mkdir(parents=True)
        (root / ".no_exist" / commit / "config.json").touch()


def test_cli_chats_with_a_hub_adapter_over_stdin(trained_adapter, tiny_lm_path, tmp_path):
    """``python -m egail.chat ORG/NAME`` with a LoRA adapter repo whose base is another Hub repo."""
    run, _ = trained_adapter
    adapter = tmp_path / "adapter"
    shutil.copytree(run, adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "egail-test/tiny-lm"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    cache = tmp_path / "hub"
    _fake_hub_repo(cache, "egail-test/tiny-lm", Path(tiny_lm_path))
    _fake_hub_repo(cache, "egail-test/tiny-adapter", adapter)

    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "egail.chat", "egail-test/tiny-adapter", "--max-new-tokens", "8", "--seed", "0"],
        input="Hello there\n\nI want to end it all\nquit\nnever read\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    replies = [line for line in result.stdout.splitlines() if line.startswith("bot> ")]
    assert len(replies) == 2, result.stdout
    assert replies[0][len("bot> ") :].strip()
    assert "988" in replies[1]
    assert "research demo, not therapy" in result.stderr


@pytest.mark.slow
def test_embedded_model_answers(smollm2_path):
    responder = EmpatheticResponder.from_pretrained("smollm2-135m-instruct", settings=GenerationSettings(seed=0))
    assert responder.prompt_budget == 8192 - GenerationSettings().max_new_tokens
    reply = responder.respond(["I failed my driving test today."], "I practised for months.")
    print(f"smollm2-135m-instruct: {reply}")
    assert reply.text.strip() and reply.source in {"model", "fallback", "output_guard"}


@pytest.mark.slow
def test_the_default_chatbot_loads_offline_and_answers(smollm2_path):
    """No name: the adapter shipped inside egail, on the embedded SmolLM2, with no network."""
    import torch

    responder = EmpatheticResponder.from_pretrained(settings=GenerationSettings(seed=0))
    reply = responder.respond([], "I failed my driving test today.")
    print(f"{DEFAULT_CHATBOT}: {reply}")
    assert reply.text.strip() and reply.source in {"model", "fallback", "output_guard"}
    base = EmpatheticResponder.from_pretrained("smollm2-135m-instruct", settings=GenerationSettings(seed=0))
    assert any(
        not torch.equal(p, q) for p, q in zip(responder.model.parameters(), base.model.parameters(), strict=True)
    ), "the default chatbot is the adapter, not the bare base model"


def test_the_cli_without_a_model_chats_with_the_default(monkeypatch):
    loaded = []

    def record(cls, name_or_path=DEFAULT_CHATBOT, **kwargs):
        loaded.append(name_or_path)
        raise ModelNotFoundError("stop here")

    monkeypatch.setattr(EmpatheticResponder, "from_pretrained", classmethod(record))
    with pytest.raises(ModelNotFoundError, match="stop here"):
        chat_main([])
    assert loaded == [DEFAULT_CHATBOT]
