"""`GAILTrainer`: adversarial imitation learning of dialogue on top of TRL's `GRPOTrainer`.

GRPOTrainer already samples completions, scores them with reward functions, and optimises the PPO-clipped
objective. GAIL adds three things around that loop (the paper's Algorithm 1), each in one override:

1. ``_generate_single_turn``: a scheduled share of each rollout batch is the expert's response instead of a
   sample (human-demo mixing). Those completions are tokenised with the policy's tokenizer and go through
   the same old-log-prob computation as samples, so the clipped ratio stays valid.
2. ``discriminator_reward`` (a reward function): D's score of every completion, transformed
   (``reward_form``), plus ``sentiment_history_reward`` when its weight is above 0.
3. ``_generate_and_score_completions``: after scoring, the discriminator takes its log-loss step on expert vs
   generated responses to the same states.

Before the policy moves, ``train`` pre-trains the discriminator for ``discriminator_pretrain_steps`` on
policy samples, so the first rewards mean something.
"""

from __future__ import annotations

import json
import logging
import math
import os
import textwrap
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset, DatasetDict
from transformers import set_seed
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint
from trl import GRPOTrainer

from egail.config import GAILConfig
from egail.discriminator import Discriminator, DiscriminatorConfig, binary_accuracy, reward_from_logits
from egail.formatting import build_messages, has_chat_template, render_plain, truncate_history
from egail.models import load_causal_lm, load_tokenizer
from egail.sentiment import SentimentHistory

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("history", "prompt", "response")
DISCRIMINATOR_DIR = "discriminator"
DISCRIMINATOR_OPTIMIZER = "discriminator_optimizer.pt"
GAIL_STATE = "gail_state.json"


class NonFiniteTrainingError(RuntimeError):
    """Training stopped after ``max_nonfinite_steps`` consecutive steps with a NaN or infinite loss."""


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """A GAIL checkpoint is complete once its ``gail_state.json`` exists: it is written last, atomically."""
    return (Path(path) / GAIL_STATE).is_file()


def latest_complete_checkpoint(output_dir: str | os.PathLike) -> str | None:
    """The newest complete ``checkpoint-N`` in ``output_dir``; half-written ones (a kill while saving) are skipped."""
    folders = [p for p in Path(output_dir).glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()]
    complete = [p for p in folders if is_complete_checkpoint(p)]
    return str(max(complete, key=lambda p: int(p.name.split("-")[-1]))) if complete else None


def validate_trajectories(dataset: Dataset, name: str = "train_dataset") -> None:
    """Raise a ValueError naming the column or row when a dataset is not expert trajectories (a TypeError when it
    is not a ``datasets.Dataset`` at all)."""
    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"{name} must be a datasets.Dataset of expert trajectories, got {type(dataset).__name__}; build one "
            f"with datasets.Dataset.from_list(rows) or egail.data.load_trajectories(...)['train']."
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; expert trajectories need 'history' (list of str), "
            f"'prompt' (str) and 'response' (str). Found columns: {dataset.column_names}."
        )
    if len(dataset) == 0:
        raise ValueError(f"{name} is empty.")
    for row, (history, prompt, response) in enumerate(
        zip(dataset["history"], dataset["prompt"], dataset["response"], strict=True)
    ):
        if not isinstance(history, list) or not all(isinstance(u, str) for u in history):
            raise ValueError(f"{name} row {row}: 'history' must be a list of strings, got {history!r:.80}.")
        for column, value in (("prompt", prompt), ("response", response)):
            if not isinstance(value, str):
                raise ValueError(f"{name} row {row}: '{column}' must be a string, got {type(value).__name__}.")
            if not value.strip():
                raise ValueError(f"{name} row {row}: '{column}' is empty.")


def demo_ratio_at(step: int, start: float, end: float, warmup_steps: int, total_steps: int) -> float:
    """Share of expert demos at ``step``: ``start`` for the warm-up, then linear to ``end`` at ``total_steps``."""
    if step < warmup_steps or total_steps <= warmup_steps:
        return start
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return start + (end - start) * progress


def num_demos(batch_size: int, ratio: float) -> int:
    """How many of ``batch_size`` completions are demos: ``ratio * batch_size`` rounded half up."""
    return int(math.floor(ratio * batch_size + 0.5))


def completion_text(completion: str | list[dict[str, Any]]) -> str:
    """The text of a completion, conversational (a list of messages) or plain."""
    return completion if isinstance(completion, str) else completion[-1]["content"]


class GAILTrainer(GRPOTrainer):
    """GAIL for dialogue: the policy imitates expert responses, rewarded by a discriminator it tries to fool.

    Args:
        model: a causal LM, or its name: an embedded name (``"smollm2-135m-instruct"``), a folder or a Hub id.
        args: a [`GAILConfig`].
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
        if args is None:
            raise ValueError("GAILTrainer needs a GAILConfig (args=GAILConfig(output_dir=...)).")
        if not isinstance(args, GAILConfig):
            raise TypeError(f"args must be a GAILConfig, got {type(args).__name__}.")
        if train_dataset is None:
            raise ValueError("GAILTrainer needs train_dataset: expert trajectories (history, prompt, response).")
        if isinstance(train_dataset, DatasetDict):
            raise ValueError("train_dataset is a DatasetDict; pass one split, e.g. dataset['train'].")
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
        self._rollout_inputs: list[dict] | None = None
        self._demo_mask: list[bool] = []
        self._last_rollout: dict[str, list] | None = None
        self.discriminator_pretrained = args.discriminator_pretrain_steps == 0
        self._nonfinite_in_step = False  # set by a NaN/inf policy or discriminator loss since the last update
        self._consecutive_nonfinite_steps = 0

        reward_funcs = [self.discriminator_reward]
        if args.sentiment_history_weight > 0:
            reward_funcs.append(self.sentiment_history_reward)
            args.reward_weights = [1.0, args.sentiment_history_weight]
        else:
            args.reward_weights = [1.0]

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
        self.discriminator.to(self.accelerator.device)
        self._broadcast_discriminator()
        self.discriminator_optimizer = torch.optim.AdamW(
            [p for p in self.discriminator.parameters() if p.requires_grad],
            lr=args.discriminator_learning_rate,
            weight_decay=args.discriminator_weight_decay,
        )

    # ----------------------------------------------------------------------------------------------- data
    @staticmethod
    def prepare_dataset(dataset: Dataset, tokenizer: Any, args: GAILConfig, name: str) -> Dataset:
        """Validate trajectories and add what the rollout needs: the policy prompt, the state, demo token ids.

        ``prompt`` becomes chat messages (or the plain-text rendering for models without a chat template);
        the utterance itself moves to ``prompt_text``; ``history`` is truncated to ``history_max_turns`` and,
        oldest turns first, until the rendered state fits ``max_prompt_length`` tokens. A prompt that alone does
        not fit keeps its end (where a question usually is).
        """
        validate_trajectories(dataset, name)
        chat = has_chat_template(tokenizer)
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

        def render(history: list[str], prompt: str) -> str | list[dict[str, str]]:
            messages = build_messages(history, prompt, args.system_prompt)
            return messages if chat else render_plain(messages)

        def n_tokens(history: list[str], prompt: str) -> int:
            rendered = render(history, prompt)
            if chat:
                # return_dict=False: transformers 5 returns a BatchEncoding by default, whose len() is 2
                ids = tokenizer.apply_chat_template(
                    rendered, tokenize=True, add_generation_prompt=True, return_dict=False
                )
                return len(ids)
            return len(tokenizer(rendered)["input_ids"])

        def fit_prompt(prompt: str, limit: int) -> str:
            ids = tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"]
            keep = limit - n_tokens([], "")
            while keep > 0:
                cut = tokenizer.decode(ids[-keep:], skip_special_tokens=True).strip()
                excess = n_tokens([], cut) - limit
                if excess <= 0:
                    return cut
                keep -= excess  # decode and encode need not round-trip token for token
            raise ValueError(
                f"max_prompt_length={limit} leaves no room for a prompt: the prompt format alone takes "
                f"{n_tokens([], '')} tokens."
            )

        def to_state(row: dict) -> dict:
            history = truncate_history(row["history"], args.history_max_turns)
            prompt = row["prompt"]
            if args.max_prompt_length is not None:
                while history and n_tokens(history, prompt) > args.max_prompt_length:
                    history = history[2:] if len(history) > 1 else []
                if not history and n_tokens([], prompt) > args.max_prompt_length:
                    prompt = fit_prompt(prompt, args.max_prompt_length)
            response_ids = tokenizer(row["response"], add_special_tokens=False)["input_ids"] + eos
            return {
                "prompt": render(history, prompt),
                "prompt_text": prompt,
                "history": history,
                "response_ids": response_ids,
            }

        return dataset.map(to_state, desc=f"Preparing {name}")

    # ------------------------------------------------------------------------------------ demo mixing
    def current_demo_ratio(self) -> float:
        args = self.args
        total = self.state.max_steps if self.state.max_steps > 0 else args.max_steps
        return demo_ratio_at(
            self.state.global_step, args.demo_ratio_start, args.demo_ratio_end, args.demo_warmup_steps, total
        )

    def _select_demos(self, batch_size: int) -> list[bool]:
        """Which completions of this rank's batch are replaced by demos; a pure function of seed, step and rank."""
        count = num_demos(batch_size, self.current_demo_ratio())
        generator = torch.Generator().manual_seed(
            self.args.seed * 1_000_003 + self.state.global_step * 1_009 + self.accelerator.process_index
        )
        chosen = set(torch.randperm(batch_size, generator=generator)[:count].tolist())
        return [i in chosen for i in range(batch_size)]

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        rollout = self._rollout_inputs
        if rollout is None or len(rollout) != len(prompt_ids):
            self._demo_mask = [False] * len(prompt_ids)
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images
            )
        self._demo_mask = self._select_demos(len(prompt_ids))
        sampled = [i for i, is_demo in enumerate(self._demo_mask) if not is_demo]
        completion_ids: list[list[int]] = [[] for _ in prompt_ids]
        logprobs: list | None = None
        if sampled:  # every rank has the same count, so collective generation (ZeRO-3, FSDP) stays in step
            sampled_ids, sampled_logprobs = super()._generate_single_turn(
                [prompt_ids[i] for i in sampled], images, multimodal_fields, num_generations, has_tool_images
            )
            for i, ids in zip(sampled, sampled_ids, strict=True):
                completion_ids[i] = list(ids)
            if sampled_logprobs is not None:  # vLLM: demos have no sampling log-probs; NaN means "no correction"
                logprobs = [[] for _ in prompt_ids]
                for i, lp in zip(sampled, sampled_logprobs, strict=True):
                    logprobs[i] = lp
        limit = self.args.max_completion_length
        for i, is_demo in enumerate(self._demo_mask):
            if is_demo:
                completion_ids[i] = list(rollout[i]["response_ids"][:limit])
                if logprobs is not None:
                    logprobs[i] = [math.nan] * len(completion_ids[i])
        return completion_ids, logprobs

    # ---------------------------------------------------------------------------------------- rewards
    def discriminator_reward(self, completions: list, history: list, prompt_text: list, **kwargs) -> list[float]:
        """The GAIL reward: a transform of D(state, completion); demos get ``demo_reward`` when it is set."""
        responses = [completion_text(c) for c in completions]
        demo_mask = self._demo_mask if len(self._demo_mask) == len(responses) else [False] * len(responses)
        logits = self.discriminator.predict_logits(history, prompt_text, responses).float()
        rewards = reward_from_logits(logits, self.args.reward_form)
        if self.args.demo_reward is not None:
            rewards[torch.tensor(demo_mask, dtype=torch.bool, device=rewards.device)] = self.args.demo_reward
        self._last_rollout = {
            "history": list(history),
            "prompt": list(prompt_text),
            "generated": responses,
            "expert": list(kwargs["response"]),
            "demo": list(demo_mask),
        }
        return rewards.tolist()

    def sentiment_history_reward(self, completions: list, history: list, prompt_text: list, **kwargs) -> list[float]:
        """Tone fit of each completion to the mood of the conversation so far (see `egail.sentiment`)."""
        return self.sentiment(history, prompt_text, [completion_text(c) for c in completions])

    # ------------------------------------------------------------------------------- discriminator step
    def _generate_and_score_completions(self, inputs: list[dict]) -> dict:
        training = self.model.training
        self._rollout_inputs = inputs if training else None
        try:
            output = super()._generate_and_score_completions(inputs)
        finally:
            self._rollout_inputs = None
        if training:
            metrics = self.update_discriminator(self._last_rollout, self.args.discriminator_updates_per_generation)
            for key, value in metrics.items():
                self._metrics["train"][key].append(value)
            self._metrics["train"]["demo_ratio"].append(self.current_demo_ratio())
            self._metrics["train"]["demo_share"].append(sum(self._demo_mask) / max(1, len(self._demo_mask)))
        return output

    def _all_reduce_gradients(self) -> None:
        """Average discriminator gradients over ranks, so every rank's discriminator takes the same step."""
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
        """Start every rank from rank 0's discriminator weights."""
        if self.accelerator.num_processes == 1:
            return
        for tensor in self.discriminator.state_dict().values():
            torch.distributed.broadcast(tensor, src=0)

    def _mean_over_ranks(self, value: float) -> float:
        tensor = torch.tensor([value], dtype=torch.float32, device=self.accelerator.device)
        return self.accelerator.gather(tensor).nanmean().item()

    def update_discriminator(self, rollout: dict[str, list] | None, passes: int) -> dict[str, float]:
        """Log-loss steps on (expert, generated) response pairs to the same states; returns logged metrics.

        Demo completions are expert text, so they are left out of the generated side. Each pair is the
        state's expert response and one sampled completion, so both sides have equal weight (Eq. 6).
        """
        if rollout is None or passes == 0:
            return {}
        pairs = [i for i, is_demo in enumerate(rollout["demo"]) if not is_demo]
        half = max(1, self.args.discriminator_batch_size // 2)
        generator = torch.Generator().manual_seed(self.args.seed + self.state.global_step)
        sums = {"loss": 0.0, "acc_expert": 0.0, "acc_generated": 0.0, "d_expert": 0.0, "d_generated": 0.0}
        n_steps = 0
        self.discriminator.train()
        for _ in range(passes):
            order = [pairs[j] for j in torch.randperm(len(pairs), generator=generator).tolist()]
            for start in range(0, len(order), half):
                index = order[start : start + half]
                histories = [rollout["history"][i] for i in index] * 2
                prompts = [rollout["prompt"][i] for i in index] * 2
                responses = [rollout["expert"][i] for i in index] + [rollout["generated"][i] for i in index]
                logits = self.discriminator.logits(histories, prompts, responses).float()
                expert_logits, generated_logits = logits[: len(index)], logits[len(index) :]
                loss = Discriminator.loss(expert_logits, generated_logits)
                self.discriminator_optimizer.zero_grad(set_to_none=True)
                if torch.isfinite(loss):
                    loss.backward()
                    self._all_reduce_gradients()
                    self.discriminator_optimizer.step()
                else:
                    self._nonfinite_in_step = True
                    logger.warning("Non-finite discriminator loss at step %d; update skipped.", self.state.global_step)
                with torch.no_grad():
                    sums["loss"] += loss.item()
                    sums["acc_expert"] += binary_accuracy(expert_logits, expert=True)
                    sums["acc_generated"] += binary_accuracy(generated_logits, expert=False)
                    sums["d_expert"] += torch.sigmoid(expert_logits).mean().item()
                    sums["d_generated"] += torch.sigmoid(generated_logits).mean().item()
                n_steps += 1
        if n_steps == 0:
            return {}
        return {f"discriminator/{k}": self._mean_over_ranks(v / n_steps) for k, v in sums.items()}

    def pretrain_discriminator(self, steps: int) -> list[dict[str, float]]:
        """Discriminator-only updates on policy samples, before the policy trains (Table 1: 200 steps)."""
        from tqdm.auto import tqdm

        history: list[dict[str, float]] = []
        if steps <= 0:
            return history
        dataloader = self.get_train_dataloader()
        batches = iter(dataloader)
        progress = tqdm(range(steps), desc="Pre-training discriminator", disable=not self.is_local_process_zero())
        for _ in progress:
            try:
                batch = next(batches)
            except StopIteration:
                batches = iter(dataloader)
                batch = next(batches)
            with torch.no_grad():
                completions = self._generate([x["prompt"] for x in batch])[3]
            rollout = {
                "history": [x["history"] for x in batch],
                "prompt": [x["prompt_text"] for x in batch],
                "expert": [x["response"] for x in batch],
                "generated": [completion_text(c) for c in completions],
                "demo": [False] * len(batch),
            }
            metrics = self.update_discriminator(rollout, passes=1)
            history.append(metrics)
            progress.set_postfix(loss=f"{metrics.get('discriminator/loss', math.nan):.3f}")
        self._metrics["train"].clear()  # generation statistics of pre-training are not training-step metrics
        self.discriminator_pretrained = True
        if history:
            logger.info("Discriminator pre-training: first %s, last %s", history[0], history[-1])
        self.discriminator_pretrain_history = history
        return history

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs):
        """Pre-train the discriminator (unless resuming), then GRPO training with GAIL rewards.

        ``resume_from_checkpoint=True`` (or "last") resumes from the newest *complete* checkpoint in
        ``output_dir``; a half-written one, left by a kill during saving, is never loaded.
        """
        resume_from_checkpoint = self._resolve_checkpoint(resume_from_checkpoint)
        if not resume_from_checkpoint and not self.discriminator_pretrained:
            self.pretrain_discriminator(self.args.discriminator_pretrain_steps)
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _resolve_checkpoint(self, checkpoint: str | bool | None) -> str | None:
        if checkpoint in (None, False, "", "false", "False"):
            return None
        if checkpoint is True or str(checkpoint).lower() in ("true", "last", "latest"):
            latest = latest_complete_checkpoint(self.args.output_dir)
            if latest is None:
                raise ValueError(f"no complete checkpoint to resume from in {self.args.output_dir}")
            skipped = get_last_checkpoint(self.args.output_dir)
            if skipped and Path(skipped) != Path(latest):
                logger.warning("Skipping incomplete checkpoint %s (killed while saving); resuming from %s", skipped, latest)
            return latest
        if not Path(checkpoint).is_dir():
            raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
        if not is_complete_checkpoint(checkpoint):
            raise ValueError(
                f"checkpoint {checkpoint} is incomplete (no {GAIL_STATE}: the run stopped while saving it); resume "
                f"from {latest_complete_checkpoint(Path(checkpoint).parent) or 'an earlier checkpoint'} instead"
            )
        return str(checkpoint)

    # ------------------------------------------------------------------------------- numerical faults
    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if not torch.isfinite(loss).all():
            self._nonfinite_in_step = True
        return loss

    def create_optimizer(self, model=None):
        """The policy optimizer, whose step is skipped after a non-finite loss (see `_skip_update`)."""
        optimizer = super().create_optimizer(model)
        if not getattr(optimizer, "_egail_guarded", False):
            step = optimizer.step

            def guarded_step(*args, **kwargs):
                return None if self._skip_update() else step(*args, **kwargs)

            optimizer.step = guarded_step
            optimizer._egail_guarded = True
        return optimizer

    def _skip_update(self) -> bool:
        """True when any rank saw a non-finite loss since the last update; stops after too many in a row."""
        flag = torch.tensor([float(self._nonfinite_in_step)], device=self.accelerator.device)
        bad = bool(self.accelerator.gather(flag).max().item())
        self._nonfinite_in_step = False
        if not bad:
            self._consecutive_nonfinite_steps = 0
            return False
        self._consecutive_nonfinite_steps += 1
        step = self.state.global_step + 1
        logger.warning("Non-finite loss at step %d: policy update skipped (%d in a row).", step, self._consecutive_nonfinite_steps)
        if self._consecutive_nonfinite_steps >= self.args.max_nonfinite_steps:
            last = latest_complete_checkpoint(self.args.output_dir)
            raise NonFiniteTrainingError(
                f"training stopped at step {step}: {self._consecutive_nonfinite_steps} consecutive steps with a "
                f"non-finite loss. Last good checkpoint: {last or 'none saved'}. Lower the learning rate or check "
                f"the data, then resume from it."
            )
        return True

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
            checkpoint = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            self.discriminator.save_pretrained(checkpoint / DISCRIMINATOR_DIR)
            torch.save(self.discriminator_optimizer.state_dict(), checkpoint / DISCRIMINATOR_OPTIMIZER)
            # Written last and atomically: its presence marks the checkpoint complete.
            staging = checkpoint / (GAIL_STATE + ".tmp")
            staging.write_text(json.dumps(self.gail_state(), indent=2))
            staging.replace(checkpoint / GAIL_STATE)

    def _load_optimizer_and_scheduler(self, checkpoint):
        super()._load_optimizer_and_scheduler(checkpoint)
        if checkpoint is None:
            return
        from safetensors.torch import load_file

        checkpoint = Path(checkpoint)
        weights = checkpoint / DISCRIMINATOR_DIR / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{checkpoint} has no discriminator ({weights}); it was not written by GAILTrainer.")
        self.discriminator.load_state_dict(load_file(str(weights), device=str(self.accelerator.device)))
        optimizer_state = torch.load(
            checkpoint / DISCRIMINATOR_OPTIMIZER, map_location=self.accelerator.device, weights_only=True
        )
        self.discriminator_optimizer.load_state_dict(optimizer_state)
        self.discriminator_pretrained = json.loads((checkpoint / GAIL_STATE).read_text())["discriminator_pretrained"]

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
