"""Rollout generation throughput: completion tokens per second against batch size (1 to 32).

Generation goes through the trainer's own rollout path (`GAILTrainer._generate_single_turn`, TRL's
transformers backend, sampling at temperature 1) with demo mixing off, on prompts of the embedded dataset.
Every completion is exactly ``--max-completion-length`` tokens (``min_new_tokens``), so tokens/s compares
batch sizes on equal work.

    python benchmarks/bench_generation.py [--device cuda] [--quick]
"""

from __future__ import annotations

import tempfile

import torch

import common


def parse_args():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--policy", default="smollm2-135m", choices=sorted(common.POLICIES))
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    parser.add_argument("--max-completion-length", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.max_completion_length, args.repeats = "1,8,32", 16, 1
    return args


def main() -> None:
    args = parse_args()
    common.setup(args)
    from egail import GAILConfig, GAILTrainer

    tokenizer = common.load_policy_tokenizer(args.assets)
    policy = common.build_policy(args.policy, args.assets, tokenizer)
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    # The trainer's rollout batch is the largest size; generation itself takes any number of prompts.
    args.batch = args.minibatch = max(sizes)
    args.num_generations, args.fixed_length = 2, True
    with tempfile.TemporaryDirectory() as output_dir:
        config = GAILConfig(
            **common.common_fields(args, output_dir),
            discriminator_pretrain_steps=0,
            max_prompt_length=args.max_prompt_length,
            demo_ratio_start=0.0,
            demo_ratio_end=0.0,
            sentiment_history_weight=0.0,
        )
        trainer = GAILTrainer(
            policy,
            args=config,
            train_dataset=common.expert_dataset(),
            processing_class=tokenizer,
            discriminator=common.build_discriminator(args.assets, freeze_encoder=True),
        )
        model = trainer.accelerator.prepare_model(trainer.model, evaluation_mode=True)
        trainer.model_wrapped = model
        model.eval()
        rows_data = trainer.train_dataset
        prompts = [rows_data[i % len(rows_data)]["prompt"] for i in range(max(sizes))]
        prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
        rows = []
        for size in sizes:
            batch = prompt_ids[:size]
            trainer._generate_single_turn(batch, None, {}, 1)  # warm-up
            times = []
            for repeat in range(args.repeats):
                torch.manual_seed(args.seed + repeat)
                start = common.clock(args.device)
                completions, _ = trainer._generate_single_turn(batch, None, {}, 1)
                times.append(common.clock(args.device) - start)
            tokens = sum(len(c) for c in completions)
            seconds = common.median(times)
            rows.append(
                {
                    "batch": size,
                    "prompt tokens (mean)": sum(len(p) for p in batch) / size,
                    "completion tokens": tokens,
                    "seconds": seconds,
                    "tokens/s": tokens / seconds,
                    "ms/token step": 1000 * seconds / args.max_completion_length,
                }
            )
            print(rows[-1], flush=True)
    tables = {
        f"Rollout generation, {args.policy}, {args.max_completion_length} new tokens": common.markdown_table(rows)
    }
    common.write_results("generation", args, {"rows": rows}, tables)


if __name__ == "__main__":
    main()
