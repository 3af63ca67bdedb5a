"""`GAILTrainer`: adversarial imitation learning of dialogue on top of TRL's `GRPOTrainer`.

GRPOTrainer samples completions, scores them with reward functions and takes PPO-clipped steps. GAIL (the paper's
Algorithm 1) adds a discriminator D whose score is the reward, and human demos mixed into the rollouts; the class
docstring lists the steps in the order they run, which is the order of this file.

What is not GAIL lives elsewhere: rollout states and the `Rollout` record in `egail.rollout`, the demo schedule in
`egail.demos`, checkpoints, resume and the non-finite guard in `egail.checkpointing` (`CheckpointedTraining`), the
card and Hub push in `egail.hub` (`HubPublishing`), cross-process collectives in `egail.distributed`.
"""

from __future__ import annotations

import copy
import logging
import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from transformers import TrainerCallback, set_seed
from trl import GRPOTrainer

from egail.checkpointing import CheckpointedTraining, NonFiniteGuard
from egail.config import GAILConfig
from egail.demos import demo_ratio_at, demo_slots
from egail.discriminator import (
    Discriminator,
    DiscriminatorConfig,
    binary_accuracy,
    log_loss_step,
    reward_from_logits,
)
from egail.distributed import average_gradients, broadcast_module, finite_on_every_rank, mean_over_ranks
from egail.hub import HubPublishing
from egail.models import adapter_base, load_tokenizer, load_trainable_policy
from egail.rollout import Rollout, completion_text, rollout_states, supervised_batch
from egail.sentiment import SentimentHistory

logger = logging.getLogger(__name__)


class GAILTrainer(CheckpointedTraining, HubPublishing, GRPOTrainer):
    """GAIL for dialogue: the policy imitates expert responses, rewarded by a discriminator it tries to fool.

    Algorithm 1, in the order it runs:

    0. **MLE warm-up** (`warm_up_policy`, when ``sft_warmup_steps > 0``): supervised steps on expert responses.
    1. **Pre-train D** (`pretrain_discriminator`), once, after accelerate has prepared the model: distinct states, one
       policy sample each, D's log-loss step on (expert, sample) pairs.
    2. **Each rollout** (`_generate_and_score_completions`):
       a. *mix demos*: `egail.demos.demo_slots` picks a scheduled share of each group's slots for the expert's
          response;
       b. *sample* the other slots (`_generate_single_turn`); demo slots get the expert's tokens, cut like a sample;
       c. *score* the samples: `discriminator_reward` (+ `sentiment_history_reward`) return ``None`` for demos, so TRL
          keeps demos out of each group's baseline and the logged rewards; demos then get ``demo_advantage``;
       d. *update D* (`update_discriminator`) on the explicit `Rollout`: expert response vs each sample, same state.
    3. **PPO step**: GRPOTrainer's clipped loss on the buffer, unchanged.

    Args:
        model: a causal LM, or its name: an embedded name (``"smollm2-135m-instruct"``), a folder or a Hub id.
        args: a [`GAILConfig`] (not modified: the trainer works on a copy).
        train_dataset: expert trajectories with columns ``history`` (list of str), ``prompt`` and ``response``.
        discriminator: a [`Discriminator`]; by default built from ``args.discriminator_*``.
        sentiment: the [`SentimentHistory`] scorer used when ``args.sentiment_history_weight > 0``.
        Other arguments are those of `trl.GRPOTrainer` (``peft_config`` trains only LoRA adapters).
    """

    _tag_names = ["trl", "gail", "egail"]
    _name = "GAIL"
    _paper = {
        "title": "Generative Adversarial Imitation Learning for Empathy-based AI",
        "id": "2105.13328",
        # docstyle-ignore
        "citation": textwrap.dedent("""\
            @article{muthukumar2021empathygail,
                title        = {{Generative Adversarial Imitation Learning for Empathy-based AI}},
                author       = {Pratyush Muthukumar and Karishma Muthukumar and Deepan Muthirayan and Pramod Khargonekar},
                year         = 2021,
                eprint       = {arXiv:2105.13328},
            }"""),
    }

    def __init__(
        self,
        model: Any,
        args: GAILConfig | None = None,
        train_dataset: Dataset | None = None,
        eval_dataset: Dataset | None = None,
        discriminator: Discriminator | None = None,
        processing_class: Any = None,
        sentiment: SentimentHistory | None = None,
        callbacks: list | None = None,
        optimizers: tuple = (None, None),
        peft_config: Any = None,
    ):
        if not isinstance(args, GAILConfig):
            raise TypeError(f"args must be a GAILConfig (args=GAILConfig(output_dir=...)), got {type(args).__name__}.")
        if train_dataset is None:
            raise ValueError("GAILTrainer needs train_dataset: expert trajectories (history, prompt, response).")
        if isinstance(train_dataset, DatasetDict):
            raise ValueError("train_dataset is a DatasetDict; pass one split, e.g. dataset['train'].")
        if args.reward_weights is not None:
            raise ValueError("GAILTrainer weighs its rewards itself (1 for D); set sentiment_history_weight instead.")
        # model_init_kwargs and reward_weights are set below, on a copy: the caller's config stays as it was
        args = copy.copy(args)
        if isinstance(model, str | os.PathLike):  # a model, or a LoRA adapter to train further
            if peft_config is not None and adapter_base(model) is not None:
                raise ValueError(f"{model} is a LoRA adapter, trained further as it is: drop peft_config/--use_peft.")
            processing_class = processing_class or load_tokenizer(adapter_base(model) or str(model))
            model = load_trainable_policy(str(model), **(args.model_init_kwargs or {}))
            args.model_init_kwargs = None  # consumed here
        if processing_class is None:
            processing_class = load_tokenizer(model.config._name_or_path)
        processing_class.padding_side = "left"
        if processing_class.pad_token is None:
            processing_class.pad_token = processing_class.eos_token

        if discriminator is None:  # its head starts random: seed it, so one seed gives one run
            set_seed(args.seed)
            discriminator = Discriminator(DiscriminatorConfig.from_gail_config(args))
        self.discriminator = discriminator
        self.sentiment = sentiment or (SentimentHistory() if args.sentiment_history_weight > 0 else None)
        self.policy_warmed_up = args.sft_warmup_steps == 0
        self.discriminator_pretrained = args.discriminator_pretrain_steps == 0
        self.nonfinite = NonFiniteGuard(args.max_nonfinite_steps)
        self._generation_demos: list[list[int] | None] | None = None  # set only inside `_demos_in_generation`

        reward_funcs = [self.discriminator_reward]
        args.reward_weights = [1.0]
        if args.sentiment_history_weight > 0:
            reward_funcs.append(self.sentiment_history_reward)
            args.reward_weights.append(args.sentiment_history_weight)

        train_dataset = self.prepare_dataset(train_dataset, processing_class, args, "train_dataset")
        if eval_dataset is not None:
            eval_dataset = self.prepare_dataset(eval_dataset, processing_class, args, "eval_dataset")
        super().__init__(
            model=model,
            reward_funcs=reward_funcs,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=processing_class,
            callbacks=callbacks,
            optimizers=optimizers,
            peft_config=peft_config,
        )
        local_batch = args.per_device_train_batch_size * args.steps_per_generation
        if args.demo_ratio_start > 0 and local_batch % self.num_generations:
            raise ValueError(
                f"demo mixing needs each process's rollout ({local_batch} completions: per_device_train_batch_size x "
                f"steps_per_generation) to hold whole groups of num_generations={self.num_generations}."
            )
        self.discriminator.to(self.accelerator.device)
        broadcast_module(self.accelerator, self.discriminator)
        self.discriminator_optimizer = torch.optim.AdamW(
            [p for p in self.discriminator.parameters() if p.requires_grad],
            lr=args.discriminator_learning_rate,
            weight_decay=args.discriminator_weight_decay,
        )
        self.add_callback(_PretrainDiscriminatorOnTrainBegin(self))

    # ----------------------------------------------------------------------------------------------- data
    @staticmethod
    def prepare_dataset(dataset: Dataset, tokenizer: Any, args: GAILConfig, name: str) -> Dataset:
        """Validate trajectories and add what a rollout needs (`egail.rollout.rollout_states`)."""
        return rollout_states(dataset, tokenizer, args, name)

    def _decode(self, completion_ids: list[list[int]]) -> list[str]:
        """Completion texts, decoded as TRL decodes them for the reward functions."""
        return self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)

    # --------------------------------------------------------------------- 0. MLE warm-up (optional)
    def warm_up_policy(self, steps: int) -> list[float]:
        """Supervised steps on expert responses before D sees the policy (TextGAIL warm-starts from MLE).

        Each step: ``per_device_train_batch_size`` distinct states (their own seeded order), the state's prompt
        tokens then its demo tokens, cross-entropy on the demo tokens only, one AdamW step at
        ``sft_warmup_learning_rate``. Runs on the prepared model, so DDP averages its gradients. Returns the losses.
        """
        if self.is_deepspeed_enabled and steps > 0:
            raise ValueError(
                "sft_warmup_steps needs the policy's own optimizer; with DeepSpeed, run recipes/sft.py first."
            )
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        states = self._distinct_states(world, rank, seed=self.args.seed + 1)
        optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad], lr=self.args.sft_warmup_learning_rate
        )
        losses = []
        self.model_wrapped.train()
        for _ in range(steps):
            rows = [next(states) for _ in range(self.args.per_device_train_batch_size)]
            prompt_ids = self._tokenize_prompts([row["prompt"] for row in rows])[0]
            demo_ids = [row["demo_ids"] for row in rows]
            batch = supervised_batch(prompt_ids, demo_ids, self.processing_class.pad_token_id, self.accelerator.device)
            loss = self.model_wrapped(**batch).loss
            self.accelerator.backward(loss)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
        self.policy_warmed_up = True
        if losses:
            logger.info("MLE warm-up: loss %.3f -> %.3f over %d steps", losses[0], losses[-1], len(losses))
        return losses

    # ------------------------------------------------------------------------------ 1. pre-train D
    def pretrain_discriminator(self, steps: int) -> list[dict[str, float]]:
        """D-only updates before the policy moves (Table 1: 200 steps), each on distinct states.

        Each step costs one rollout's worth of samples (``per_device_train_batch_size x steps_per_generation`` per
        process), but one sample per state, drawn without repeats from a seeded permutation of the data (each
        process its own share), so ``steps`` steps see ``steps x batch`` distinct states while the data lasts.
        """
        from tqdm.auto import tqdm

        batch = self.args.per_device_train_batch_size * self.args.steps_per_generation
        world, rank = self.accelerator.num_processes, self.accelerator.process_index
        history: list[dict[str, float]] = []
        states = self._distinct_states(world, rank)
        progress = tqdm(range(steps), desc="Pre-training discriminator", disable=not self.is_local_process_zero())
        for _ in progress:
            rows = [next(states) for _ in range(batch)]
            prompt_ids = self._tokenize_prompts([row["prompt"] for row in rows])[0]
            with torch.no_grad():
                completion_ids, _ = self._generate_single_turn(prompt_ids, None, {}, num_generations=1)
            rollout = Rollout(
                histories=[row["history"] for row in rows],
                prompts=[row["prompt_text"] for row in rows],
                expert=[row["expert_text"] for row in rows],
                completions=self._decode(completion_ids),
                is_demo=[False] * len(rows),
            )
            history.append(self.update_discriminator(rollout, passes=1))
            progress.set_postfix(loss=f"{history[-1].get('discriminator/loss', float('nan')):.3f}")
        self.discriminator_pretrained = True
        if history:
            logger.info("Discriminator pre-training: first %s, last %s", history[0], history[-1])
        return history

    def _distinct_states(self, world: int, rank: int, seed: int | None = None) -> Iterator[dict]:
        """This process's share of the training states, in seeded random order; a new order once all are used."""
        generator = torch.Generator().manual_seed(self.args.seed if seed is None else seed)
        while True:
            order = torch.randperm(len(self.train_dataset), generator=generator).tolist()
            for index in order[rank::world] or order:
                yield self.train_dataset[index]

    # ---------------------------------------------------------------------------------- 2. rollout
    def current_demo_ratio(self) -> float:
        args = self.args
        total = self.state.max_steps if self.state.max_steps > 0 else args.max_steps
        return demo_ratio_at(
            self.state.global_step, args.demo_ratio_start, args.demo_ratio_end, args.demo_warmup_steps, total
        )

    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        """One GAIL rollout: mix demos, sample, score the samples, set the demos' advantage, then update D."""
        training = self.model.training
        if training:  # a pure function of seed, step and rank
            seed = self.args.seed * 1_000_003 + self.state.global_step * 1_009 + self.accelerator.process_index
            is_demo = demo_slots(len(inputs), self.num_generations, self.current_demo_ratio(), seed)
        else:
            is_demo = [False] * len(inputs)
        inputs = [{**x, "is_demo": demo} for x, demo in zip(inputs, is_demo, strict=True)]  # reward functions read it
        with self._demos_in_generation([x["demo_ids"] if x["is_demo"] else None for x in inputs]):
            output = super()._generate_and_score_completions(inputs)
        if not training:
            return output

        demo_mask = torch.tensor(is_demo, dtype=torch.bool, device=output["advantages"].device)
        output["advantages"][demo_mask] = self.args.demo_advantage
        completion_ids = [
            ids[mask.bool()].tolist()
            for ids, mask in zip(output["completion_ids"], output["completion_mask"], strict=True)
        ]
        rollout = Rollout(
            histories=[x["history"] for x in inputs],
            prompts=[x["prompt_text"] for x in inputs],
            expert=[x["expert_text"] for x in inputs],
            completions=self._decode(completion_ids),
            is_demo=is_demo,
        )
        metrics = self.update_discriminator(rollout, self.args.discriminator_updates_per_generation)
        metrics["demo/ratio"] = self.current_demo_ratio()
        metrics["demo/share"] = mean_over_ranks(self.accelerator, sum(is_demo) / len(is_demo))
        metrics["demo/advantage"] = self.args.demo_advantage
        metrics["expert/mean_length"] = mean_over_ranks(  # beside TRL's completions/mean_length: same cut
            self.accelerator, sum(len(x["demo_ids"]) for x in inputs) / len(inputs)
        )
        for key, value in metrics.items():
            self._metrics["train"][key].append(value)
        return output

    @contextmanager
    def _demos_in_generation(self, demo_ids: list[list[int] | None]) -> Iterator[None]:
        """Hand this rollout's demo tokens (``None`` for a slot to sample) to `_generate_single_turn`, which TRL
        calls with token ids only, for exactly the span of one ``super()._generate_and_score_completions``."""
        self._generation_demos = demo_ids
        try:
            yield
        finally:
            self._generation_demos = None

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        """Sample the non-demo slots and give the demo slots the expert's tokens (not generated at all).

        Samples are asked for one completion per prompt: TRL's vLLM server path sends ``prompts[::num_generations]``
        and asks ``n`` completions of each, which pairs completions with the wrong states unless the prompts are
        whole groups. Every process has the same number of samples (`demo_slots` draws the same count on each),
        as that path and collective generation (ZeRO-3, FSDP) need.
        """
        demos = self._generation_demos
        if demos is None or all(d is None for d in demos):
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        sampled = [i for i, demo in enumerate(demos) if demo is None]
        completion_ids = [list(demo) if demo is not None else [] for demo in demos]
        logprobs = None
        if sampled:
            sampled_images = [images[i] for i in sampled] if images is not None else None
            sampled_ids, sampled_logprobs = super()._generate_single_turn(
                [prompt_ids[i] for i in sampled], sampled_images, multimodal_fields, 1, has_tool_images
            )
            for i, ids in zip(sampled, sampled_ids, strict=True):
                completion_ids[i] = list(ids)
            if sampled_logprobs is not None:  # vLLM: a demo has no sampling log-probs; NaN means "no correction"
                logprobs = [[float("nan")] * len(ids) for ids in completion_ids]
                for i, lp in zip(sampled, sampled_logprobs, strict=True):
                    logprobs[i] = lp
        return completion_ids, logprobs

    def discriminator_reward(self, completions: list, history: list, prompt_text: list, is_demo: list,
                             **kwargs) -> list[float | None]:  # fmt: skip
        """The GAIL reward of each sample: D(state, completion) transformed by ``reward_form``; ``None`` for demos."""
        sampled = [i for i, demo in enumerate(is_demo) if not demo]
        logits = self.discriminator.predict_logits(
            [history[i] for i in sampled], [prompt_text[i] for i in sampled],
            [completion_text(completions[i]) for i in sampled],
        )  # fmt: skip
        rewards: list[float | None] = [None] * len(completions)
        for i, reward in zip(sampled, reward_from_logits(logits.float(), self.args.reward_form).tolist(), strict=True):
            rewards[i] = reward
        return rewards

    def sentiment_history_reward(self, completions: list, history: list, prompt_text: list, is_demo: list,
                                 **kwargs) -> list[float | None]:  # fmt: skip
        """How each sample acknowledges the conversation's mood (see `egail.sentiment`); ``None`` for demos."""
        return [
            None if demo else self.sentiment.reward(h, p, completion_text(c))
            for c, h, p, demo in zip(completions, history, prompt_text, is_demo, strict=True)
        ]

    def update_discriminator(self, rollout: Rollout, passes: int) -> dict[str, float]:
        """Eq. 6 log-loss steps on (expert response, sample) pairs of the same states; returns logged metrics.

        Demos are expert text, so only samples form pairs, each with its own state's expert response: both sides
        weigh the same. A non-finite loss on any process skips that step on every process. The metrics are read
        on the first pass, each minibatch before its own step: D on pairs it has not trained on. Later passes
        revisit pairs D has stepped on, and averaging them in would show D separating what it memorised.
        """
        pairs = rollout.sampled
        if not pairs or passes == 0:
            return {}
        half = max(1, self.args.discriminator_batch_size // 2)
        generator = torch.Generator().manual_seed(self.args.seed + self.state.global_step)
        should_step = partial(finite_on_every_rank, self.accelerator)
        reduce_gradients = partial(average_gradients, self.accelerator, self.discriminator)
        sums = dict.fromkeys(("loss", "acc_expert", "acc_generated", "d_expert", "d_generated"), 0.0)
        steps = 0
        for pass_index in range(passes):
            order = [pairs[j] for j in torch.randperm(len(pairs), generator=generator).tolist()]
            for start in range(0, len(order), half):
                index = order[start : start + half]
                step = log_loss_step(
                    self.discriminator,
                    self.discriminator_optimizer,
                    histories=[rollout.histories[i] for i in index],
                    prompts=[rollout.prompts[i] for i in index],
                    expert=[rollout.expert[i] for i in index],
                    generated=[rollout.completions[i] for i in index],
                    should_step=should_step,
                    reduce_gradients=reduce_gradients,
                )
                if not step.stepped:
                    self.nonfinite.seen = True
                    logger.warning("Non-finite discriminator loss at step %d; update skipped.", self.state.global_step)
                if pass_index > 0:
                    continue
                sums["loss"] += step.loss.item()
                sums["acc_expert"] += binary_accuracy(step.expert_logits, expert=True)
                sums["acc_generated"] += binary_accuracy(step.generated_logits, expert=False)
                sums["d_expert"] += torch.sigmoid(step.expert_logits).mean().item()
                sums["d_generated"] += torch.sigmoid(step.generated_logits).mean().item()
                steps += 1
        return {f"discriminator/{k}": mean_over_ranks(self.accelerator, v / steps) for k, v in sums.items()}


class _PretrainDiscriminatorOnTrainBegin(TrainerCallback):
    """The optional MLE warm-up, then step 1 of Algorithm 1, at the start of ``train``: after accelerate (DDP, DeepSpeed, FSDP) has prepared the
    model and a resumed checkpoint has been loaded, so generation runs on the prepared model and a resumed run
    (whose checkpoint says D was pre-trained) does not pre-train again."""

    def __init__(self, trainer: GAILTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.trainer.policy_warmed_up:
            self.trainer.warm_up_policy(args.sft_warmup_steps)
        if not self.trainer.discriminator_pretrained:
            self.trainer.pretrain_discriminator(args.discriminator_pretrain_steps)
