"""GAIL's cost over plain GRPO: one rollout iteration of GAILTrainer against trl.GRPOTrainer.

Both trainers share one policy model (same weights, same AdamW, same prompts in the same order, same
seed before every iteration) and differ only in what GAIL adds: demo mixing, discriminator scoring, the
sentiment-history reward and the discriminator update. The baseline's reward is a fixed lexical function.
An *iteration* is one rollout of ``--batch`` completions followed by ``batch / minibatch`` policy steps (the
paper's buffer/minibatch scheme in miniature). Variants run alternately, in a rotating order, for
``--repeats`` rounds after a warm-up round; each round gives each GAIL variant a ratio to the GRPO
iteration of the same round, and the table reports medians. With ``--fixed-length`` (default) every sampled
completion is exactly ``--max-completion-length`` tokens, so the two sides generate the same amount.

    python benchmarks/bench_step.py                    # CPU, embedded SmolLM2-135M + MiniLM-L6
    python benchmarks/bench_step.py --device cuda
"""

from __future__ import annotations

import argparse
import tempfile

import torch

import common

#: GAIL variants: encoder frozen?, demo share, sentiment-history weight.
VARIANTS = {
    "gail": dict(frozen=False, demo=0.3, sentiment=0.5),
    "gail-frozen": dict(frozen=True, demo=0.3, sentiment=0.5),
    "gail-nodemo": dict(frozen=False, demo=0.0, sentiment=0.5),
    "gail-frozen-nodemo": dict(frozen=True, demo=0.0, sentiment=0.5),
    "gail-nosentiment": dict(frozen=False, demo=0.3, sentiment=0.0),
}
TARGETS = {False: 1.30, True: 1.10}  # trained encoder, frozen encoder (issue 7, CPU)
SECTIONS = [
    "generation",
    "old_logprobs",
    "reward:discriminator_reward",
    "reward:sentiment_history_reward",
    "reward:lexical_reward",
    "discriminator_update",
    "rollout_other",
    "policy_update",
]
GAIL_SECTIONS = ["reward:discriminator_reward", "reward:sentiment_history_reward", "discriminator_update"]


def parse_args():
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--policy", default="smollm2-135m", choices=sorted(common.POLICIES))
    parser.add_argument("--batch", type=int, default=8, help="Completions per rollout (generation batch).")
    parser.add_argument("--minibatch", type=int, default=4, help="Completions per policy step.")
    parser.add_argument("--num-generations", type=int, default=4)
    parser.add_argument("--max-completion-length", type=int, default=32)
    parser.add_argument("--fixed-length", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--variants",
        default="gail,gail-frozen,gail-nodemo,gail-frozen-nodemo",
        help="Comma-separated GAIL variants to run against GRPO: " + ",".join(VARIANTS),
    )
    args = parser.parse_args()
    if args.quick:
        args.batch, args.minibatch, args.num_generations, args.max_completion_length, args.repeats = 8, 4, 4, 16, 1
        args.variants = "gail,gail-frozen"
    return args


def build_trainers(args, tokenizer, output_dir: str) -> dict:
    from trl import GRPOConfig, GRPOTrainer

    from egail import GAILConfig, GAILTrainer

    policy = common.build_policy(args.policy, args.assets, tokenizer)
    # One AdamW for all trainers: they share the policy, and one optimizer state keeps memory flat.
    optimizer = torch.optim.AdamW(policy.parameters(), lr=1e-6, weight_decay=0.0, fused=args.device == "cuda")
    shared = dict(lr_scheduler_type="constant")
    expert = common.expert_dataset()
    trainers = {}
    names = [v for v in args.variants.split(",") if v and v != "grpo"]
    for name in names:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; choose from {list(VARIANTS)}")
        variant = VARIANTS[name]
        config = GAILConfig(
            **common.common_fields(args, output_dir, **shared),
            discriminator_pretrain_steps=0,
            max_prompt_length=args.max_prompt_length,
            discriminator_freeze_encoder=variant["frozen"],
            demo_ratio_start=variant["demo"],
            demo_ratio_end=variant["demo"],
            sentiment_history_weight=variant["sentiment"],
        )
        discriminator = common.build_discriminator(args.assets, freeze_encoder=variant["frozen"])
        trainers[name] = GAILTrainer(
            policy,
            args=config,
            train_dataset=expert,
            discriminator=discriminator,
            processing_class=tokenizer,
            optimizers=(optimizer, None),
        )
    # The baseline reads the same prepared prompts as GAIL (chat messages, history cut to max_prompt_length).
    prepared = next(iter(trainers.values())).train_dataset
    grpo_config = GRPOConfig(**common.common_fields(args, output_dir, **shared))
    trainers = {
        "grpo": GRPOTrainer(
            policy,
            reward_funcs=[common.lexical_reward],
            args=grpo_config,
            train_dataset=prepared,
            processing_class=tokenizer,
            optimizers=(optimizer, None),
        ),
        **trainers,
    }
    return trainers


def instrument(trainer, timer: common.SectionTimer) -> None:
    """Time the sections of an iteration by wrapping the trainer's methods on the instance."""
    trainer._generate = timer.wrap("generation", trainer._generate)
    trainer._prepare_inputs = timer.wrap("rollout", trainer._prepare_inputs)
    original = trainer._get_per_token_logps_and_entropies
    trainer._get_per_token_logps_and_entropies = timer.wrap(
        lambda: "old_logprobs" if not torch.is_grad_enabled() else "policy_logprobs", original
    )
    trainer.reward_funcs = [
        timer.wrap(f"reward:{name}", func) if callable(func) and not isinstance(func, torch.nn.Module) else func
        for name, func in zip(trainer.reward_func_names, trainer.reward_funcs, strict=True)
    ]
    if hasattr(trainer, "update_discriminator"):
        trainer.update_discriminator = timer.wrap("discriminator_update", trainer.update_discriminator)


def iteration(stepper: common.Stepper, timer: common.SectionTimer, device: str) -> dict[str, dict[str, float]]:
    """One rollout and the policy steps over it: seconds per section, as wall and as CPU time."""
    steps = stepper.trainer.args.steps_per_generation
    timer.take()
    with timer.section("total"):
        for _ in range(steps):
            stepper.step()
    measured = timer.take()
    for sections in measured.values():
        rollout = sections.pop("rollout", 0.0)
        sections.pop("policy_logprobs", None)  # inside policy_update
        inner = sum(v for k, v in sections.items() if k != "total")
        sections["rollout_other"] = rollout - inner
        sections["policy_update"] = sections["total"] - rollout
    return measured


def main() -> None:
    args = parse_args()
    common.setup(args)
    torch.manual_seed(args.seed)
    tokenizer = common.load_policy_tokenizer(args.assets)
    with tempfile.TemporaryDirectory() as output_dir:
        trainers = build_trainers(args, tokenizer, output_dir)
        timer = common.SectionTimer(args.device)
        steppers = {}
        for name, trainer in trainers.items():
            instrument(trainer, timer)
            steppers[name] = common.Stepper(trainer)
        names = list(trainers)
        records: dict[str, list[dict]] = {name: [] for name in names}
        for round_ in range(args.repeats + 1):  # round 0 warms up every trainer and is not recorded
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                torch.manual_seed(args.seed + round_)
                result = iteration(steppers[name], timer, args.device)
                if round_ > 0:
                    records[name].append(result)
                print(
                    f"round {round_} {name:>20}: {result['wall']['total']:.2f} s wall, "
                    f"{result['cpu']['total']:.2f} s CPU",
                    flush=True,
                )
        completion_tokens = {name: t._metrics["train"]["completions/mean_length"] for name, t in trainers.items()}
    payload = summarise(args, records, completion_tokens)
    common.write_results("step", args, payload, payload.pop("_tables"))


def summarise(args, records: dict[str, list[dict]], lengths: dict[str, list[float]]) -> dict:
    """Per variant: median ratios to GRPO (same round), the share of GAIL's own sections, the breakdown.

    The verdict uses CPU time on a CPU (robust to other processes on a shared machine; equal to wall time
    on an idle one with one thread) and wall time on a GPU.
    """
    primary = "cpu" if args.device == "cpu" else "wall"

    def totals(name: str, measure: str) -> list[float]:
        return [r[measure]["total"] for r in records[name]]

    rows, breakdown = [], []
    for name, runs in records.items():
        variant = VARIANTS.get(name)
        target = TARGETS[variant["frozen"]] if variant else None
        row = {
            "trainer": name,
            "encoder": "" if variant is None else ("frozen" if variant["frozen"] else "trained"),
            "demo share": 0.0 if variant is None else variant["demo"],
            "sentiment": "" if variant is None else ("on" if variant["sentiment"] else "off"),
        }
        for measure in ("wall", "cpu") if args.device == "cpu" else ("wall",):
            own, base = totals(name, measure), totals("grpo", measure)
            row[f"{measure} s"] = common.median(own)
            row[f"{measure} ratio"] = common.median([t / b for t, b in zip(own, base, strict=True)])
        row["min-wall ratio"] = min(totals(name, "wall")) / min(totals("grpo", "wall"))
        # Share of the iteration spent in GAIL's own sections, within each iteration: no cross-run noise.
        row["GAIL share"] = common.median(
            [sum(r[primary].get(s, 0.0) for s in GAIL_SECTIONS) / r[primary]["total"] for r in runs]
        )
        row["target"] = target
        row["meets target"] = None if target is None else bool(row[f"{primary} ratio"] <= target)
        rows.append(row)
        sections = {s: common.median([r[primary].get(s, 0.0) for r in runs]) for s in SECTIONS + ["total"]}
        breakdown.append({"trainer": name, **{k: v for k, v in sections.items() if v > 0 or k == "total"}})
    columns = ["trainer"] + [s for s in SECTIONS if any(s in row for row in breakdown)] + ["total"]
    tables = {
        "GAIL iteration vs plain GRPO (medians of alternating rounds)": common.markdown_table(rows),
        f"Breakdown, median {primary} seconds per iteration": common.markdown_table(breakdown, columns),
    }
    return {
        "verdict_measure": primary,
        "summary": rows,
        "breakdown": breakdown,
        "runs": records,
        "mean_completion_length": {k: sum(v) / len(v) for k, v in lengths.items() if v},
        "_tables": tables,
    }


if __name__ == "__main__":
    main()
