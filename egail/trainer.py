"""`GAILTrainer`: adversarial imitation learning of dialogue on top of TRL's `GRPOTrainer`.

GRPOTrainer samples completions, scores them with reward functions and takes PPO-clipped steps. GAIL (the paper's
Algorithm 1) adds a discriminator D whose score is the reward, and human demos mixed into the rollouts. In the order
it runs, and in the order of this file:

1. **Pre-train D** (`pretrain_discriminator`), once, after accelerate has prepared the model: distinct states, one
   policy sample each, D's log-loss step on (expert, sample) pairs.
2. **Each rollout** (`_generate_and_score_completions`):
   a. *mix demos*: `egail.demos.demo_slots` picks a scheduled share of each group's slots for the expert's response;
   b. *sample* the other slots (`_generate_single_turn`); demo slots get the expert's tokens, cut like a sample;
   c. *score* the samples: `discriminator_reward` (+ `sentiment_history_reward`) return ``None`` for demos, so TRL
      keeps demos out of each group's baseline and the logged rewards; demos then get ``demo_advantage``;
   d. *update D* (`update_discriminator`) on the explicit `Rollout`: expert response vs each sample, same state.
3. **PPO step**: GRPOTrainer's clipped loss on the buffer, unchanged.

Checkpoint completeness, resume and the non-finite guard live in `egail.checkpointing`; the demo schedule in
`egail.demos`; the state format in `egail.formatting`; the trajectory schema in `egail.schema`.
"""

from __future__ import annotations

import copy
import logging
import os
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from transformers import TrainerCallback, set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOTrainer

from egail.checkpointing import NonFiniteGuard, load_gail_checkpoint, resolve_checkpoint, save_gail_checkpoint
from egail.config import GAILConfig
from egail.demos import demo_ratio_at, demo_slots
from egail.discriminator import DISCRIMINATOR_DIR, Discriminator, DiscriminatorConfig, binary_accuracy
from egail.discriminator import reward_from_logits
from egail.formatting import build_messages, fit_state, has_chat_template, render_plain, response_ids
from egail.models import load_causal_lm, load_tokenizer
from egail.schema import is_oneliner, validate_trajectories
from egail.sentiment import SentimentHistory

logger = logging.getLogger(__name__)


class _DemoRowsFilter(logging.Filter):
    """TRL warns about each completion that no reward function scored; a GAIL demo is one by design (its reward is
    ``None`` to keep it out of the group baseline), so that warning is dropped for demo rows, and only for them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (message.startswith("All reward functions returned None") and "'is_demo': True" in message)


logging.getLogger("trl.trainer.grpo_trainer").addFilter(_DemoRowsFilter())


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The text of a completion, conversational (a list of messages) or plain."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


@dataclass(frozen=True)
class Rollout:
    """A rollout as D learns from it: per completion, its state, the expert's response (cut and decoded like a
    completion) and the completion's text, and whether that completion is a demo (expert text, not a sample)."""

    histories: list[list[str]]
    prompts: list[str]
    expert: list[str]
    completions: list[str]
    is_demo: list[bool]

    @property
    def sampled(self) -> list[int]:
        return [i for i, demo in enumerate(self.is_demo) if not demo]


class GAILTrainer(GRPOTrainer):
    """GAIL for dialogue: the policy imitates expert responses, rewarded by a discriminator it tries to fool.

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
        args = copy.copy(args)  # model_init_kwargs and reward_weights are set below; the caller's config stays as it was
        if isinstance(model, str | os.PathLike):
            processing_class = processing_class or load_tokenizer(str(model))
            model = load_causal_lm(str(model), **(args.model_init_kwargs or {}))
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
        self._broadcast_discriminator()
        self.discriminator_optimizer = torch.optim.AdamW(
            [p for p in self.discriminator.parameters() if p.requires_grad],
            lr=args.discriminator_learning_rate,
            weight_decay=args.discriminator_weight_decay,
        )
        self.add_callback(_PretrainDiscriminatorOnTrainBegin(self))

    # ----------------------------------------------------------------------------------------------- data
    @staticmethod
    def prepare_dataset(dataset: Dataset, tokenizer: Any, args: GAILConfig, name: str) -> Dataset:
        """Validate trajectories and add what a rollout needs: the policy prompt, the state, the demo.

        The state is fitted by `egail.formatting.fit_state` (as SFT, evaluation and the chat fit it): ``prompt``
        becomes chat messages (or the plain rendering), the utterance moves to ``prompt_text``. The demo is the
        expert's response as the policy would end it (`response_ids`), cut at ``max_completion_length`` like a
        sample; ``expert_text`` is those tokens decoded as completions are, so D compares like with like.
        One-liners are dropped unless ``args.include_oneliners``.
        """
        validate_trajectories(dataset, name)
        if not args.include_oneliners:
            dataset = dataset.filter(lambda row: not is_oneliner(row), desc=f"Dropping one-liners from {name}")
            if len(dataset) == 0:
                raise ValueError(f"{name} holds only one-liners, which GAIL leaves out; set include_oneliners=True.")
        chat = has_chat_template(tokenizer)

        def to_state(row: dict) -> dict:
            state = fit_state(
                tokenizer, row["history"], row["prompt"], args.max_prompt_length, args.history_max_turns,
                args.system_prompt,
            )  # fmt: skip
            messages = build_messages(state.history, state.prompt, args.system_prompt)
            demo_ids = response_ids(tokenizer, row["response"])[: args.max_completion_length]
            return {
                "prompt": messages if chat else render_plain(messages),
                "prompt_text": state.prompt,
                "history": state.history,
                "demo_ids": demo_ids,
                "expert_text": tokenizer.decode(demo_ids, skip_special_tokens=True),
            }

        return dataset.map(to_state, desc=f"Preparing {name}")

    def _decode(self, completion_ids: list[list[int]]) -> list[str]:
        """Completion texts, decoded as TRL decodes them for the reward functions."""
        return self.processing_class.batch_decode(completion_ids, skip_special_tokens=True)

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

    def _distinct_states(self, world: int, rank: int) -> Iterator[dict]:
        """This process's share of the training states, in seeded random order; a new order once all are used."""
        generator = torch.Generator().manual_seed(self.args.seed)
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
        completion_ids = [ids[mask.bool()].tolist() for ids, mask in zip(output["completion_ids"],
                                                                          output["completion_mask"], strict=True)]
        rollout = Rollout(
            histories=[x["history"] for x in inputs],
            prompts=[x["prompt_text"] for x in inputs],
            expert=[x["expert_text"] for x in inputs],
            completions=self._decode(completion_ids),
            is_demo=is_demo,
        )
        metrics = self.update_discriminator(rollout, self.args.discriminator_updates_per_generation)
        metrics["demo/ratio"] = self.current_demo_ratio()
        metrics["demo/share"] = self._mean_over_ranks(sum(is_demo) / len(is_demo))
        metrics["demo/advantage"] = self.args.demo_advantage
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
        weigh the same. A non-finite loss on any process skips that step on every process.
        """
        pairs = rollout.sampled
        if not pairs or passes == 0:
            return {}
        half = max(1, self.args.discriminator_batch_size // 2)
        generator = torch.Generator().manual_seed(self.args.seed + self.state.global_step)
        sums = dict.fromkeys(("loss", "acc_expert", "acc_generated", "d_expert", "d_generated"), 0.0)
        steps = 0
        self.discriminator.train()
        for _ in range(passes):
            order = [pairs[j] for j in torch.randperm(len(pairs), generator=generator).tolist()]
            for start in range(0, len(order), half):
                index = order[start : start + half]
                histories = [rollout.histories[i] for i in index] * 2
                prompts = [rollout.prompts[i] for i in index] * 2
                responses = [rollout.expert[i] for i in index] + [rollout.completions[i] for i in index]
                logits = self.discriminator.logits(histories, prompts, responses).float()
                expert_logits, generated_logits = logits[: len(index)], logits[len(index) :]
                loss = Discriminator.loss(expert_logits, generated_logits)
                self.discriminator_optimizer.zero_grad(set_to_none=True)
                if self._finite_on_every_rank(loss):
                    loss.backward()
                    self._all_reduce_gradients()
                    self.discriminator_optimizer.step()
                else:
                    self.nonfinite.seen = True
                    logger.warning("Non-finite discriminator loss at step %d; update skipped.", self.state.global_step)
                with torch.no_grad():
                    sums["loss"] += loss.item()
                    sums["acc_expert"] += binary_accuracy(expert_logits, expert=True)
                    sums["acc_generated"] += binary_accuracy(generated_logits, expert=False)
                    sums["d_expert"] += torch.sigmoid(expert_logits).mean().item()
                    sums["d_generated"] += torch.sigmoid(generated_logits).mean().item()
                steps += 1
        return {f"discriminator/{k}": self._mean_over_ranks(v / steps) for k, v in sums.items()}

    # ------------------------------------------------------------------------- several processes
    def _finite_on_every_rank(self, loss: torch.Tensor) -> bool:
        finite = torch.tensor([float(torch.isfinite(loss).all())], device=self.accelerator.device)
        if self.accelerator.num_processes > 1:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def _all_reduce_gradients(self) -> None:
        """Average D's gradients over processes, so every process's D takes the same step."""
        if self.accelerator.num_processes == 1:
            return
        grads = [p.grad for p in self.discriminator.parameters() if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        torch.distributed.all_reduce(flat, op=torch.distributed.ReduceOp.SUM)
        flat /= self.accelerator.num_processes
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _broadcast_discriminator(self) -> None:
        """Start every process from process 0's discriminator weights."""
        if self.accelerator.num_processes > 1:
            for tensor in self.discriminator.state_dict().values():
                torch.distributed.broadcast(tensor, src=0)

    def _mean_over_ranks(self, value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float32, device=self.accelerator.device)
        return self.accelerator.gather(tensor).nanmean().item()

    # ------------------------------------------------------------------------ 3. PPO step, guarded
    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """GRPO training with GAIL rewards; D is pre-trained first (see `_PretrainDiscriminatorOnTrainBegin`).

        ``resume_from_checkpoint=True`` (or "last") resumes from the newest *complete* checkpoint in
        ``output_dir``; a half-written one, left by a kill during saving, is never loaded.
        """
        checkpoint = resolve_checkpoint(self.args.output_dir, resume_from_checkpoint)
        return super().train(resume_from_checkpoint=checkpoint, **kwargs)

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.nonfinite.saw(loss)
        return loss

    def create_optimizer(self, model=None):
        """The policy optimizer, whose step is skipped on every process after a non-finite loss on any."""
        optimizer = super().create_optimizer(model)
        if not getattr(optimizer, "_egail_guarded", False):
            step = optimizer.step

            def guarded_step(*args, **kwargs):
                flag = torch.tensor([float(self.nonfinite.seen)], device=self.accelerator.device)
                any_bad = bool(self.accelerator.gather(flag).max().item())
                if self.nonfinite.skip_update(any_bad, self.state.global_step + 1, self.args.output_dir):
                    return None
                return step(*args, **kwargs)

            optimizer.step = guarded_step
            optimizer._egail_guarded = True
        return optimizer

    # ------------------------------------------------------------------------------------ persistence
    def gail_state(self) -> dict[str, Any]:
        return {
            "global_step": self.state.global_step,
            "demo_ratio": self.current_demo_ratio(),
            "discriminator_pretrained": self.discriminator_pretrained,
        }

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            save_gail_checkpoint(folder, self.discriminator, self.discriminator_optimizer, self.gail_state())

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is not None:
            state = load_gail_checkpoint(
                checkpoint, self.discriminator, self.discriminator_optimizer, self.accelerator.device
            )
            self.discriminator_pretrained = state["discriminator_pretrained"]

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False):
        """Save the policy and, beside it, the discriminator. Never pushes: `push_to_hub` does that, once."""
        super().save_model(output_dir, _internal_call=True)
        if self.args.should_save and not _internal_call:
            self.discriminator.save_pretrained(Path(output_dir or self.args.output_dir) / DISCRIMINATOR_DIR)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Trainer pickles the whole config into ``training_args.bin``: keep the Hub token out of that file."""
        token, self.args.hub_token = self.args.hub_token, None
        try:
            super()._save(output_dir, state_dict)
        finally:
            self.args.hub_token = token

    def _push_from_checkpoint(self, checkpoint_folder: str) -> None:
        """Checkpoints are not published mid-run: they would carry pickles and lack the card. Push at the end."""

    # -------------------------------------------------------------------------------------------- Hub
    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        dataset_name: str | list[str] | None = None,
        license: str = "apache-2.0",
        tags: list[str] | None = None,
    ):
        """Push the run as one model repo: policy (or LoRA adapter), tokenizer, ``discriminator/`` and a model card.

        Saves both models to ``args.output_dir`` and uploads it with `egail.hub.push_run` (no checkpoints, no
        pickles) to ``args.hub_model_id``, by default the output folder's name under the token's user.
        ``dataset_name`` (TRL's keyword) names the training data in the card. Returns the commit URL, or a
        Future of it when ``blocking=False``.
        """
        from huggingface_hub import HfApi

        from egail.hub import push_run

        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        output_dir = Path(self.args.output_dir)
        self.save_model(str(output_dir))
        if not self.is_world_process_zero():
            return None
        push = dict(
            run_dir=output_dir,
            repo_id=self.hub_model_id or self.args.hub_model_id or output_dir.absolute().name,
            private=private if private is not None else self.args.hub_private_repo,
            token=token if token is not None else self.args.hub_token,
            revision=revision if revision is not None else self.args.hub_revision,
            commit_message=commit_message or "End of training",
            base_model=getattr(self.accelerator.unwrap_model(self.model).config, "_name_or_path", None),
            datasets=[dataset_name] if isinstance(dataset_name, str) else dataset_name,
            training_args=self.args.to_dict(),
            license=license,
            tags=tags,
        )
        return push_run(**push) if blocking else HfApi().run_as_future(push_run, **push)


class _PretrainDiscriminatorOnTrainBegin(TrainerCallback):
    """Step 1 of Algorithm 1 at the start of ``train``: after accelerate (DDP, DeepSpeed, FSDP) has prepared the
    model and a resumed checkpoint has been loaded, so generation runs on the prepared model and a resumed run
    (whose checkpoint says D was pre-trained) does not pre-train again."""

    def __init__(self, trainer: GAILTrainer):
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        if not self.trainer.discriminator_pretrained:
            self.trainer.pretrain_discriminator(args.discriminator_pretrain_steps)
