"""GAILTrainer: demo mixing, rewards, discriminator updates, checkpoints, LoRA and input checks."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset

from egail import GAILTrainer
from egail.demos import demo_ratio_at, demo_slots, max_demo_ratio, num_demos
from egail.formatting import response_ids
from egail.rollout import Rollout
from tests.helpers import SAD, make_args, trajectories


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
        (
            [{"history": [], "prompt": "hi", "response": "ok"}, {"history": [], "prompt": "", "response": "x"}],
            "row 1: 'prompt' is empty",
        ),
        ([{"history": "not a list", "prompt": "hi", "response": "ok"}], "row 0: 'history' must be a list of strings"),
        ([{"history": [1, 2], "prompt": "hi", "response": "ok"}], "row 0: 'history' must be a list of strings"),
        ([{"history": [], "prompt": "hi", "response": 3}], "row 0: 'response' must be a string"),
    ],
)
def test_bad_trajectories_raise_value_errors_naming_the_problem(trainer_factory, rows, message):
    with pytest.raises(ValueError, match=message):
        trainer_factory(Dataset.from_list(rows))


# --------------------------------------------------------------------------------------- demo mixing
def _rollout(trainer: GAILTrainer, monkeypatch) -> tuple[list[dict], dict, Rollout]:
    """One training rollout; returns its inputs, TRL's output and the `Rollout` D was updated on."""
    seen: list[Rollout] = []
    update = trainer.update_discriminator
    monkeypatch.setattr(
        trainer, "update_discriminator", lambda rollout, passes: seen.append(rollout) or update(rollout, passes)
    )
    trainer.model.train()
    batch = next(iter(trainer.get_train_dataloader()))
    output = trainer._generate_and_score_completions(batch)
    return batch, output, seen[-1]


def test_exact_share_of_completions_are_expert_demos(trainer_factory, monkeypatch):
    trainer = trainer_factory(demo_ratio_start=0.5, max_completion_length=40)
    batch, output, rollout = _rollout(trainer, monkeypatch)
    assert sum(rollout.is_demo) == num_demos(len(batch), 0.5) == 4
    for row, is_demo in enumerate(rollout.is_demo):
        ids = output["completion_ids"][row][output["completion_mask"][row].bool()].tolist()
        if is_demo:
            assert ids == batch[row]["demo_ids"]
            assert rollout.completions[row] == rollout.expert[row] == batch[row]["response"]


def test_demos_are_spread_over_groups_and_leave_two_samples_in_each():
    for seed in range(50):
        mask = demo_slots(32, 4, 0.5, seed)
        groups = [mask[g : g + 4] for g in range(0, 32, 4)]
        assert sum(mask) == 16 and all(sum(g) == 2 for g in groups)
        mask = demo_slots(32, 8, 0.3, seed)
        assert sum(mask) == num_demos(32, 0.3) and max(sum(mask[g : g + 8]) for g in range(0, 32, 8)) <= 3
    assert demo_slots(8, 4, 1.0, 0).count(True) == 4  # capped: each group keeps two samples
    assert max_demo_ratio(4) == 0.5 and max_demo_ratio(2) == 0.0


def test_demo_ratio_beyond_what_groups_allow_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="num_generations=4 at most 0.50 of a rollout can be demos"):
        make_args(tmp_path, demo_ratio_start=0.6)


def test_sampled_advantages_ignore_demos_and_demos_get_the_configured_advantage(trainer_factory, monkeypatch):
    trainer = trainer_factory(demo_ratio_start=0.5, demo_advantage=1.5, sentiment_history_weight=0.0)
    _, output, rollout = _rollout(trainer, monkeypatch)
    rewards = torch.tensor(trainer._logs["rewards"]["discriminator_reward"])
    advantages = output["advantages"]
    for group in range(len(rollout.is_demo) // 4):
        slots = range(group * 4, group * 4 + 4)
        sampled = [i for i in slots if not rollout.is_demo[i]]
        assert all(math.isnan(rewards[i]) for i in slots if rollout.is_demo[i])  # demos have no reward
        own = rewards[sampled]
        expected = (own - own.mean()) / (own.std() + 1e-4)  # the group's samples only
        torch.testing.assert_close(advantages[sampled], expected, atol=1e-4, rtol=1e-4)
    assert all(advantages[i] == 1.5 for i, demo in enumerate(rollout.is_demo) if demo)
    logged = trainer._metrics["train"]
    sampled_rewards = rewards[~torch.tensor(rollout.is_demo)]
    assert logged["reward"][-1] == pytest.approx(sampled_rewards.mean().item(), rel=1e-5)
    assert logged["demo/advantage"][-1] == 1.5 and logged["demo/share"][-1] == 0.5


def test_old_logprobs_of_demos_are_the_policys_own(trainer_factory, monkeypatch):
    # num_iterations=2 makes TRL compute old log-probs at generation time (instead of reusing the current ones).
    trainer = trainer_factory(demo_ratio_start=0.5, num_iterations=2, max_completion_length=40)
    _, output, rollout = _rollout(trainer, monkeypatch)
    assert "old_per_token_logps" in output
    ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
    attention = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
    with torch.no_grad():
        logits = trainer.model(input_ids=ids, attention_mask=attention).logits
    n = output["completion_ids"].shape[1]
    logps = torch.log_softmax(logits[:, -n - 1 : -1].float(), dim=-1)
    own = logps.gather(-1, output["completion_ids"].unsqueeze(-1)).squeeze(-1)
    for row, is_demo in enumerate(rollout.is_demo):
        if is_demo:
            keep = output["completion_mask"][row].bool()
            torch.testing.assert_close(output["old_per_token_logps"][row][keep], own[row][keep], atol=1e-4, rtol=1e-4)


def test_the_expert_side_of_d_is_cut_and_decoded_like_completions(trainer_factory, monkeypatch):
    long_reply = "I am so sorry to hear that, it must be very hard for you and your whole family right now. " * 3
    rows = [{"history": [], "prompt": f"{SAD} ({i})", "response": long_reply} for i in range(8)]
    trainer = trainer_factory(Dataset.from_list(rows), demo_ratio_start=0.5, max_completion_length=12)
    batch, output, rollout = _rollout(trainer, monkeypatch)
    tokenizer = trainer.processing_class
    for row in range(len(batch)):
        cut = response_ids(tokenizer, long_reply)[:12]
        assert rollout.expert[row] == tokenizer.decode(cut, skip_special_tokens=True) != long_reply
        assert len(tokenizer(rollout.expert[row], add_special_tokens=False)["input_ids"]) <= 12
        if rollout.is_demo[row]:
            assert rollout.completions[row] == rollout.expert[row]


def test_one_liners_stay_out_of_rollouts_unless_asked(trainer_factory):
    rows = [
        {
            "history": [],
            "prompt": "Every day is a fresh start.",
            "response": "Every day is a fresh start.",
            "source": "oneliners",
        }
    ] * 4 + trajectories(8).to_list()
    dataset = Dataset.from_list(rows)
    assert len(trainer_factory(dataset).train_dataset) == 8
    assert len(trainer_factory(dataset, include_oneliners=True).train_dataset) == 12
    with pytest.raises(ValueError, match="only one-liners"):
        trainer_factory(Dataset.from_list(rows[:4]))


class _ServerStandIn:
    """TRL's vLLM server path, as far as pairing goes: it keeps ``prompts[::num_generations]`` and returns
    ``num_generations`` completions of each. A completion's first token names the prompt it answers."""

    def __init__(self, eos: int):
        self.eos = eos

    def sync_weights(self) -> None:
        pass

    def generate(self, prompts, images, num_generations, profiler=None):
        completions = [[p[-1], self.eos] for p in prompts[::num_generations] for _ in range(num_generations)]
        return None, completions, [[[-0.5]] * len(c) for c in completions], None


def test_vllm_server_samples_answer_their_own_states(trainer_factory):
    trainer = trainer_factory(demo_ratio_start=0.5)
    eos = trainer.processing_class.eos_token_id
    trainer.use_vllm, trainer.vllm_generation, trainer._last_loaded_step = True, _ServerStandIn(eos), 0
    prompt_ids = [[1, 2, 100 + group] for group in range(2) for _ in range(4)]  # two groups of four
    demos = [[9, 9, eos] if is_demo else None for is_demo in demo_slots(8, 4, 0.5, seed=3)]
    with trainer._demos_in_generation(demos):
        completion_ids, logprobs = trainer._generate_single_turn(prompt_ids, None, {}, num_generations=4)
    for slot, demo in enumerate(demos):
        if demo is None:
            assert completion_ids[slot] == [prompt_ids[slot][-1], eos] and logprobs[slot] == [-0.5, -0.5]
        else:
            assert completion_ids[slot] == demo and all(math.isnan(x) for x in logprobs[slot])


def test_the_callers_config_is_left_as_it_was(trainer_factory, tmp_path, tiny_lm_path, tiny_encoder_path):
    args = make_args(tmp_path, discriminator_encoder=tiny_encoder_path, model_init_kwargs={"dtype": "float32"})
    trainer = GAILTrainer(tiny_lm_path, args=args, train_dataset=trajectories())
    assert args.model_init_kwargs == {"dtype": "float32"} and args.reward_weights is None
    assert trainer.args.reward_weights == [1.0, 0.5]
    with pytest.raises(ValueError, match="set sentiment_history_weight instead"):
        trainer_factory(reward_weights=[1.0, 2.0])


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
    "demo/ratio",
    "demo/share",
    "demo/advantage",
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
    # as TRL's tests do: every trainable tensor moved (D's encoder pooler is unused: D mean-pools the tokens)
    unchanged = [k for k, v in trainer.model.named_parameters() if v.requires_grad and torch.equal(before[k], v)]
    assert not unchanged, unchanged
    unchanged = [
        k
        for k, v in trainer.discriminator.named_parameters()
        if v.requires_grad and "pooler" not in k and torch.equal(disc_before[k], v)
    ]
    assert not unchanged, unchanged


def test_three_steps_log_metrics_and_change_weights(trainer_factory):
    _train_and_check(trainer_factory(discriminator_pretrain_steps=2))


def test_discriminator_metrics_are_read_on_pairs_it_has_not_stepped_on(trainer_factory):
    """With several passes over a rollout, the logged D figures are the first pass's (each minibatch before its own
    step), not an average with later passes over pairs D has already trained on."""
    import copy

    trainer = trainer_factory(discriminator_batch_size=4)
    rollout = Rollout(histories=[[], ["hello"], [], []], prompts=["I lost my job.", "How are you?", "I won!", "Hi"],
                      expert=["That is hard.", "Fine, thanks.", "Well done!", "Hello."],
                      completions=["ok", "the the the", "yes", "no"], is_demo=[False, False, False, True])  # fmt: skip
    start = (
        copy.deepcopy(trainer.discriminator.state_dict()),
        copy.deepcopy(trainer.discriminator_optimizer.state_dict()),
    )
    torch.manual_seed(0)  # the same dropout masks on the first pass
    one_pass = trainer.update_discriminator(rollout, passes=1)
    after_one = copy.deepcopy(trainer.discriminator.state_dict())
    trainer.discriminator.load_state_dict(start[0])
    trainer.discriminator_optimizer.load_state_dict(start[1])
    torch.manual_seed(0)
    three_passes = trainer.update_discriminator(rollout, passes=3)
    assert three_passes == pytest.approx(one_pass)
    assert set(one_pass) == {
        f"discriminator/{k}" for k in ("loss", "acc_expert", "acc_generated", "d_expert", "d_generated")
    }
    moved = trainer.discriminator.state_dict()  # the two later passes did step
    assert any(not torch.equal(after_one[k], moved[k]) for k in moved)


def test_pretraining_updates_only_the_discriminator(trainer_factory):
    trainer = trainer_factory(discriminator_pretrain_steps=3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = trainer.pretrain_discriminator(3)
    assert len(history) == 3 and all("discriminator/loss" in h for h in history)
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.state.global_step == 0


def test_pretraining_sees_steps_times_batch_distinct_states(trainer_factory, monkeypatch):
    trainer = trainer_factory(trajectories(64), discriminator_pretrain_steps=6)
    states: list[str] = []
    update = trainer.update_discriminator
    monkeypatch.setattr(
        trainer,
        "update_discriminator",
        lambda rollout, passes: states.extend(rollout.prompts) or update(rollout, passes),
    )
    trainer.pretrain_discriminator(6)
    batch = trainer.args.per_device_train_batch_size * trainer.args.steps_per_generation
    assert len(states) == 6 * batch == 48 and len(set(states)) == 48


def test_pretraining_runs_inside_train_after_the_model_is_prepared(trainer_factory, monkeypatch):
    trainer = trainer_factory(discriminator_pretrain_steps=1, max_steps=1)
    prepared = []
    pretrain = trainer.pretrain_discriminator
    monkeypatch.setattr(
        trainer,
        "pretrain_discriminator",
        lambda steps: (
            prepared.append((len(trainer.accelerator._models), trainer.state.global_step)) or pretrain(steps)
        ),
    )
    trainer.train()
    assert prepared == [(1, 0)] and trainer.discriminator_pretrained


@pytest.mark.slow
def test_three_steps_on_the_embedded_models(tmp_path, smollm2_path):
    args = make_args(tmp_path, discriminator_encoder="minilm-l6", discriminator_pretrain_steps=1, learning_rate=1e-5)
    _train_and_check(GAILTrainer("smollm2-135m-instruct", args=args, train_dataset=trajectories()))


def test_resume_equals_uninterrupted_run(trainer_factory, tmp_path):
    straight = trainer_factory(
        max_steps=4, save_strategy="steps", save_steps=2, discriminator_pretrain_steps=1, per_device_train_batch_size=8
    )
    straight.train()
    checkpoint = tmp_path / "run" / "checkpoint-2"
    assert (checkpoint / "discriminator" / "model.safetensors").is_file()

    resumed = trainer_factory(
        max_steps=4,
        save_strategy="no",
        discriminator_pretrain_steps=1,
        per_device_train_batch_size=8,
        output_dir=str(tmp_path / "resumed"),
    )
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
    assert all(not torch.equal(after[k], v) for k, v in adapters.items() if "lora_B" in k or "lora_A" in k)


def test_mle_warm_up_runs_before_discriminator_pretraining_and_fits_the_demos(trainer_factory, monkeypatch):
    trainer = trainer_factory(sft_warmup_steps=6, sft_warmup_learning_rate=1e-2, discriminator_pretrain_steps=1,
                              max_steps=1)  # fmt: skip
    order: list[str] = []
    losses: list[float] = []
    warm_up, pretrain = trainer.warm_up_policy, trainer.pretrain_discriminator
    monkeypatch.setattr(
        trainer,
        "warm_up_policy",
        lambda steps: order.append(f"warm-up {steps}") or losses.extend(warm_up(steps)) or losses,
    )
    monkeypatch.setattr(
        trainer, "pretrain_discriminator", lambda steps: order.append(f"pre-train {steps}") or pretrain(steps)
    )
    trainer.train()
    assert order == ["warm-up 6", "pre-train 1"]
    assert len(losses) == 6 and losses[-1] < losses[0]  # the tiny model learns the (repetitive) expert replies
    assert trainer.gail_state()["policy_warmed_up"] is True


def test_mle_warm_up_is_off_by_default(trainer_factory, monkeypatch):
    trainer = trainer_factory(max_steps=1)
    monkeypatch.setattr(trainer, "warm_up_policy", lambda steps: pytest.fail("warm-up ran"))
    trainer.train()
