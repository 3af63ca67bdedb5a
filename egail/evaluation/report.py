"""The evaluation's results and their files: results.json, table.md, perplexity.png, bleu.png, examples.md.

``EvaluationReport`` holds every figure as plain data, so it round-trips through results.json
(``EvaluationReport.from_json``, or ``load`` for a whole folder with its per-row responses) and the table,
plots and examples can be redrawn without re-evaluating. ``combine`` joins the reports of models evaluated
one at a time on the same rows, so a study can evaluate each model once, as soon as it is trained.
``without_corpus_text`` is a report that quotes no corpus (its rows' states and references become fingerprints),
which a study can commit; ``egail.evaluation.runner.restore_corpus_text`` reads the text back from the dataset.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from egail.evaluation.trajectories import ALL, BUCKET_LABELS, BUCKETS, EvaluationInputError

COLUMNS = (*BUCKETS, ALL)
TABLE_2_METRICS = ("perplexity", "perplexity_word", "bleu")
#: A row's fields that quote the corpus (the state and the reference response).
CORPUS_FIELDS = ("history", "prompt", "reference")
_ARROWS = {True: " ↑", False: " ↓", None: ""}


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is shown: its title, which direction is better (None: neither), and its format."""

    title: str
    higher_is_better: bool | None
    description: str
    digits: int = 2


METRICS: dict[str, MetricInfo] = {
    "perplexity": MetricInfo(
        "Perplexity (per token)", False, "exp(total NLL / total tokens) of the reference responses."
    ),
    "perplexity_word": MetricInfo(
        "Perplexity (per word)", False, "exp(total NLL / total reference words): comparable across tokenizers."
    ),
    "bleu": MetricInfo(
        "BLEU",
        True,
        "sacreBLEU corpus BLEU (n <= 4, 13a, exp smoothing), 0-100. Near 0 it mostly reflects the smoothing of "
        "absent 4-gram matches; BLEU-2 reads better on short responses.",
    ),
    "bleu2": MetricInfo("BLEU-2", True, "sacreBLEU corpus BLEU with max_ngram_order=2 (TextGAIL's BLEU-2)."),
    "distinct1": MetricInfo("distinct-1", True, "unique / total word unigrams over all responses.", 3),
    "distinct2": MetricInfo("distinct-2", True, "unique / total word bigrams over all responses.", 3),
    "length": MetricInfo("Response length (words)", None, "mean words per response; compare with the reference.", 1),
    "emotion_accuracy": MetricInfo(
        "Emotional attunement (emotion accuracy)",
        True,
        "share of responses from which the 32-way ED classifier recovers the conversation's emotion; "
        "the reference row is the ceiling.",
        3,
    ),
    "sentiment_agreement": MetricInfo(
        "Sentiment agreement (VADER)", True, "share of responses in the reference's VADER class (pos/neu/neg).", 3
    ),
    "discriminator_score": MetricInfo(
        "Discriminator score D", True, "mean D(state, response) of a GAIL discriminator on the responses.", 3
    ),
}


@dataclass
class Stat:
    """One figure: the mean over seeds, their std (None when deterministic), per-seed values, rows counted."""

    mean: float
    std: float | None
    values: list[float]
    n: int

    @classmethod
    def over_seeds(cls, values: list[float], n: int) -> Stat:
        finite = [v for v in values if not math.isnan(v)]
        if not finite:
            return cls(float("nan"), None, values, n)
        mean = sum(finite) / len(finite)
        # Sample std (ddof=1) over seeds, the spread a reader expects behind "mean ± std".
        std = math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1)) if len(finite) > 1 else 0.0
        return cls(mean, std, values, n)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Stat:
        """Inverse of ``asdict`` after JSON, where a missing figure (NaN) was written as null."""
        nan = float("nan")
        values = [nan if v is None else v for v in data["values"]]
        return cls(nan if data["mean"] is None else data["mean"], data["std"], values, data["n"])

    @classmethod
    def single(cls, value: float, n: int) -> Stat:
        return cls(value, None, [value], n)

    def format(self, digits: int) -> str:
        if math.isnan(self.mean):
            return "–"
        text = f"{self.mean:.{digits}f}"
        return text if self.std is None else f"{text} ± {self.std:.{digits}f}"


@dataclass
class EvaluationReport:
    """Everything one evaluation measured, for every model, per bucket ("1", "2", "3+", "all")."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    models: dict[str, dict[str, Any]]
    #: results[model][metric][bucket]
    results: dict[str, dict[str, dict[str, Stat]]]
    #: the same figures for the reference responses where they mean something (length, distinct, ceiling)
    reference: dict[str, dict[str, Stat]]
    examples: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    # ---- data ---------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "settings": self.settings,
            "metrics": {name: asdict(info) for name, info in METRICS.items() if self._has(name)},
            "models": self.models,
            "results": {
                m: {k: {b: asdict(s) for b, s in v.items()} for k, v in r.items()} for m, r in self.results.items()
            },
            "reference": {k: {b: asdict(s) for b, s in v.items()} for k, v in self.reference.items()},
            "examples": self.examples,
            **self.extra,
        }

    def without_corpus_text(self) -> dict[str, Any]:
        """The report as JSON data that quotes no corpus, for a study to commit where the corpora's licenses forbid
        redistributing them: every figure, and per row the models' responses and the references' NLLs, with the
        row's state and reference replaced by their `row_fingerprint`; no examples (they are rows again)."""
        data = _finite(self.to_dict())
        data["examples"] = []
        data["rows"] = [
            {**{k: v for k, v in row.items() if k not in CORPUS_FIELDS}, "fingerprint": row_fingerprint(row)}
            for row in _finite(self.rows)
        ]
        return data

    @classmethod
    def from_json(cls, path: str | Path) -> EvaluationReport:
        """Reload a results.json written by `write` (per-row responses live in responses.jsonl)."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvaluationReport:
        """A report from `to_dict`'s data (or `without_corpus_text`'s, whose rows are kept as they are)."""
        known = {"dataset", "settings", "metrics", "models", "results", "reference", "examples"}
        return cls(
            dataset=data["dataset"],
            settings=data["settings"],
            models=data["models"],
            results={
                m: {k: {b: Stat.from_dict(s) for b, s in v.items()} for k, v in r.items()}
                for m, r in data["results"].items()
            },
            reference={k: {b: Stat.from_dict(s) for b, s in v.items()} for k, v in data["reference"].items()},
            examples=data["examples"],
            rows=data.get("rows", []),
            extra={k: v for k, v in data.items() if k not in {*known, "rows"}},
        )

    @classmethod
    def load(cls, folder: str | Path) -> EvaluationReport:
        """Reload a folder written by `write`: results.json and its per-row responses (responses.jsonl)."""
        folder = Path(folder)
        report = cls.from_json(folder / "results.json")
        with (folder / "responses.jsonl").open() as handle:
            report.rows = [json.loads(line) for line in handle if line.strip()]
        return report

    @classmethod
    def combine(cls, reports: Sequence[EvaluationReport]) -> EvaluationReport:
        """One report of the models of ``reports``, each evaluated on the same rows with the same settings.

        Raises `EvaluationInputError` naming what differs (dataset, settings, rows, or a model in two reports):
        figures measured on other rows or settings are not comparable, so they are never put in one table.
        """
        if not reports:
            raise EvaluationInputError("no evaluation reports to combine.")
        first = reports[0]
        keys = [[(r["row"], r["reference"]) for r in report.rows] for report in reports]
        for report, rows in zip(reports[1:], keys[1:], strict=True):
            label = ", ".join(report.results)
            for what, mine, theirs in (("dataset", report.dataset, first.dataset),
                                       ("settings", report.settings, first.settings), ("rows", rows, keys[0])):  # fmt: skip
                if mine != theirs:
                    raise EvaluationInputError(
                        f"cannot combine the evaluation of {label} with that of {', '.join(first.results)}: "
                        f"their {what} differ."
                    )
        names = [name for report in reports for name in report.results]
        if len(set(names)) < len(names):
            raise EvaluationInputError(f"a model is in more than one of the reports to combine: {names}.")
        rows = [{**row, "responses": {}, "nll": {}} for row in first.rows]
        examples = [{**example, "responses": {}} for example in first.examples]
        for report in reports:
            for row, theirs in zip(rows, report.rows, strict=True):
                row["responses"].update(theirs["responses"])
                row["nll"].update(theirs["nll"])
            for example, theirs in zip(examples, report.examples, strict=True):
                example["responses"].update(theirs["responses"])
        extra = {**first.extra, "total_s": sum(report.extra.get("total_s", 0.0) for report in reports)}
        return cls(
            dataset=first.dataset,
            settings=first.settings,
            models={name: info for report in reports for name, info in report.models.items()},
            results={name: figures for report in reports for name, figures in report.results.items()},
            reference=first.reference,
            examples=examples,
            rows=rows,
            extra=extra,
        )

    def _has(self, metric: str) -> bool:
        return any(metric in r for r in self.results.values())

    def value(self, model: str, metric: str, bucket: str = ALL) -> float:
        """The mean of one figure (NaN if not measured)."""
        stat = self.results.get(model, {}).get(metric, {}).get(bucket)
        return stat.mean if stat else float("nan")

    # ---- files --------------------------------------------------------------------------------------

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write results.json, table.md, examples.md, responses.jsonl, perplexity.png and bleu.png."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "json": out / "results.json",
            "table": out / "table.md",
            "examples": out / "examples.md",
            "responses": out / "responses.jsonl",
            "perplexity_plot": out / "perplexity.png",
            "bleu_plot": out / "bleu.png",
        }
        paths["json"].write_text(json.dumps(_finite(self.to_dict()), indent=2, allow_nan=False) + "\n")
        paths["table"].write_text(self.table_markdown())
        paths["examples"].write_text(self.examples_markdown())
        with paths["responses"].open("w") as handle:
            for row in self.rows:
                handle.write(json.dumps(_finite(row), allow_nan=False) + "\n")
        self.plot(("perplexity", "perplexity_word"), paths["perplexity_plot"], "Perplexity over conversation length")
        self.plot(("bleu", "bleu2"), paths["bleu_plot"], "BLEU over conversation length")
        return paths

    def table_markdown(self) -> str:
        """Table 2's shape, one block per metric: rows = models, columns = 1 / 2 / 3+ turns and all."""
        counts = self.dataset.get("rows_per_bucket", {})
        header = "| model | " + " | ".join(
            f"{BUCKET_LABELS[c]} (n={counts[c]})" if c in counts else BUCKET_LABELS[c] for c in COLUMNS
        )
        lines = [
            "# Evaluation results",
            "",
            f"Dataset `{self.dataset.get('id')}`, split `{self.dataset.get('split')}`, "
            f"{self.dataset.get('rows')} rows. "
            "↑ higher is better, ↓ lower is better; mean ± std over sampling seeds "
            f"{self.settings.get('seeds', self.settings.get('generation', {}).get('seeds'))}; perplexity is deterministic. Best model in bold.",
            "",
        ]
        lines += self._paper_table()
        for metric, info in METRICS.items():
            if not self._has(metric):
                continue
            arrow = _ARROWS[info.higher_is_better]
            lines += [
                f"## {info.title}{arrow}",
                "",
                info.description,
                "",
                header + " |",
                "|---" * (len(COLUMNS) + 1) + "|",
            ]
            for model in self.results:
                lines.append(f"| {model} | " + " | ".join(self._cells(model, metric, COLUMNS)) + " |")
            if metric in self.reference:
                cells = [
                    self.reference[metric][c].format(info.digits) if c in self.reference[metric] else "–"
                    for c in COLUMNS
                ]
                lines.append("| *reference* | " + " | ".join(cells) + " |")
            lines.append("")
        return "\n".join(lines)

    def _cells(self, model: str, metric: str, columns: Sequence[str]) -> list[str]:
        """One model's formatted figures of ``metric`` over ``columns``, the best of each column in bold."""
        digits = METRICS[metric].digits
        cells = []
        for column in columns:
            stat = self.results[model].get(metric, {}).get(column)
            text = stat.format(digits) if stat else "–"
            cells.append(f"**{text}**" if model in self._best(metric, column) else text)
        return cells

    def _paper_table(self) -> list[str]:
        """The paper's Table 2 layout: metric, model, then 1 / 2 / 3+ turns."""
        lines = [
            "## Table 2: perplexity and BLEU by conversation length",
            "",
            "| metric | model | " + " | ".join(BUCKET_LABELS[b] for b in BUCKETS) + " |",
            "|---" * (len(BUCKETS) + 2) + "|",
        ]
        for metric in TABLE_2_METRICS:
            if not self._has(metric):
                continue
            info = METRICS[metric]
            for k, model in enumerate(self.results):
                label = f"{info.title}{_ARROWS[info.higher_is_better]}" if k == 0 else ""
                lines.append(f"| {label} | {model} | " + " | ".join(self._cells(model, metric, BUCKETS)) + " |")
        return lines + [""]

    def _best(self, metric: str, bucket: str) -> set[str]:
        """The models with the best mean (all of them on a tie); none when every model ties or only one runs."""
        info = METRICS[metric]
        if info.higher_is_better is None or len(self.results) < 2:
            return set()
        scored = {m: round(self.value(m, metric, bucket), 6) for m in self.results}
        finite = [v for v in scored.values() if not math.isnan(v)]
        if not finite:
            return set()
        best = max(finite) if info.higher_is_better else min(finite)
        winners = {m for m, v in scored.items() if v == best}
        return set() if len(winners) == len(self.results) else winners

    def examples_markdown(self) -> str:
        """Table 3's shape: history, prompt, the reference and each model's (first-seed) response."""
        lines = ["# Example responses", ""]
        for number, example in enumerate(self.examples, 1):
            history = " / ".join(example["history"]) if example["history"] else "None"
            lines += [
                f"## Example {number} ({BUCKET_LABELS[example['bucket']]})",
                "",
                "| | |",
                "|---|---|",
                f"| **History** | {_cell(history)} |",
                f"| **Prompt** | {_cell(example['prompt'])} |",
                f"| **Reference** | {_cell(example['reference'])} |",
            ]
            if example.get("emotion"):
                lines.append(f"| *emotion* | {_cell(example['emotion'])} |")
            lines += [f"| **{_cell(m)}** | {_cell(text)} |" for m, text in example["responses"].items()]
            lines.append("")
        return "\n".join(lines)

    def plot(self, metrics: tuple[str, ...], path: str | Path, title: str) -> None:
        """Lines over conversation length (1, 2, 3+ turns), one per model, error bars = std over seeds."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        shown = [m for m in metrics if self._has(m)]
        figure, axes = plt.subplots(1, max(len(shown), 1), figsize=(5.2 * max(len(shown), 1), 4), squeeze=False)
        x = list(range(len(BUCKETS)))
        for axis, metric in zip(axes[0], shown, strict=False):  # one empty axis when nothing is shown
            info = METRICS[metric]
            for model in self.results:
                stats = [self.results[model].get(metric, {}).get(b) for b in BUCKETS]
                means = [s.mean if s else float("nan") for s in stats]
                errors = [(s.std or 0.0) if s else 0.0 for s in stats]
                axis.errorbar(x, means, yerr=errors, marker="o", capsize=4, label=model)
            finite = [v for m in self.results for b in BUCKETS if not math.isnan(v := self.value(m, metric, b))]
            if info.higher_is_better is False and finite and min(finite) > 0 and max(finite) / min(finite) > 20:
                axis.set_yscale("log")
            arrow = {True: " (higher is better)", False: " (lower is better)", None: ""}[info.higher_is_better]
            axis.set_title(info.title + arrow, fontsize=10)
            axis.set_xticks(x, [BUCKET_LABELS[b] for b in BUCKETS])
            axis.set_xlabel("conversation length")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        figure.suptitle(title)
        figure.tight_layout()
        figure.savefig(path, dpi=120)
        plt.close(figure)


def row_fingerprint(row: dict[str, Any]) -> str:
    """16 hex digits of SHA-256 over a row's `CORPUS_FIELDS`: the same rows can be checked without quoting them."""
    text = json.dumps([row[name] for name in CORPUS_FIELDS], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _finite(data: Any) -> Any:
    """NaN (a figure that could not be measured, e.g. no rows in a bucket) becomes JSON null."""
    if isinstance(data, float) and math.isnan(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(v) for v in data]
    return data


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
