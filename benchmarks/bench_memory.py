"""Peak memory of one GAIL training step, full fine-tuning and LoRA, for four policy sizes.

One step = one rollout of ``batch`` completions (``--max-completion-length`` tokens each, fixed), the
discriminator's scoring and update, and one policy step on the whole rollout (minibatch = batch), with the
trainer's defaults otherwise (AdamW, gradient checkpointing on, MiniLM-L6 discriminator with its encoder
trained). Every (policy, mode) runs in its own process, so one configuration's peak never includes another's.

- CPU: peak resident set size (VmHWM) of the step, and the RSS before it (Python, torch, both models),
  with glibc told to hand freed memory back at once (without that, fragmentation adds up to 1.3 GiB).
- CUDA: ``torch.cuda.max_memory_allocated`` and ``max_memory_reserved`` of the step (weights included),
  for batches 8, 16, 32, ... until one does not fit a 12 GB card; *fits 12 GB* means reserved memory
  at most 11.5 GiB (0.5 GiB left for the CUDA context).

Policies other than SmolLM2-135M are random-weight models of their published sizes; memory does not
depend on the weights.

    python benchmarks/bench_memory.py [--device cuda] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile

import torch

import common

BUDGET_GIB = 11.5  # a 12 GB card less the CUDA context


def parse_args():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--policies", default=",".join(common.POLICIES))
    parser.add_argument("--modes", default="full,lora")
    parser.add_argument(
        "--batch-sizes",
        default=None,
        help="Batches to try (default: 8 on CPU; 8,16,...,256 on CUDA, stopping past 12 GB).",
    )
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="Configurations measured at once (CUDA peaks are per process, so they stay exact).",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.policies, args.max_completion_length = "smollm2-135m,gpt2", 16
        args.batch_sizes = args.batch_sizes or ("4" if args.device == "cpu" else "8,32")
    if args.batch_sizes is None:
        args.batch_sizes = "8" if args.device == "cpu" else "8,16,32,64,128,256"
    return args


def measure(args, policy_name: str, mode: str, batch: int, tokenizer) -> dict:
    """One training step of a fresh trainer; its peak memory."""
    from egail import GAILConfig, GAILTrainer

    policy = common.build_policy(policy_name, args.assets, tokenizer, pretrained=False)
    parameters = sum(p.numel() for p in policy.parameters())
    args.batch = args.minibatch = batch
    args.num_generations, args.fixed_length = 2, True
    with tempfile.TemporaryDirectory() as output_dir:
        config = GAILConfig(
            **common.common_fields(args, output_dir, gradient_checkpointing=args.gradient_checkpointing),
            discriminator_pretrain_steps=0,
            max_prompt_length=args.max_prompt_length,
            demo_ratio_start=0.0,
            demo_ratio_end=0.0,
        )
        trainer = GAILTrainer(
            policy,
            args=config,
            train_dataset=common.expert_dataset(),
            processing_class=tokenizer,
            discriminator=common.build_discriminator(args.assets, freeze_encoder=False, pretrained=False),
            peft_config=common.lora_config(policy_name) if mode == "lora" else None,
        )
        trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
        stepper = common.Stepper(trainer)
        row = {
            "policy": policy_name,
            "mode": mode,
            "batch": batch,
            "params (M)": parameters / 1e6,
            "trainable (M)": trainable / 1e6,
        }
        if args.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            row["before GiB"] = torch.cuda.memory_allocated() / common.GIB
        else:
            gc.collect()
            common.reset_peak_rss()
            row["before GiB"] = common.rss_bytes() / common.GIB
        try:
            start = common.clock(args.device)
            stepper.step()
            row["step s"] = common.clock(args.device) - start
        except torch.OutOfMemoryError:
            row["oom"] = True
        if args.device == "cuda":
            row["peak allocated GiB"] = torch.cuda.max_memory_allocated() / common.GIB
            row["peak reserved GiB"] = torch.cuda.max_memory_reserved() / common.GIB
            row["fits 12 GB"] = not row.get("oom") and row["peak reserved GiB"] <= BUDGET_GIB
        else:
            row["peak RSS GiB"] = common.peak_rss_bytes() / common.GIB
        row["completion tokens"] = batch * args.max_completion_length
        del stepper, trainer
    del policy
    gc.collect()
    if args.device == "cuda":
        torch.cuda.empty_cache()
    return row


def child(args) -> None:
    policy_name, mode = args.child.split(":")
    tokenizer = common.load_policy_tokenizer(args.assets)
    if args.device == "cuda":
        # Children share the GPU: cap each well above the 12 GB budget, so a neighbour never causes an OOM.
        torch.cuda.set_per_process_memory_fraction(
            min(1.0, 2.2 * 12 * 1e9 / torch.cuda.get_device_properties(0).total_memory)
        )
    for batch in [int(b) for b in args.batch_sizes.split(",")]:
        row = measure(args, policy_name, mode, batch, tokenizer)
        print("ROW " + json.dumps(row), flush=True)
        if args.device == "cuda" and not row["fits 12 GB"]:
            break


def parent(args) -> None:
    from concurrent.futures import ThreadPoolExecutor

    configs = [(p, m) for p in args.policies.split(",") for m in args.modes.split(",")]
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(lambda config: run_child(args, *config), configs))
    rows = [row for found in results for row in found]
    tables = {"Peak memory of one GAIL step": common.markdown_table(rows, columns_for(rows, args.device))}
    if args.device == "cuda":
        tables["Largest batch within 12 GB"] = common.markdown_table(largest_fitting(rows))
    common.write_results("memory", args, {"weights": "random", "rows": rows}, tables)


def run_child(args, policy_name: str, mode: str) -> list[dict]:
    command = [
        sys.executable,
        __file__,
        "--child",
        f"{policy_name}:{mode}",
        "--device",
        args.device,
        "--batch-sizes",
        args.batch_sizes,
        "--max-completion-length",
        str(args.max_completion_length),
        "--seed",
        str(args.seed),
        "--max-prompt-length",
        str(args.max_prompt_length),
        *(["--threads", str(args.threads)] if args.threads else []),
        "--gradient-checkpointing" if args.gradient_checkpointing else "--no-gradient-checkpointing",
    ]
    if args.assets:
        command += ["--assets", args.assets]
    # glibc keeps freed heap memory, and with it RSS, at its high-water mark; these make it return memory at
    # once, so the peak RSS is the step's live memory rather than the allocator's fragmentation.
    env = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0", **os.environ}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    found = [json.loads(line[4:]) for line in result.stdout.splitlines() if line.startswith("ROW ")]
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        found.append({"policy": policy_name, "mode": mode, "error": (result.stderr.strip().splitlines() or ["?"])[-1]})
    for row in found:
        print(row, flush=True)
    return found


def columns_for(rows: list[dict], device: str) -> list[str]:
    peak = ["peak allocated GiB", "peak reserved GiB", "fits 12 GB"] if device == "cuda" else ["peak RSS GiB"]
    columns = ["policy", "mode", "batch", "params (M)", "trainable (M)", "before GiB", *peak, "step s"]
    return columns + (["error"] if any("error" in r for r in rows) else [])


def largest_fitting(rows: list[dict]) -> list[dict]:
    """Per (policy, mode): the largest measured batch that fits, and a linear extrapolation from the last two."""
    out = []
    for key in dict.fromkeys((r["policy"], r["mode"]) for r in rows):
        measured = [
            r for r in rows if (r["policy"], r["mode"]) == key and "peak reserved GiB" in r and not r.get("oom")
        ]
        fits = [r for r in measured if r["fits 12 GB"]]
        row = {
            "policy": key[0],
            "mode": key[1],
            "largest batch measured to fit": max((r["batch"] for r in fits), default=0),
        }
        if len(measured) >= 2:
            a, b = measured[-2], measured[-1]
            slope = (b["peak allocated GiB"] - a["peak allocated GiB"]) / (b["batch"] - a["batch"])
            row["GiB per completion"] = slope
            if slope > 0:
                row["batch at 11.5 GiB allocated (extrapolated)"] = int(
                    a["batch"] + (BUDGET_GIB - a["peak allocated GiB"]) / slope
                )
        out.append(row)
    return out


def main() -> None:
    args = parse_args()
    common.setup(args)
    if args.child:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
