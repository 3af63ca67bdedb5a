"""A few real `GAILTrainer.train()` steps, full fine-tuning and LoRA: does training run on this device?

Each run pre-trains the discriminator for two updates, then trains the policy for ``--steps`` steps through
the ordinary Trainer loop (bf16 on a GPU that has it, gradient checkpointing on: the trainer's defaults),
and checks that the logged metrics are finite and that the weights that should move did (LoRA: only the
adapters). The JSON records per-step wall time and the logged metrics.

    python benchmarks/smoke_train.py --device cuda
"""

from __future__ import annotations

import math
import tempfile
import time

import torch
from transformers import TrainerCallback

import common

CHECKED = ["loss", "reward", "discriminator/loss", "discriminator/d_expert", "discriminator/d_generated"]


class StepTimes(TrainerCallback):
    def __init__(self, device: str):
        self.device, self.times, self._start = device, [], 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._start = common.clock(self.device)

    def on_step_end(self, args, state, control, **kwargs):
        self.times.append(common.clock(self.device) - self._start)


def parse_args():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--policy", default="smollm2-135m", choices=sorted(common.POLICIES))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--minibatch", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=32)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch, args.minibatch, args.num_generations, args.max_completion_length = 2, 8, 4, 4, 8
    return args


def run(args, tokenizer, mode: str) -> dict:
    from egail import GAILConfig, GAILTrainer

    policy = common.build_policy(args.policy, args.assets, tokenizer)
    args.fixed_length = False  # let the policy stop: the real rollout path
    timer = StepTimes(args.device)
    with tempfile.TemporaryDirectory() as output_dir:
        fields = common.common_fields(
            args, output_dir, max_steps=args.steps, logging_steps=1, learning_rate=1e-4, gradient_checkpointing=True
        )
        fields["bf16"] = args.device == "cuda" and torch.cuda.is_bf16_supported()
        config = GAILConfig(**fields, discriminator_pretrain_steps=2, max_prompt_length=args.max_prompt_length)
        trainer = GAILTrainer(
            policy,
            args=config,
            train_dataset=common.expert_dataset(),
            processing_class=tokenizer,
            discriminator=common.build_discriminator(args.assets, freeze_encoder=False),
            peft_config=common.lora_config(args.policy) if mode == "lora" else None,
            callbacks=[timer],
        )
        named = dict(trainer.model.named_parameters())
        trainable = {k for k, p in named.items() if p.requires_grad}
        before = {k: p.detach().float().clone() for k, p in named.items()}
        disc_before = {k: v.detach().float().clone() for k, v in trainer.discriminator.state_dict().items()}
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        after = dict(trainer.model.named_parameters())
        moved = {k for k, p in after.items() if not torch.equal(before[k], p.detach().float())}
        disc_moved = any(
            not torch.equal(disc_before[k], v.detach().float()) for k, v in trainer.discriminator.state_dict().items()
        )
        logs = [entry for entry in trainer.state.log_history if "loss" in entry]
        finite = all(math.isfinite(entry[m]) for entry in logs for m in CHECKED if m in entry)
        checks = {
            "logged every step": len(logs) == args.steps,
            "metrics finite": finite,
            "trainable weights moved": bool(moved) and moved <= trainable,
            "frozen weights unchanged": moved <= trainable,
            "discriminator moved": disc_moved,
        }
        result = {
            "mode": mode,
            "bf16": config.bf16,
            "gradient_checkpointing": config.gradient_checkpointing,
            "trainable (M)": sum(named[k].numel() for k in trainable) / 1e6,
            "train s (incl. discriminator pre-training)": seconds,
            "step s": timer.times,
            "checks": checks,
            "passed": all(checks.values()),
            "log_history": logs,
        }
        if args.device == "cuda":
            result["peak allocated GiB"] = torch.cuda.max_memory_allocated() / common.GIB
        del trainer
    return result


def main() -> None:
    args = parse_args()
    common.setup(args)
    tokenizer = common.load_policy_tokenizer(args.assets)
    runs = []
    for mode in ("full", "lora"):
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        runs.append(run(args, tokenizer, mode))
        print({k: v for k, v in runs[-1].items() if k != "log_history"}, flush=True)
    rows = [
        {
            "mode": r["mode"],
            "bf16": r["bf16"],
            "trainable (M)": r["trainable (M)"],
            "median step s": common.median(r["step s"]),
            "passed": r["passed"],
            "last reward": next((e["reward"] for e in reversed(r["log_history"]) if "reward" in e), None),
            "failed checks": ", ".join(k for k, ok in r["checks"].items() if not ok),
        }
        for r in runs
    ]
    tables = {f"{args.steps}-step GAIL training smoke, {args.policy}": common.markdown_table(rows)}
    common.write_results("smoke", args, {"runs": runs}, tables)
    if not all(r["passed"] for r in runs):
        raise SystemExit(
            "smoke training failed: " + "; ".join(row["failed checks"] for row in rows if not row["passed"])
        )


if __name__ == "__main__":
    main()
