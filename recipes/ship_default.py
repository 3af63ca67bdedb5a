#!/usr/bin/env python
"""Ship a study's adapter as egail's default chatbot (``egail/adapters/egail-empathetic-135m``).

    python recipes/ship_default.py --study results/gail-vs-mle-cpu            # the study's best model
    python recipes/ship_default.py --study results/gail-vs-mle-cpu --model sft

The best model is chosen by the study's target metrics, among the trained models whose per-token reference
perplexity is within 10 % of the lowest: the one with the best mean rank over BLEU-2 (higher is better),
distinct-2 (higher) and realism AUC (lower: closer to indistinguishable from people); ties go to the lower
perplexity. Without the study's evaluation (``study.json``) a model must be named.

The folder gets the adapter (its base is the embedded ``smollm2-135m-instruct``), a model card from egail's
template with the study's figures in its ``model-index`` when there are any, and ``shipped.json`` (which
study, which model, why). Its license is CC BY-NC-SA 4.0: the adapter learned from EmpatheticDialogues
(CC BY-NC 4.0) and DailyDialog (CC BY-NC-SA 4.0), and a share-alike work combined with a non-commercial one
keeps both conditions.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from egail.cli import run_cli
from egail.models import ADAPTER_CONFIG, ADAPTER_WEIGHTS, DEFAULT_CHATBOT, SMOLLM2, default_chatbot_dir

REPO = Path(__file__).resolve().parent.parent
LICENSE = "cc-by-nc-sa-4.0"
#: The Hub ids of the corpora the study's models learned from (read from ``../shared/data/raw``, not downloaded),
#: with their licenses: shipped.json carries them, so the Space can show them offline.
DATASETS = {"facebook/empathetic_dialogues": "cc-by-nc-4.0", "li2017dailydialog/daily_dialog": "cc-by-nc-sa-4.0"}
#: How each of the study's trained models was trained: (the card's trainer name, its method). An ablation
#: (compare.py's ``--ablation empathygail-...``) was trained as the variant its name starts with.
TRAINERS = {"sft": ("SFT", "sft"), "sft-equal-compute": ("SFT", "sft"), "textgail": ("GAIL", "gail"),
            "empathygail": ("GAIL", "gail"), "spin": ("DPO", "spin")}  # fmt: skip
#: Metrics the choice ranks on, and whether higher is better.
RANKED = {"bleu2": True, "distinct2": True, "realism_auc": False}
NOTICE = """{name}: a LoRA adapter on SmolLM2-135M-Instruct, trained by the egail developers on EmpatheticDialogues
(CC BY-NC 4.0, Rashkin et al. 2019) and DailyDialog (CC BY-NC-SA 4.0, Li et al. 2017).

Its weights (adapter_model.safetensors, adapter_config.json) are licensed under Creative Commons
Attribution-NonCommercial-ShareAlike 4.0 International (CC BY-NC-SA 4.0): non-commercial use only, and
works derived from them must keep this license. The base model SmolLM2-135M-Instruct is Apache-2.0.
The egail source code is licensed separately (Apache-2.0, see the repository's top-level license).

Full license text: https://creativecommons.org/licenses/by-nc-sa/4.0/
"""
PERPLEXITY_MARGIN = 1.10
MAX_ADAPTER_MB = 10.5


def trainer_of(model: str) -> tuple[str, str]:
    """``model``'s (trainer name, method); an ablation's are its variant's."""
    if model in TRAINERS:
        return TRAINERS[model]
    variant = next((v for v, (_, method) in TRAINERS.items() if method == "gail" and model.startswith(f"{v}-")), None)
    if variant is None:
        raise ValueError(f"{model!r} is not one of a study's models ({', '.join(TRAINERS)}, or an ablation named "
                         f"textgail-... or empathygail-...)")  # fmt: skip
    return TRAINERS[variant]


def choose_best(study: dict) -> tuple[str, str]:
    """The trained model the target's metrics favour, and a sentence saying why."""
    figures = {m: f["figures"] for m, f in study.get("models", {}).items() if m != "base"}
    if not figures:
        raise ValueError("study.json has no trained model")
    perplexity = {m: f["perplexity"]["value"] for m, f in figures.items() if "perplexity" in f}
    if len(perplexity) != len(figures):
        raise ValueError("study.json lacks the reference perplexity of some models: rerun the evaluation")
    floor = min(perplexity.values())
    eligible = [m for m in figures if perplexity[m] <= PERPLEXITY_MARGIN * floor]
    ranks = dict.fromkeys(eligible, 0.0)
    for metric, higher in RANKED.items():
        order = sorted(eligible, key=lambda m: figures[m][metric]["value"], reverse=higher)
        for position, model in enumerate(order):
            ranks[model] += (position + 1) / len(RANKED)
    best = min(eligible, key=lambda m: (ranks[m], perplexity[m]))
    why = (
        f"best mean rank ({ranks[best]:.2f}) over BLEU-2, distinct-2 and realism AUC among {', '.join(eligible)} "
        f"(the trained models with reference perplexity within {PERPLEXITY_MARGIN - 1:.0%} of the lowest, {floor:.2f})"
    )
    return best, why


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, required=True, help="a study folder written by recipes/compare.py")
    parser.add_argument("--model", help="the study's model to ship: sft, empathygail, ... (default: its best)")
    parser.add_argument("--out", type=Path, default=default_chatbot_dir(), help="where the default chatbot lives")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    from egail.hub import build_model_card

    args = parse_args(argv)
    study_file = args.study / "study.json"
    study = json.loads(study_file.read_text(encoding="utf-8")) if study_file.is_file() else None
    if args.model is None and study is None:
        raise ValueError(f"{study_file} does not exist (the study's evaluation has not run): name a --model")
    model, why = (args.model, "named on the command line") if args.model else choose_best(study)
    trainer_name, method = trainer_of(model)
    source = args.study / "adapters" / model
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        if not (source / name).is_file():
            raise FileNotFoundError(f"{source / name} is missing: has the study's {model} stage finished?")
    config = json.loads((source / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    if config.get("base_model_name_or_path") != SMOLLM2:
        raise ValueError(f"{source} is an adapter on {config.get('base_model_name_or_path')!r}, not on {SMOLLM2}")
    size_mb = (source / ADAPTER_WEIGHTS).stat().st_size / 1e6
    if size_mb > MAX_ADAPTER_MB:
        raise ValueError(f"{source / ADAPTER_WEIGHTS} is {size_mb:.1f} MB; the package ships at most {MAX_ADAPTER_MB}")

    staging = args.out.with_name(args.out.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        shutil.copy2(source / name, staging / name)
    results_file = args.study / "results.json"
    results = json.loads(results_file.read_text(encoding="utf-8")) if results_file.is_file() else None
    if results is not None and model not in results.get("results", {}):
        results = None  # the card's model-index holds this model's figures or none
    if results is not None:  # name the study's held-back split, not the work dir it was read from
        split = results["dataset"].get("split", "test")
        results["dataset"] = {
            **results["dataset"],
            "id": f"EmpatheticDialogues + DailyDialog ({args.study.name}, held-back {split} split)",
        }
    table = args.study / "study.md"
    card = build_model_card(
        staging,
        base_model=SMOLLM2,
        datasets=list(DATASETS),
        evaluation_table=table.read_text(encoding="utf-8") if table.is_file() else None,
        evaluation_results=results,
        evaluated_as=model if results else None,
        license=LICENSE,
        repo_id=DEFAULT_CHATBOT,
        trainer_name=trainer_name,
        method=method,
        discriminator=False,  # the package ships the policy only
        tokenizer=False,  # the base model's tokenizer, unchanged
    )
    card.save(staging / "README.md")
    stage = (
        json.loads((source / "stage.json").read_text(encoding="utf-8")) if (source / "stage.json").is_file() else {}
    )
    command = [str(part).replace(f"{REPO}/", "") for part in stage.get("command", [])]  # no machine's paths
    shipped = {"name": DEFAULT_CHATBOT, "study": args.study.name, "model": model, "why": why, "license": LICENSE,
               "datasets": DATASETS, "stage": {"command": command, "cpu_s": stage.get("cpu_s"),
                                               "finished": stage.get("finished")}}  # fmt: skip
    (staging / "LICENSE.md").write_text(NOTICE.format(name=DEFAULT_CHATBOT), encoding="utf-8")
    (staging / "shipped.json").write_text(json.dumps(shipped, indent=2) + "\n", encoding="utf-8")
    if args.out.exists():
        shutil.rmtree(args.out)
    staging.rename(args.out)
    print(f"shipped {args.study.name}/{model} as {DEFAULT_CHATBOT} in {args.out} ({size_mb:.1f} MB): {why}")
    return args.out


if __name__ == "__main__":
    run_cli(main)
