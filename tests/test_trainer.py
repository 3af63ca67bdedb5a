"""GAILTrainer: demo mixing, rewards, discriminator updates, checkpoints, LoRA and input checks."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset

from egail import GAILConfig, GAILTrainer
from egail.trainer import demo_ratio_at, num_demos

SAD = "My dog passed away this morning and the house feels empty."
SAD_REPLY = "I'm so sorry. Losing a dog is losing family. How are you holding up?"


def trajectories(n: int = 16) -> Dataset:
    rows = []
    for i in range(n):
        history = [] if i % 3 == 0 else ["I had a rough week at work.", "That sounds exhausting. What happened?"]
        rows.append({"history": history, "prompt": f"{SAD} ({i})", "response": f"{SAD_REPLY} ({i})", "conv_id": str(i)})
    return Dataset.from_list(rows)


def make_args(tmp_path, **overrides) -> GAILConfig:
    settings = dict(
        output_dir=str(tmp_path / "run"),
        max_steps=3,
        per_device_train_batch_size=4,
        num_generations=4,
        generation_batch_size=8,
        max_completion_length=10,
        discriminator_pretrain_steps=0,
        demo_warmup_steps=0,
        logging_steps=1,
        report_to=[],
        save_strategy="no",
        seed=0,
        use_cpu=True,
        gradient_checkpointing=False,
        learning_rate=1e-3,
    )
    settings.update(overrides)
    return GAILConfig(**settings)


@pytest.fixture
def trainer_factory(tmp_path, tiny_lm_path, tiny_encoder_path):
    def build(dataset: Dataset | None = None, peft_config=None, **overrides) -> GAILTrainer:
        overrides.setdefault("discriminator_encoder", tiny_encoder_path)
        args = make_args(tmp_path, **overrides)
        dataset = dataset if dataset is not None else trajectories()
        return GAILTrainer(tiny_lm_path, args=args, train_dataset=dataset, peft_config=peft_config)

    return build


# ------------------------------------------------------------------------------------------- schedule
@pytest.mark.parametrize(
    "step, expected",
    [(0, 0.3), (99, 0.3), (100, 0.3), (550, 0.15), (1000, 0.0), (2000, 0.0)],
)
def test_demo_ratio_holds_during_warmup_then_decays_linearly(step, expected):
    assert demo_ratio_at(step, start=0.3, end=0.0, warmup_steps=100, total_steps=1000) == pytest.approx(expected)


def test_num_demos_is_the_rounded_share():
    assert [num_demos(8, r) for r in (0.0, 0.3, 0.5, 1.0)] == [0, 2, 4, 8]
    assert num_demos(128, 0.3) == 38


def test_demo_ratio_outside_unit_interval_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="demo_ratio_start must be in \\[0, 1\\]"):
        make_args(tmp_path, demo_ratio_start=1.5)
    with pytest.raises(ValueError, match="demo_ratio_end"):
        make_args(tmp_path, demo_ratio_end=-0.1)


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"history": [], "prompt": "hi"}], r"missing column\(s\) \['response'\]"),
        ([{"history": [], "prompt": "hi", "response": "  "}], "row 0: 'response' is empty"),
        ([{"history": [], "prompt": "hi", "response": "ok"}, {"history": [], "prompt": "", "response": "x"}],
         "row 1: 'prompt' is empty"),
        ([{"history": "not a list", "prompt": "hi", "response": "ok"}], "row 0: 'history' must be a list of strings"),
        ([{"history": [1, 2], "prompt": "hi", "response": "ok"}], "row 0: 'history' must be a list of strings"),
        ([{"history": [], "prompt": "hi", "response": 3}], "row 0: 'response' must be a string"),
    ],
)
def test_bad_trajectories_raise_value_errors_naming_the_problem(trainer_factory, rows, message):
    with pytest.raises(ValueError, match=message):
        trainer_factory(Dataset.from_list(rows))


# --------------------------------------------------------------------------------------- demo mixing
def _rollout(trainer: GAILTrainer) -> dict:
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    return batch, trainer._generate_and_score_completions(batch)


def test_exact_share_of_completions_are_expert_demos(trainer_factory):
    trainer = trainer_factory(demo_ratio_start=0.5, max_completion_length=40)
    batch, output = _rollout(trainer)
    mask = trainer._demo_mask
    assert sum(mask) == num_demos(len(batch), 0.5) == 4
    for row, is_demo in enumerate(mask):
        ids = output["completion_ids"][row][output["completion_mask"][row].bool()].tolist()
        if is_demo:
            assert ids == batch[row]["response_ids"]
            assert trainer.processing_class.decode(ids, skip_special_tokens=True) == batch[row]["response"]


def test_old_logprobs_of_demos_are_the_policys_own(trainer_factory):
    # num_iterations=2 makes TRL compute old log-probs at generation time (instead of reusing the current ones).
    trainer = trainer_factory(demo_ratio_start=0.5, num_iterations=2, max_completion_length=40)
    batch, output = _rollout(trainer)
    assert "old_per_token_logps" in output
    ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
    attention = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = trainer.model(input_ids=ids, attention_mask=attention).logits
    n = output["completion_ids"].shape[1]
    logps = torch.log_softmax(logits[:, -n - 1 : -1].float(), dim=-1)
    own = logps.gather(-1, output["completion_ids"].unsqueeze(-1)).squeeze(-1)
    for row, is_demo in enumerate(trainer._demo_mask):
        if is_demo:
            keep = output["completion_mask"][row].bool()
            torch.testing.assert_close(output["old_per_token_logps"][row][keep], own[row][keep], atol=1e-4, rtol=1e-4)


def test_constant_demo_reward(trainer_factory):
    trainer = trainer_factory(demo_ratio_start=0.5, demo_reward=2.0, sentiment_history_weight=0.0)
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    trainer._generate_and_score_completions(batch)
    rewards = trainer._logs["rewards"]["discriminator_reward"]
    demo_rewards = [r for r, d in zip(rewards, trainer._demo_mask) if d]
    other = [r for r, d in zip(rewards, trainer._demo_mask) if not d]
    assert demo_rewards == [2.0] * 4
    assert all(r < 0 for r in other)  # log D < 0


# ------------------------------------------------------------------------------------------- rewards
def test_reward_functions_and_weights(trainer_factory):
    with_sentiment = trainer_factory(sentiment_history_weight=0.5)
    assert with_sentiment.reward_func_names == ["discriminator_reward", "sentiment_history_reward"]
    assert with_sentiment.reward_weights.tolist() == [1.0, 0.5]
    without = trainer_factory(sentiment_history_weight=0.0)
    assert without.reward_func_names == ["discriminator_reward"]


# ------------------------------------------------------------------------------------------ training
EXPECTED_METRICS = [
    "discriminator/loss",
    "discriminator/acc_expert",
    "discriminator/acc_generated",
    "discriminator/d_expert",
    "discriminator/d_generated",
    "demo_ratio",
    "reward",
    "reward_std",
]


def _train_and_check(trainer: GAILTrainer) -> None:
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    disc_before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    trainer.train()
    logged = trainer.state.log_history[0]
    for metric in EXPECTED_METRICS:
        assert metric in logged and math.isfinite(logged[metric]), metric
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert any(not torch.equal(disc_before[k], v) for k, v in trainer.discriminator.state_dict().items())


def test_three_steps_log_metrics_and_change_weights(trainer_factory):
    _train_and_check(trainer_factory(discriminator_pretrain_steps=2))


def test_pretraining_updates_only_the_discriminator(trainer_factory):
    trainer = trainer_factory(discriminator_pretrain_steps=3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.pretrain_discriminator(3)
    assert len(history) == 3 and all("discriminator/loss" in h for h in history)
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.state.global_step == 0


@pytest.mark.slow
def test_three_steps_on_the_embedded_models(tmp_path, smollm2_path):
    args = make_args(tmp_path, discriminator_encoder="minilm-l6", discriminator_pretrain_steps=1, learning_rate=1e-5)
    _train_and_check(GAILTrainer("smollm2-135m-instruct", args=args, train_dataset=trajectories()))


def test_resume_equals_uninterrupted_run(trainer_factory, tmp_path):
    straight = trainer_factory(max_steps=4, save_strategy="steps", save_steps=2, discriminator_pretrain_steps=1,
                               per_device_train_batch_size=8)
    straight.train()
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert (checkpoint / "discriminator" / "model.safetensors").is_file()

    resumed = trainer_factory(max_steps=4, save_strategy="no", discriminator_pretrain_steps=1,
                              per_device_train_batch_size=8, output_dir=str(tmp_path / "resumed"))
    resumed.train(resume_from_checkpoint=str(checkpoint))
    for name, value in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, atol=1e-5, rtol=1e-4)
    for name, value in straight.discriminator.state_dict().items():
        torch.testing.assert_close(resumed.discriminator.state_dict()[name], value, atol=1e-5, rtol=1e-4)
    assert resumed.gail_state() == straight.gail_state()


def test_lora_trains_only_adapters(trainer_factory):
    from peft import LoraConfig

    lora_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    trainer = trainer_factory(max_steps=2, peft_config=lora_config)
    named = dict(trainer.model.named_parameters())
    frozen = {k: v.detach().clone() for k, v in named.items() if "lora_" not in k}
    adapters = {k: v.detach().clone() for k, v in named.items() if "lora_" in k}
    assert adapters and all(not named[k].requires_grad for k in frozen)
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert all(torch.equal(after[k], v) for k, v in frozen.items())
    assert any(not torch.equal(after[k], v) for k, v in adapters.items())
