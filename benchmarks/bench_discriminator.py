"""Discriminator throughput: scoring (pairs per second) and one update step, against batch size.

Pairs are (history + prompt, response) from the embedded dataset, so token counts are those of real
dialogue. *Scoring* is `Discriminator.score` (eval mode, no gradients): what `discriminator_reward` pays per
rollout. An *update* is one AdamW step of the GAIL log-loss on a batch made of half expert and half other
responses to the same states, as in `GAILTrainer.update_discriminator`, with the encoder trained or frozen.

    python benchmarks/bench_discriminator.py [--device cuda] [--quick]
"""

from __future__ import annotations

import torch

import common


def parse_args():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="8,16,32,64,128")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args()
    if args.quick:
        args.batch_sizes, args.repeats = "8,32", 2
    return args


def pairs(n: int) -> tuple[list, list, list, list]:
    """n states with their expert response and another row's response (a stand-in for a generated one)."""
    rows = common.expert_rows()
    picked = [rows[i % len(rows)] for i in range(n)]
    others = [rows[(i * 7 + 3) % len(rows)]["response"] for i in range(n)]
    return [r["history"] for r in picked], [r["prompt"] for r in picked], [r["response"] for r in picked], others


def time_repeats(function, repeats: int, device: str) -> float:
    function()  # warm-up
    times = []
    for _ in range(repeats):
        start = common.clock(device)
        function()
        times.append(common.clock(device) - start)
    return common.median(times)


def measure(args, frozen: bool, sizes: list[int]) -> list[dict]:
    """Scoring and update throughput of one discriminator (encoder trained or frozen) at each batch size."""
    from egail.discriminator import log_loss_step

    discriminator = common.build_discriminator(args.assets, freeze_encoder=frozen, max_length=args.max_length)
    discriminator.to(args.device)
    optimizer = torch.optim.AdamW([p for p in discriminator.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=args.device == "cuda")
    rows = []
    for size in sizes:
        histories, prompts, experts, others = pairs(size)
        half = size // 2
        tokens = int(discriminator.tokenize(histories, prompts, experts)["attention_mask"].sum())

        def score(histories=histories, prompts=prompts, experts=experts, size=size):
            with autocast:
                discriminator.score(histories, prompts, experts, batch_size=size)

        def update(histories=histories[:half], prompts=prompts[:half], experts=experts[:half], others=others[:half]):
            with autocast:  # the trainer's own step (GAILTrainer.update_discriminator calls log_loss_step)
                log_loss_step(discriminator, optimizer, histories, prompts, experts, others).loss.item()

        score_s = time_repeats(score, args.repeats, args.device)
        update_s = time_repeats(update, args.repeats, args.device)
        rows.append({
            "encoder": "frozen" if frozen else "trained",
            "batch": size,
            "tokens/pair": tokens / size,
            "score s": score_s,
            "score pairs/s": size / score_s,
            "update s": update_s,
            "update pairs/s": size / update_s,
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    args = parse_args()
    common.setup(args)
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    rows = [row for frozen in (False, True) for row in measure(args, frozen, sizes)]
    tables = {"Discriminator scoring and update against batch size": common.markdown_table(rows)}
    common.write_results("discriminator", args, {"rows": rows}, tables)


if __name__ == "__main__":
    main()
