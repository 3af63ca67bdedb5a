"""SPIN: pairs for the right states, cut like the sample, seeded; one DPO step on an adapter; the recipe's errors."""

from __future__ import annotations

import json
import math

import pytest
import torch
from datasets import Dataset

from egail.formatting import build_messages, fit_state, response_ids
from egail.schema import ONELINERS_SOURCE
from egail.spin import TRL_REF_ADAPTER, build_spin_pairs, load_spin_policy, train_spin
from tests.helpers import RECIPES, load_recipe

ONELINER = {"history": [], "prompt": "Keep going!", "response": "Keep going!", "source": ONELINERS_SOURCE}


def trajectories() -> Dataset:
    """States of different lengths (so length-sorted batches reorder them), with a one-liner among them."""
    rows = [
        {"history": ["I lost my job today.", "I'm so sorry. That is a lot to take in."], "prompt": "I feel lost.",
         "response": "That makes sense after such a shock. What worries you most right now?"},
        {"history": [], "prompt": "My sister had a baby!", "response": "Congratulations, you are an aunt!"},
        ONELINER,
        {"history": ["We moved to a new city.", "How exciting! How are you settling in?", "Slowly.",
                     "Slow is fine, it takes time to feel at home."], "prompt": "I miss my friends.",
         "response": "Of course you do. Have you been able to call any of them?"},
        {"history": [], "prompt": "I passed my driving test.", "response": "Well done! How does it feel?"},
    ]  # fmt: skip
    return Dataset.from_list([{"source": "embedded", **row} for row in rows])


class StubPolicy(torch.nn.Module):
    """Answers each prompt with the reply the test assigned to it, found by the prompt's exact token ids.

    A prompt it does not know (wrongly fitted or padded) is a KeyError; the padding must be on the left.
    """

    def __init__(self, tokenizer, replies: dict[tuple[int, ...], str]):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.tokenizer, self.replies, self.calls = tokenizer, replies, []
        self.generation_config = None  # no model-level EOS: the tokenizer's stop tokens apply

    def generate(self, input_ids, attention_mask, max_new_tokens, **kwargs):
        self.calls.append({"max_new_tokens": max_new_tokens, **kwargs})
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist(), strict=True):
            start = mask.index(1)
            assert all(mask[start:]), "prompts must be padded on the left"
            reply = self.tokenizer(self.replies[tuple(ids[start:])], add_special_tokens=False)["input_ids"]
            reply = (reply + [self.tokenizer.eos_token_id])[:max_new_tokens]
            rows.append(ids + reply + [kwargs["pad_token_id"]] * (max_new_tokens - len(reply)))
        return torch.tensor(rows)


def fitted_ids(tokenizer, row: dict, max_prompt_length: int | None = 64) -> tuple[int, ...]:
    return tuple(fit_state(tokenizer, row["history"], row["prompt"], max_prompt_length).input_ids)


def cut(tokenizer, response: str, max_new_tokens: int) -> str:
    """A response cut to ``max_new_tokens`` and read by the one reply decoder, as SPIN reads both sides."""
    from egail.formatting import decode_reply
    from egail.generation import stop_token_ids

    ids = response_ids(tokenizer, response)[:max_new_tokens]
    return decode_reply(tokenizer, ids, stop_token_ids(StubPolicy(tokenizer, {}), tokenizer), max_new_tokens)


@pytest.fixture(scope="module")
def tokenizer(tiny_lm_path):
    from egail.models import load_tokenizer

    return load_tokenizer(tiny_lm_path)


@pytest.fixture(scope="module")
def tiny_adapter(tiny_lm_path, tmp_path_factory) -> str:
    """A LoRA adapter of the tiny model whose weights are not zero, so it differs from its base."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_lm_path),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False),
    )
    path = tmp_path_factory.mktemp("tiny-adapter")
    model.save_pretrained(path)
    return str(path)


def test_pairs_are_expert_over_own_sample_for_the_same_state(tokenizer):
    dataset = trajectories()
    kept = [row for row in dataset if row["source"] != ONELINERS_SOURCE]
    replies = {fitted_ids(tokenizer, row): f"a sample for {row['prompt']}" for row in kept}
    stub = StubPolicy(tokenizer, replies)

    pairs = build_spin_pairs(stub, tokenizer, dataset, max_new_tokens=12, batch_size=3, max_prompt_length=64, seed=3)

    assert pairs.column_names == ["prompt", "chosen", "rejected", "history", "prompt_text"]
    assert len(pairs) == len(kept) == 4  # the one-liner is skipped
    for pair, row in zip(pairs, kept, strict=True):
        state = fit_state(tokenizer, row["history"], row["prompt"], 64)
        assert pair["prompt"] == build_messages(state.history, state.prompt)
        assert (pair["prompt_text"], pair["history"]) == (row["prompt"], state.history)
        assert pair["chosen"] == [{"role": "assistant", "content": cut(tokenizer, row["response"], 12)}]
        assert pair["rejected"] == [
            {"role": "assistant", "content": cut(tokenizer, replies[fitted_ids(tokenizer, row)], 12)}
        ]
    assert [call["max_new_tokens"] for call in stub.calls] == [12, 12]  # 4 states in batches of 3
    assert stub.calls[0]["do_sample"] and stub.calls[0]["top_k"] == 0


def test_states_are_fitted_to_the_prompt_budget(tokenizer):
    """A tight budget drops old turns exactly as fit_state does for GAIL and SFT."""
    dataset = trajectories().select([3])
    row = dataset[0]
    budget = len(fitted_ids(tokenizer, row, None)) - 1
    stub = StubPolicy(tokenizer, {fitted_ids(tokenizer, row, budget): "fine"})

    pair = build_spin_pairs(stub, tokenizer, dataset, max_new_tokens=8, max_prompt_length=budget)[0]

    assert len(pair["history"]) < len(row["history"])
    assert pair["history"] == fit_state(tokenizer, row["history"], row["prompt"], budget).history


def test_a_sample_equal_to_the_expert_is_dropped(tokenizer):
    dataset = trajectories()
    kept = [row for row in dataset if row["source"] != ONELINERS_SOURCE]
    replies = {fitted_ids(tokenizer, row): "something else" for row in kept}
    replies[fitted_ids(tokenizer, kept[1])] = kept[1]["response"]

    pairs = build_spin_pairs(
        StubPolicy(tokenizer, replies), tokenizer, dataset, max_new_tokens=64, max_prompt_length=64
    )

    assert pairs["prompt_text"] == [kept[0]["prompt"], kept[2]["prompt"], kept[3]["prompt"]]


def test_only_oneliners_or_only_echoes_is_an_error(tokenizer):
    with pytest.raises(ValueError, match="only one-liners"):
        build_spin_pairs(None, tokenizer, Dataset.from_list([ONELINER]))
    dataset = trajectories().select([1])
    echo = StubPolicy(tokenizer, {fitted_ids(tokenizer, dataset[0]): dataset[0]["response"]})
    with pytest.raises(ValueError, match="no preference"):
        build_spin_pairs(echo, tokenizer, dataset, max_prompt_length=64)


def test_tiny_model_samples_are_cut_and_seeded(tiny_lm_path, tokenizer):
    from egail.models import load_causal_lm

    model = load_causal_lm(tiny_lm_path)
    dataset = trajectories()
    model.train()
    kwargs = {"max_new_tokens": 4, "batch_size": 2, "max_prompt_length": 64}

    first = build_spin_pairs(model, tokenizer, dataset, seed=0, **kwargs)
    again = build_spin_pairs(model, tokenizer, dataset, seed=0, **kwargs)
    other = build_spin_pairs(model, tokenizer, dataset, seed=1, **kwargs)

    assert first.to_list() == again.to_list()
    assert first["rejected"] != other["rejected"]
    assert first["chosen"] == other["chosen"]
    for chosen, row in zip(first["chosen"], [r for r in dataset if r["source"] != ONELINERS_SOURCE], strict=True):
        assert chosen[0]["content"] == cut(tokenizer, row["response"], 4)
        assert len(tokenizer(chosen[0]["content"], add_special_tokens=False)["input_ids"]) <= 4
    assert model.training  # sampling puts the model in eval mode and back


def test_one_dpo_step_trains_only_the_adapter_against_its_start(tiny_lm_path, tiny_adapter, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig

    model, tokenizer = load_spin_policy(tiny_adapter, tiny_lm_path)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    pairs = build_spin_pairs(model, tokenizer, trajectories(), max_new_tokens=4, max_prompt_length=64)
    args = DPOConfig(
        output_dir=str(tmp_path / "spin"), max_steps=1, per_device_train_batch_size=4, learning_rate=1e-2, beta=0.1,
        max_length=80, use_cpu=True, bf16=False, gradient_checkpointing=False, report_to="none", logging_steps=1,
        save_strategy="no",
    )  # fmt: skip

    trainer = train_spin(model, tokenizer, pairs, args)

    log = trainer.state.log_history[0]
    # The reference is the starting adapter, not the base: at the first step the policy equals it exactly.
    assert math.isclose(log["loss"], math.log(2), rel_tol=1e-5) and log["rewards/margins"] == 0
    after = dict(model.named_parameters())
    changed = {name for name, value in before.items() if not torch.equal(value, after[name])}
    assert changed and all(".lora_" in name and ".default." in name for name in changed)
    assert TRL_REF_ADAPTER not in model.peft_config

    out = tmp_path / "spin"
    assert not (out / TRL_REF_ADAPTER).exists() and (out / "tokenizer_config.json").is_file()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm_path), out)
    reloaded_params = dict(reloaded.named_parameters())
    assert all(torch.equal(after[name].detach(), reloaded_params[name]) for name in changed)


def recipe_overrides(tmp_path, adapter: str) -> list[str]:
    return [
        "--config", str(RECIPES / "configs" / "spin.yaml"),
        "--model_name_or_path", adapter,
        "--output_dir", str(tmp_path / "out"),
        "--max_train_samples", "6",
        "--max_new_tokens", "4",
        "--max_prompt_length", "64",
        "--max_length", "80",
        "--max_steps", "1",
        "--per_device_train_batch_size", "2",
    ]  # fmt: skip


def test_recipe_runs_one_step_from_the_config(tiny_adapter, tmp_path):
    trainer = load_recipe("spin").main(recipe_overrides(tmp_path, tiny_adapter))

    out = tmp_path / "out"
    assert trainer.state.global_step == 1 and trainer.args.beta == 0.1
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    pairs = [json.loads(line) for line in (out / "spin_pairs.jsonl").read_text().splitlines()]
    assert pairs and all(pair["chosen"][0]["role"] == "assistant" for pair in pairs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda tmp, adapter: ["--base_model", str(tmp)], "was trained on"),
        (lambda tmp, adapter: ["--model_name_or_path", str(tmp / "missing")], "Could not load"),
        (lambda tmp, adapter: ["--model_name_or_path", str(tmp)], "neither adapter_config.json"),
        (lambda tmp, adapter: ["--use_peft"], "drop --use_peft"),
        (lambda tmp, adapter: ["--max_length", "40"], "must hold max_prompt_length"),
    ],
    ids=["other-base", "missing-folder", "empty-folder", "new-adapter-on-adapter", "short-max-length"],
)
def test_recipe_bad_input_is_one_error_line(change, message, tiny_adapter, tmp_path, capsys, monkeypatch):
    from egail.cli import run_cli

    monkeypatch.delenv("EGAIL_DEBUG", raising=False)
    argv = recipe_overrides(tmp_path, tiny_adapter) + change(tmp_path, tiny_adapter)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(load_recipe("spin").main, argv)

    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: ") and message in lines[-1]
