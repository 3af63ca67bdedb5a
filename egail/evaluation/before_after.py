"""A small before/after check of one training run, printed at the end of `recipes/train.py`.

It evaluates the starting model and the trained one on the same held-back rows with the project's evaluation
(`evaluate_models`: the same fitting, generation and metrics as a full study) and prints the figures a user can
read at a glance: reference perplexity, BLEU-2, reply length against the references', and a few replies side by
side. It is a sanity check of the run, not a study: a few dozen rows and one sampling seed.
"""

from __future__ import annotations

from typing import Any

from egail.evaluation.report import EvaluationReport
from egail.evaluation.runner import EvaluationSettings, evaluate_models
from egail.evaluation.trajectories import ALL
from egail.generation import GenerationSettings

FIGURES = (
    ("perplexity", "reference perplexity (per token) ↓"),
    ("bleu2", "BLEU-2 ↑"),
    ("length", "reply length (words)"),
)


def before_after(
    start: str, trained: str, dataset: Any, rows: int, max_new_tokens: int, history_max_turns: int | None,
    split: str = "test", examples: int = 3,
) -> tuple[EvaluationReport, str]:  # fmt: skip
    """Evaluate ``start`` and ``trained`` on ``rows`` rows of ``dataset[split]``; the report and its summary."""
    settings = EvaluationSettings(
        split=split, max_samples=rows, seeds=(0,), history_max_turns=history_max_turns,
        emotion_classifier=None, n_examples=examples, generation=GenerationSettings(max_new_tokens=max_new_tokens),
    )  # fmt: skip
    report = evaluate_models({"before": start, "after": trained}, dataset, settings)
    return report, summary(report)


def summary(report: EvaluationReport) -> str:
    """The before/after table (plus the references' length) and the example replies, as plain text."""
    lines = [f"Before/after on {report.dataset.get('rows', '?')} held-back rows ({report.dataset.get('split')}):", ""]
    lines.append(f"{'':38} {'before':>9} {'after':>9}")
    for metric, title in FIGURES:
        lines.append(f"{title:38} {report.value('before', metric):9.2f} {report.value('after', metric):9.2f}")
    reference = report.reference.get("length", {}).get(ALL)
    if reference is not None:
        lines.append(f"{'reference length (words)':38} {reference.mean:9.1f}")
    for number, example in enumerate(report.examples, 1):
        lines += ["", f"[{number}] user: {example['prompt']}", f"    reference: {example['reference']}"]
        lines += [f"    {model}: {text}" for model, text in example["responses"].items()]
    return "\n".join(lines)
