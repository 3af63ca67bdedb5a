#!/usr/bin/env python
"""Evaluate dialogue models side by side: the paper's Table 2 (1 / 2 / 3+ turns), done with proper metrics.

    python recipes/evaluate_models.py --models smollm2-135m-instruct sft=outputs/sft gail=outputs/empathygail \
        --dataset embedded --split test --out outputs/evaluation

Every model answers the same rows with the same generation settings. Writes results.json (every figure),
table.md (Table 2's shape), perplexity.png and bleu.png (Figures 5 and 6), examples.md (Table 3) and
responses.jsonl (every generated response) to --out. A model is a name (an embedded name, a folder or a
Hub id), or NAME=PATH to give it a display name. One-liner rows are left out unless --include-oneliners.
"""

from __future__ import annotations

import argparse
import logging
import sys

from egail.cli import run_cli
from egail.evaluation import EvaluationSettings, GenerationSettings, evaluate_models


def parse_models(items: list[str]) -> dict[str, str]:
    """``["a", "sft=outputs/sft"]`` -> ``{"a": "a", "sft": "outputs/sft"}``; display names must be unique."""
    models: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        name, path = (name, path) if sep else (item, item)
        if not name or not path:
            raise ValueError(f"--models {item!r}: expected NAME or NAME=PATH")
        if name in models:
            raise ValueError(f"--models: the name {name!r} is given twice; use NAME=PATH to tell them apart")
        models[name] = path
    return models


def build_parser() -> argparse.ArgumentParser:
    defaults = EvaluationSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True, metavar="NAME[=PATH]", help="models to compare")
    parser.add_argument("--dataset", default="embedded", help="'embedded', a dataset folder, or a Hub id")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    parser.add_argument("--max-samples", type=int, default=None, help="evaluate a seeded random subset")
    parser.add_argument("--include-oneliners", action="store_true", help="also score one-liner rows")
    parser.add_argument("--out", default="outputs/evaluation", help="output folder")
    parser.add_argument("--discriminator", default=None, help="a discriminator folder that scores every model")
    emotion = parser.add_mutually_exclusive_group()
    emotion.add_argument("--emotion-classifier", default="default", help="a saved classifier folder")
    emotion.add_argument("--no-emotion", action="store_true", help="skip emotional attunement")
    parser.add_argument("--n-examples", type=int, default=6, help="rows shown in examples.md")
    parser.add_argument("--history-max-turns", type=int, default=None, help="earlier turns kept in a state")
    parser.add_argument("--system-prompt", default=None, help="system message of every state")
    parser.add_argument("--max-length", type=int, default=1024, help="most tokens per scored state")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    generation = parser.add_argument_group("generation (the same for every model)")
    generation.add_argument("--seeds", nargs="+", type=int, default=list(defaults.seeds))
    GenerationSettings.add_arguments(generation)
    generation.add_argument("--batch-size", type=int, default=defaults.batch_size)
    return parser


def main(argv: list[str] | None = None):
    args = build_parser().parse_args(argv)
    settings = EvaluationSettings(
        generation=GenerationSettings.from_arguments(args),
        seeds=tuple(args.seeds),
        batch_size=args.batch_size,
        split=args.split,
        max_samples=args.max_samples,
        include_oneliners=args.include_oneliners,
        max_length=args.max_length,
        history_max_turns=args.history_max_turns,
        system_prompt=args.system_prompt,
        emotion_classifier=None if args.no_emotion else args.emotion_classifier,
        discriminator=args.discriminator,
        n_examples=args.n_examples,
        device=args.device,
    )
    report = evaluate_models(parse_models(args.models), args.dataset, settings)
    paths = report.write(args.out)
    print(report.table_markdown())
    print("\n".join(f"{kind}: {path}" for kind, path in paths.items()), file=sys.stderr)
    return report


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="[evaluate] %(message)s")
    run_cli(main)
