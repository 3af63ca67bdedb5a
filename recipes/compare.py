#!/usr/bin/env python
"""The paper's comparison on one budget: base model, SFT (MLE), TextGAIL and EmpathyGAIL, evaluated alike.

    python recipes/compare.py --out results/cpu-smollm2 \
        --source ed:../shared/data/raw/empatheticdialogues/reconstructed/ed_valid.csv \
        --source dd:../shared/data/raw/dailydialog/original/train

1. builds the expert trajectories from the sources (split by conversation; the `test` split is the
   development split used for evaluation, never trained on) into ``--work-dir`` (not ``--out``: the corpora's
   licenses forbid redistributing them with results);
2. SFT of the base model for ``--sft-steps``; TextGAIL and EmpathyGAIL each start from that SFT model and
   train ``--gail-steps`` with the same batch, lengths, learning rate and seed, from their YAML configs;
3. evaluates the four models on the same development rows with the same generation settings; the
   EmpathyGAIL discriminator scores every model's responses, so the score is one judge for all;
4. writes results.json, table.md, the plots, examples.md, and run.md (exact commands, seeds, wall times).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import sys
import time
from pathlib import Path

from egail.cli import run_cli

RECIPES = Path(__file__).resolve().parent


def _recipe(name: str):
    spec = importlib.util.spec_from_file_location(f"egail_recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", action="append", required=True, help="kind:path, as in `python -m egail.data build`")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="base model (embedded name, folder or Hub id)")
    parser.add_argument("--out", required=True, help="folder for results (JSON, table, plots, examples, run.md)")
    parser.add_argument("--work-dir", default="outputs/compare", help="folder for the built data and the models")
    parser.add_argument("--max-train-samples", type=int, default=4000, help="seeded sample of the train split")
    parser.add_argument("--sft-steps", type=int, default=60)
    parser.add_argument("--gail-steps", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=5e-6, help="GAIL learning rate (both variants)")
    parser.add_argument("--discriminator-pretrain-steps", type=int, default=10)
    parser.add_argument("--discriminator-encoder", default="minilm-l6")
    parser.add_argument("--eval-samples", type=int, default=150, help="development rows evaluated")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="sampling seeds of the evaluation")
    parser.add_argument("--seed", type=int, default=0, help="training and data-split seed")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--reuse", action="store_true",
                        help="skip a stage whose command is unchanged since it last finished in --work-dir")
    return parser.parse_args(argv)


def gail_overrides(args: argparse.Namespace, model: str, output_dir: Path, data_dir: Path) -> list[str]:
    """What makes the paper-sized YAML configs fit 2 CPU cores; identical for TextGAIL and EmpathyGAIL."""
    return [
        "--model_name_or_path", model, "--dataset_name", str(data_dir), "--output_dir", str(output_dir),
        "--max_steps", str(args.gail_steps), "--max_train_samples", str(args.max_train_samples),
        "--learning_rate", str(args.learning_rate), "--warmup_steps", "0",
        "--num_generations", "4", "--generation_batch_size", "16", "--per_device_train_batch_size", "8",
        "--max_completion_length", str(args.max_new_tokens), "--history_max_turns", "2", "--beta", "0.0",
        "--discriminator_pretrain_steps", str(args.discriminator_pretrain_steps),
        "--discriminator_encoder", args.discriminator_encoder, "--demo_warmup_steps", str(max(1, args.gail_steps // 4)),
        "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--logging_steps", "2",
        "--save_strategy", "no", "--seed", str(args.seed),
    ]


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    from egail.data import build_dataset
    from egail.evaluation import EvaluationSettings, GenerationSettings, evaluate_models

    work, out = Path(args.work_dir), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    data_dir, timings, commands = work / "data", {}, []
    finished_file = work / "finished_stages.json"
    finished = json.loads(finished_file.read_text()) if finished_file.is_file() else {}

    def stage(name: str, command: list[str], run) -> None:
        commands.append((name, command))
        if args.reuse and finished.get(name, {}).get("command") == command:
            timings[name] = finished[name]["seconds"]
            print(f"[compare] {name}: reused ({timings[name]} s when it ran)", flush=True)
            return
        started = time.perf_counter()
        run()
        timings[name] = round(time.perf_counter() - started, 1)
        finished[name] = {"command": command, "seconds": timings[name]}
        finished_file.write_text(json.dumps(finished, indent=2))
        print(f"[compare] {name}: {timings[name]} s", flush=True)

    build_argv = [part for source in args.source for part in ("--source", source)]
    build_argv += ["--out", str(data_dir), "--seed", str(args.seed)]
    stage("data", ["python", "-m", "egail.data", "build", *build_argv],
          lambda: build_dataset(args.source, seed=args.seed).save(data_dir))

    sft_dir = work / "sft"
    sft_argv = [
        "--config", str(RECIPES / "configs" / "sft.yaml"), "--model_name_or_path", args.model,
        "--dataset_name", str(data_dir), "--output_dir", str(sft_dir), "--max_steps", str(args.sft_steps),
        "--max_train_samples", str(args.max_train_samples),
        "--per_device_train_batch_size", "8", "--learning_rate", "2e-5", "--warmup_steps", "0",
        "--history_max_turns", "2", "--max_length", "384", "--use_cpu", "true", "--bf16", "false",
        "--report_to", "none", "--save_strategy", "no", "--seed", str(args.seed),
    ]
    stage("sft", ["python", "recipes/sft.py", *sft_argv], lambda: _recipe("sft").main(sft_argv))

    runs = {}
    for variant in ("textgail", "empathygail"):
        run_argv = ["--config", str(RECIPES / "configs" / f"{variant}.yaml"),
                    *gail_overrides(args, str(sft_dir), work / variant, data_dir)]
        stage(variant, ["python", "recipes/train.py", *run_argv], lambda a=run_argv: _recipe("train").main(a))
        runs[variant] = work / variant

    models = {"base": args.model, "sft": str(sft_dir), "textgail": str(runs["textgail"]),
              "empathygail": str(runs["empathygail"])}
    settings = EvaluationSettings(
        split="test",
        max_samples=args.eval_samples,
        history_max_turns=2,
        discriminator=str(runs["empathygail"] / "discriminator"),
        generation=GenerationSettings(max_new_tokens=args.max_new_tokens),
        seeds=tuple(args.seeds),
        batch_size=args.eval_batch_size,
    )
    eval_argv = ["--models", *(f"{k}={v}" for k, v in models.items()), "--dataset", str(data_dir), "--split", "test",
                 "--max-samples", str(args.eval_samples), "--seeds", *map(str, args.seeds),
                 "--history-max-turns", "2", "--max-new-tokens", str(args.max_new_tokens),
                 "--batch-size", str(args.eval_batch_size),
                 "--discriminator", settings.discriminator, "--out", str(out)]
    report_holder = {}
    stage("evaluation", ["python", "recipes/evaluate_models.py", *eval_argv],
          lambda: report_holder.update(report=evaluate_models(models, str(data_dir), settings)))
    report_holder["report"].write(out)

    lines = ["# How these results were made", "", f"Total wall time: {sum(timings.values()):.0f} s on this machine.", ""]
    lines += ["| stage | wall time (s) |", "|---|---|", *(f"| {k} | {v} |" for k, v in timings.items()), ""]
    lines += ["Equivalent commands (compare.py runs them in one process):", "", "```bash"]
    lines += [shlex.join(command).replace(f"{RECIPES.parent}/", "") for _, command in commands] + ["```", ""]
    lines += [f"This comparison: `python recipes/compare.py {shlex.join(argv or sys.argv[1:])}`", ""]
    (out / "run.md").write_text("\n".join(lines))
    (out / "run.json").write_text(json.dumps({"timings_s": timings, "args": vars(args), "models": models}, indent=2))
    return out


if __name__ == "__main__":
    run_cli(main)
