"""Study-level scores with 95 % intervals over rows, from a folder written by ``EvaluationReport.write``.

    python -m egail.evaluation.study outputs/evaluation    # writes study.json and study.md there, prints the table

For every model in responses.jsonl: BLEU-2, distinct-2, mean response length (next to the references'), the
realism probe's AUC and, where the rows carry the references' NLLs, the per-token perplexity of the references;
each with a percentile-bootstrap interval over rows, and each model's paired difference from a baseline model.
table.md's "± std over seeds" says how much a figure moves when the model samples again; these intervals say
how much it would move on other rows, which is what a claim such as "GAIL beats SFT" on held-back rows needs.

A resample draws rows (states) with replacement; a drawn row brings its reference and its responses from every
sampling seed. BLEU-2, distinct-2 and length are computed per seed on the drawn rows and averaged over seeds, as
table.md does, so on all rows they equal its "all" column. The realism probe is fitted once, on every seed's
responses grouped by row, and its AUC recomputed on the drawn rows from the out-of-fold scores.

Every figure is recomputed from per-row sufficient statistics, so 1000 resamples take well under a second:
BLEU-2 from sacreBLEU's per-sentence n-gram counts (summed, exactly as corpus BLEU sums them); perplexity from
per-row NLL and token counts. distinct-2 needs care: recounting unique bigrams in a resample would count a row
drawn twice as contributing no new bigram the second time, pulling every resample down (by about a third for a
corpus of unique bigrams) and leaving the interval below the figure itself. Instead each bigram occurrence
carries 1 / (its count in that seed's responses), so a row's weights sum to its share of the distinct bigrams;
on all rows their total over the bigram count is distinct-2 exactly, and a resample reweights rows, not bigrams.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from egail.evaluation.bootstrap import Statistic, bootstrap_interval, paired_difference_interval
from egail.evaluation.realism import RealismResult, realism_probe
from egail.evaluation.report import METRICS, MetricInfo
from egail.evaluation.text_metrics import word_count
from egail.evaluation.trajectories import EvaluationInputError

STUDY_METRICS: dict[str, MetricInfo] = {
    "bleu2": METRICS["bleu2"],
    "distinct2": METRICS["distinct2"],
    "length": METRICS["length"],
    "realism_auc": MetricInfo(
        "Realism probe AUC",
        False,
        "cross-validated ROC AUC of a word + character n-gram TF-IDF logistic regression telling the model's "
        "responses from the references to the same states (folds grouped by state); 0.5 = indistinguishable.",
        3,
    ),
    "perplexity": METRICS["perplexity"],
}
#: The figures the references themselves have.
REFERENCE_METRICS = ("distinct2", "length")
_ARROWS = {True: " ↑", False: " ↓", None: ""}


@functools.cache
def _bleu2_scorer() -> Any:
    """sacreBLEU's BLEU-2 with the settings of the project's ``text_metrics.bleu(..., max_ngram_order=2)``; one
    instance, since building one sets up its tokenizer and a bootstrap scores thousands of resamples."""
    from sacrebleu.metrics import BLEU

    return BLEU(max_ngram_order=2, smooth_method="exp", tokenize="13a", lowercase=False)


def bleu2_statistics(predictions: list[str], references: list[str]) -> np.ndarray:
    """Per-pair sacreBLEU statistics (hypothesis and reference length, 1- and 2-gram matches and totals).

    Corpus BLEU is a function of their sums, so a resample's BLEU-2 is `bleu2_from_statistics` of its rows' sum.
    """
    return np.array(_bleu2_scorer()._extract_corpus_statistics(predictions, [references]), dtype=float)


def bleu2_from_statistics(summed: np.ndarray) -> float:
    """Corpus BLEU-2 (0-100) from summed `bleu2_statistics`."""
    return float(_bleu2_scorer()._compute_score_from_stats(summed.tolist()).score)


def distinct2_weights(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text: its word bigrams weighted 1 / (the bigram's count over ``texts``), and its bigram count.

    ``weights.sum() / counts.sum()`` is the corpus distinct-2 of ``texts`` (0 with no bigrams, like the
    project's distinct module); see the module docstring for why a bootstrap must resample these weights.
    """
    grams = [list(itertools.pairwise(words)) for words in (text.split() for text in texts)]
    occurrences = Counter(gram for row in grams for gram in row)
    weights = np.array([sum(1 / occurrences[gram] for gram in row) for row in grams], dtype=float)
    return weights, np.array([len(row) for row in grams], dtype=float)


def _distinct2(weights: np.ndarray, counts: np.ndarray) -> Statistic:
    """distinct-2 of the drawn rows, per seed column, averaged over seeds."""

    def statistic(rows: np.ndarray) -> float:
        unique, total = weights[rows].sum(axis=0), counts[rows].sum(axis=0)
        return float(np.mean(np.where(total > 0, unique / np.maximum(total, 1), 0.0)))

    return statistic


@dataclass
class _ModelRows:
    """One model's per-row numbers (rows x seeds), from which every figure is recomputed on a resample."""

    seeds: list[str]
    bleu: np.ndarray
    distinct_weights: np.ndarray
    bigrams: np.ndarray
    words: np.ndarray
    realism: RealismResult
    #: per row: the reference's summed NLL and its token count; None when responses.jsonl has no NLLs
    nll: np.ndarray | None

    def statistics(self) -> dict[str, Statistic]:
        seeds = len(self.seeds)
        figures: dict[str, Statistic] = {
            "bleu2": lambda rows: float(np.mean([bleu2_from_statistics(s) for s in self.bleu[rows].sum(axis=0)])),
            "distinct2": _distinct2(self.distinct_weights, self.bigrams),
            "length": lambda rows: float(self.words[rows].mean()),
            "realism_auc": lambda rows: self.realism.auc_on((rows[:, None] * seeds + np.arange(seeds)).ravel()),
        }
        if self.nll is not None:
            nll = self.nll
            figures["perplexity"] = lambda rows: math.exp(nll[rows, 0].sum() / nll[rows, 1].sum())
        return figures


def load_rows(results_dir: str | Path) -> list[dict[str, Any]]:
    """The rows of ``results_dir/responses.jsonl``; an `EvaluationInputError` saying what is wrong otherwise."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise EvaluationInputError(f"{folder} is not a folder; give the --out folder of recipes/evaluate.py.")
    path = folder / "responses.jsonl"
    if not path.is_file():
        raise EvaluationInputError(f"{folder} has no responses.jsonl; it is not a folder written by the evaluation.")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise EvaluationInputError(f"{path} line {number} is not JSON: {error}") from error
    if not rows:
        raise EvaluationInputError(f"{path} has no rows.")
    return rows


def _model_rows(rows: list[dict[str, Any]], model: str, folds: int, seed: int) -> _ModelRows:
    """``model``'s per-row statistics and its realism probe; every row must carry the same seeds' responses."""
    seeds = list(rows[0]["responses"][model])
    texts = []
    for number, row in enumerate(rows):
        answers = row.get("responses", {}).get(model)
        if answers is None or sorted(answers) != sorted(seeds):
            raise EvaluationInputError(
                f"responses.jsonl row {number}: model '{model}' has responses for seeds "
                f"{sorted(answers or {})}, the first row for {sorted(seeds)}."
            )
        texts.append([answers[s] for s in seeds])
    references = [row["reference"] for row in rows]
    by_seed = [[answers[k] for answers in texts] for k in range(len(seeds))]
    bleu = np.stack([bleu2_statistics(column, references) for column in by_seed], axis=1)
    weights, counts = zip(*(distinct2_weights(column) for column in by_seed), strict=True)

    nlls = [row.get("nll", {}).get(model) for row in rows]
    if any(n is None for n in nlls) and any(n is not None for n in nlls):
        raise EvaluationInputError(f"responses.jsonl: some rows have model '{model}'s NLL of the reference, some not.")
    realism = realism_probe(
        [reference for reference in references for _ in seeds],
        [text for answers in texts for text in answers],
        groups=[number for number in range(len(rows)) for _ in seeds],
        n_splits=folds,
        seed=seed,
    )
    return _ModelRows(
        seeds=seeds,
        bleu=bleu,
        distinct_weights=np.stack(weights, axis=1),
        bigrams=np.stack(counts, axis=1),
        words=np.array([[word_count(text) for text in answers] for answers in texts], dtype=float),
        realism=realism,
        nll=None if nlls[0] is None else np.array([[n["nll"], n["tokens"]] for n in nlls], dtype=float),
    )


def score_study(
    results_dir: str | Path,
    resamples: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    folds: int = 5,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Every model's figures with bootstrap intervals, and paired differences from ``baseline``, as JSON data.

    ``baseline`` defaults to the first model in responses.jsonl. ``seed`` draws the resamples and the probe's
    folds; every figure of every model uses the same resamples, so the intervals are comparable.
    """
    rows = load_rows(results_dir)
    models = list(rows[0].get("responses", {}))
    if not models:
        raise EvaluationInputError(f"{results_dir}/responses.jsonl has no model responses.")
    baseline = models[0] if baseline is None else baseline
    if baseline not in models:
        raise EvaluationInputError(f"baseline '{baseline}' is not a model here (models: {', '.join(models)}).")
    n = len(rows)

    def interval(statistic: Statistic) -> dict[str, float]:
        return bootstrap_interval(statistic, n, resamples, seed, alpha)._asdict()

    scored = {model: _model_rows(rows, model, folds, seed) for model in models}
    statistics = {model: data.statistics() for model, data in scored.items()}
    references = [row["reference"] for row in rows]
    ref_words = np.array([word_count(text) for text in references], dtype=float)
    ref_weights, ref_counts = distinct2_weights(references)
    reference = {
        "distinct2": interval(_distinct2(ref_weights[:, None], ref_counts[:, None])),
        "length": interval(lambda rows: float(ref_words[rows].mean())),
    }
    differences = {
        model: {
            metric: paired_difference_interval(
                statistic, statistics[baseline][metric], n, resamples, seed, alpha
            )._asdict()
            for metric, statistic in statistics[model].items()
            if metric in statistics[baseline]
        }
        for model in models
        if model != baseline
    }
    return {
        "source": str(results_dir),
        "rows": n,
        "bootstrap": {"method": "percentile", "unit": "row", "resamples": resamples, "alpha": alpha, "seed": seed},
        "realism_probe": {
            "features": "TF-IDF word 1-2-grams + char_wb 2-5-grams",
            "classifier": "LogisticRegression",
            "folds": folds,
            "grouped_by": "row",
            "seed": seed,
        },
        "metrics": {name: asdict(info) for name, info in STUDY_METRICS.items()},
        "models": {
            model: {
                "seeds": data.seeds,
                "figures": {metric: interval(statistic) for metric, statistic in statistics[model].items()},
                "realism_fold_aucs": list(data.realism.fold_aucs),
                "realism_pairs": data.realism.n,
            }
            for model, data in scored.items()
        },
        "reference": reference,
        "baseline": baseline,
        "differences": differences,
    }


def _cell(figure: dict[str, float] | None, digits: int) -> str:
    if figure is None:
        return "–"
    return f"{figure['value']:.{digits}f} [{figure['low']:.{digits}f}, {figure['high']:.{digits}f}]"


def study_markdown(study: dict[str, Any]) -> str:
    """study.md: models as rows, "value [low, high]" cells, then each model's paired difference from the baseline."""
    shown = [m for m in STUDY_METRICS if any(m in r["figures"] for r in study["models"].values())]
    infos = {m: STUDY_METRICS[m] for m in shown}
    header = "| model | " + " | ".join(f"{info.title}{_ARROWS[info.higher_is_better]}" for info in infos.values())
    rule = "|---" * (len(shown) + 1) + "|"
    level = round(100 * (1 - study["bootstrap"]["alpha"]))
    lines = [
        "# Study figures with bootstrap intervals over rows",
        "",
        (
            f"`{study['source']}`: {study['rows']} rows; cells are value [low, high], the {level} % percentile-"
            f"bootstrap interval over {study['bootstrap']['resamples']} resamples of rows (seed "
            f"{study['bootstrap']['seed']}). A drawn row brings its responses from every sampling seed; per-seed "
            "figures are averaged over seeds. ↑ higher is better, ↓ lower is better."
        ),
        "",
        header + " |",
        rule,
    ]
    for model, result in study["models"].items():
        cells = [_cell(result["figures"].get(m), info.digits) for m, info in infos.items()]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    cells = [_cell(study["reference"].get(m), info.digits) for m, info in infos.items()]
    lines += ["| *reference* | " + " | ".join(cells) + " |", ""]
    lines += [f"- **{info.title}**: {info.description}" for info in infos.values()]
    if study["differences"]:
        baseline = study["baseline"]
        lines += [
            "",
            f"## Paired difference from {baseline} (model − {baseline})",
            "",
            (
                "The same resampled rows for both models; an interval that excludes 0 is a difference beyond "
                "row-to-row chance (a sharper test than non-overlapping intervals above)."
            ),
            "",
            header + " |",
            rule,
        ]
        for model, result in study["differences"].items():
            lines.append(
                f"| {model} | " + " | ".join(_cell(result.get(m), info.digits) for m, info in infos.items()) + " |"
            )
    return "\n".join(lines) + "\n"


def write_study(study: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write study.json and study.md into ``out_dir``."""
    out = Path(out_dir)
    paths = {"json": out / "study.json", "table": out / "study.md"}
    paths["json"].write_text(json.dumps(study, indent=2, allow_nan=False) + "\n")
    paths["table"].write_text(study_markdown(study))
    return paths


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """The command line: score the folder, write study.json and study.md into it, print the table."""
    parser = argparse.ArgumentParser(
        prog="python -m egail.evaluation.study",
        description="Bootstrap intervals over rows for an evaluation folder: writes study.json and study.md there.",
    )
    parser.add_argument("results_dir", help="a folder written by recipes/evaluate.py (has responses.jsonl)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the resamples and the probe's folds")
    parser.add_argument("--alpha", type=float, default=0.05, help="1 - the interval's coverage (default 0.05)")
    parser.add_argument("--folds", type=int, default=5, help="folds of the realism probe (default 5)")
    parser.add_argument("--baseline", default=None, help="model the differences are taken from (default: the first)")
    args = parser.parse_args(argv)
    study = score_study(args.results_dir, args.resamples, args.seed, args.alpha, args.folds, args.baseline)
    write_study(study, args.results_dir)
    sys.stdout.write(study_markdown(study))
    return study


if __name__ == "__main__":
    from egail.cli import run_cli

    run_cli(main)
