"""Evaluating several models on the same trajectories: the paper's Table 2, measured properly.

For each model, on the same rows: perplexity of the reference responses (deterministic), then, for every
sampling seed, responses generated with one shared `GenerationSettings` and scored by BLEU, BLEU-2,
distinct-1/2, length, emotional attunement, VADER sentiment agreement and (when there is one) a GAIL
discriminator. Everything is split by conversation length (1, 2, 3+ turns) and reported overall.
"""

from __future__ import annotations

import gc
import logging
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from egail.discriminator import DISCRIMINATOR_DIR, Discriminator
from egail.evaluation import text_metrics
from egail.evaluation.emotion import EmotionClassifier, default_emotion_classifier
from egail.evaluation.generation import generate_responses
from egail.evaluation.perplexity import perplexity, response_nlls
from egail.evaluation.report import EvaluationReport, Stat, row_fingerprint
from egail.evaluation.trajectories import ALL, BUCKETS, EvaluationInputError, Row, select_rows
from egail.formatting import has_chat_template, truncate_history
from egail.generation import GenerationSettings, prompt_budget

logger = logging.getLogger(__name__)


@dataclass
class EvaluationSettings:
    """Everything besides the models and the data that decides the figures (written into results.json).

    ``generation`` is the chat's own `GenerationSettings` (the same defaults the Space serves with). Sample-based
    metrics are averaged over ``seeds`` (mean ± std); with ``do_sample=False`` decoding is greedy and only the
    first seed runs. ``batch_size`` states are generated and scored at once.

    ``emotion_classifier``: "default" (the cached ED classifier, trained on first use), a folder saved by
    ``EmotionClassifier.save``, an ``EmotionClassifier``, or None to skip emotional attunement.
    ``discriminator``: a folder saved by ``Discriminator.save_pretrained`` that scores every model's
    responses; when None, a model folder's own ``discriminator/`` scores that model's responses only.
    ``history_max_turns`` and ``system_prompt`` shape the states as in training (``GAILConfig`` has the
    same two fields); a row's bucket still counts its whole history. ``max_length`` caps the tokens of a
    scored state (the model's own context length caps it too).
    """

    generation: GenerationSettings = field(default_factory=GenerationSettings)
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 32  # on a CPU, 32 generates about twice as fast as 8 (SmolLM2-135M)
    split: str = "test"
    max_samples: int | None = None
    include_oneliners: bool = False
    max_length: int | None = 1024
    history_max_turns: int | None = None
    system_prompt: str | None = None
    emotion_classifier: str | EmotionClassifier | None = "default"
    discriminator: str | None = None
    n_examples: int = 6
    device: str | None = None

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("seeds must name at least one seed.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}.")
        self.seeds = tuple(int(s) for s in self.seeds)

    @property
    def decoding_seeds(self) -> tuple[int, ...]:
        """Greedy decoding is deterministic: only the first seed is run."""
        return self.seeds if self.generation.do_sample else self.seeds[:1]

    def to_dict(self) -> dict[str, Any]:
        data = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in {"generation", "emotion_classifier"}
        }
        data["seeds"] = list(self.seeds)
        classifier = self.emotion_classifier
        data["emotion_classifier"] = classifier if classifier is None or isinstance(classifier, str) else "given"
        return {"generation": self.generation.to_dict(), **data}


def _load_policy(name_or_path: str, device: torch.device) -> tuple[Any, Any]:
    """`egail.models.load_policy`, the chat's and the Space's loader; a failure names the model."""
    from egail.models import ModelNotFoundError, load_policy

    try:
        return load_policy(name_or_path, device=device)
    except (ValueError, OSError, ModelNotFoundError, KeyError) as error:
        raise EvaluationInputError(f"model '{name_or_path}': {error}") from error


def check_model(name_or_path: str) -> None:
    """Fail before any work if a model cannot be a generator (`egail.models.check_policy`: configs only)."""
    from egail.models import ModelNotFoundError, check_policy

    try:
        check_policy(name_or_path)
    except (ValueError, OSError, ModelNotFoundError, KeyError) as error:
        raise EvaluationInputError(f"model '{name_or_path}': {error}") from error


def load_rows(dataset: Any, settings: EvaluationSettings, name: str | None = None) -> tuple[list[Row], dict[str, Any]]:
    """The rows to evaluate from a dataset id/folder, a ``DatasetDict`` or a ``Dataset``, and a description."""
    import datasets

    name = name or (str(dataset) if isinstance(dataset, (str, Path)) else type(dataset).__name__)
    if isinstance(dataset, (str, Path)):
        from egail.data import load_trajectories

        try:
            dataset = load_trajectories(str(dataset))
        except (ValueError, OSError) as error:
            raise EvaluationInputError(f"dataset '{name}': {error}") from error
    if isinstance(dataset, datasets.DatasetDict):
        if settings.split not in dataset:
            raise EvaluationInputError(
                f"dataset '{name}' has no split '{settings.split}' (it has: {', '.join(dataset) or 'none'})."
            )
        dataset = dataset[settings.split]
    if not isinstance(dataset, datasets.Dataset):
        raise EvaluationInputError(
            f"expected a dataset id, folder, DatasetDict or Dataset, got {type(dataset).__name__}."
        )
    total = len(dataset)
    rows = select_rows(
        dataset, f"dataset '{name}' split '{settings.split}'", settings.include_oneliners, settings.max_samples
    )
    description = {
        "id": str(name),
        "split": settings.split,
        "rows_in_split": total,
        "rows": len(rows),
        "rows_per_bucket": {b: sum(r.bucket == b for r in rows) for b in BUCKETS} | {ALL: len(rows)},
        "include_oneliners": settings.include_oneliners,
        "max_samples": settings.max_samples,
    }
    return rows, description


def _load_discriminator(path: str | Path) -> Discriminator:
    try:
        return Discriminator.from_pretrained(path)
    except (ValueError, OSError) as error:
        raise EvaluationInputError(f"discriminator '{path}': {error}") from error


def _by_bucket(rows: list[Row]) -> dict[str, list[int]]:
    """Row positions per bucket, plus every row under "all"."""
    groups = {b: [i for i, r in enumerate(rows) if r.bucket == b] for b in BUCKETS}
    groups[ALL] = list(range(len(rows)))
    return groups


@dataclass
class _Rows:
    """The evaluation rows and what every model shares about them: states, buckets, emotion scoring."""

    rows: list[Row]
    histories: list[list[str]]
    prompts: list[str]
    references: list[str]
    groups: dict[str, list[int]]
    classifier: EmotionClassifier | None = None
    #: rows whose emotion the classifier scores: an emotion it knows, a conversation it did not train on
    emotion_scored: list[bool] = field(default_factory=list)


def _sample_metrics(
    data: _Rows, responses: list[str], emotion_hits: list[bool | None] | None, d_scores: list[float] | None
) -> dict[str, dict[str, float]]:
    """metric -> bucket -> value for one seed's responses."""
    result: dict[str, dict[str, float]] = {}
    for bucket, indices in data.groups.items():
        predictions = [responses[i] for i in indices]
        references = [data.references[i] for i in indices]
        distinct = text_metrics.distinct(predictions)
        values = {
            "bleu": text_metrics.bleu(predictions, references),
            "bleu2": text_metrics.bleu(predictions, references, max_ngram_order=2),
            "distinct1": distinct[1],
            "distinct2": distinct[2],
            "length": text_metrics.mean_length(predictions),
            "sentiment_agreement": text_metrics.sentiment_agreement(predictions, references),
        }
        if emotion_hits is not None:
            values["emotion_accuracy"] = _mean([emotion_hits[i] for i in indices if emotion_hits[i] is not None])
        if d_scores is not None:
            values["discriminator_score"] = _mean([d_scores[i] for i in indices])
        for metric, value in values.items():
            result.setdefault(metric, {})[bucket] = value
    return result


def _mean(values: list[float] | list[bool]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _emotion_hits(data: _Rows, texts: list[str]) -> list[bool | None] | None:
    """Whether each text's predicted emotion is its row's emotion; None where the row is not scored."""
    if data.classifier is None:
        return None
    positions = [i for i, scored in enumerate(data.emotion_scored) if scored]
    predictions = data.classifier.predict([texts[i] for i in positions])
    hits: list[bool | None] = [None] * len(texts)
    for i, predicted in zip(positions, predictions, strict=True):
        hits[i] = predicted == data.rows[i].emotion
    return hits


def _attach_classifier(data: _Rows, classifier: str | EmotionClassifier | None) -> dict[str, Any] | None:
    """Load the emotion classifier into ``data``, choose the rows it scores, and describe it for the report."""
    if isinstance(classifier, str):
        classifier = default_emotion_classifier() if classifier == "default" else EmotionClassifier.load(classifier)
    if classifier is None:
        return None
    trained_on = set(classifier.info.get("train_conv_ids", []))
    known = [r.emotion in classifier.labels for r in data.rows]
    data.classifier = classifier
    data.emotion_scored = [k and r.conv_id not in trained_on for k, r in zip(known, data.rows, strict=True)]
    return {
        "encoder": classifier.encoder_name,
        "labels": len(classifier.labels),
        **{k: v for k, v in classifier.info.items() if k != "train_conv_ids"},
        "rows_scored": sum(data.emotion_scored),
        "rows_left_out_as_classifier_training_data": sum(known) - sum(data.emotion_scored),
    }


def _reference_figures(data: _Rows) -> dict[str, dict[str, Stat]]:
    """Length, distinct-n and the emotion ceiling of the reference responses themselves."""
    figures: dict[str, dict[str, Stat]] = {"length": {}, "distinct1": {}, "distinct2": {}}
    hits = _emotion_hits(data, data.references)
    if hits is not None:
        figures["emotion_accuracy"] = {}
    for bucket, indices in data.groups.items():
        texts = [data.references[i] for i in indices]
        distinct = text_metrics.distinct(texts)
        figures["length"][bucket] = Stat.single(text_metrics.mean_length(texts), len(indices))
        figures["distinct1"][bucket] = Stat.single(distinct[1], len(indices))
        figures["distinct2"][bucket] = Stat.single(distinct[2], len(indices))
        if hits is not None:
            scored = [hits[i] for i in indices if hits[i] is not None]
            figures["emotion_accuracy"][bucket] = Stat.single(_mean(scored), len(scored))
    return figures


def _evaluate_model(
    name: str,
    path: str,
    data: _Rows,
    settings: EvaluationSettings,
    device: torch.device,
    shared_discriminator: Any,
    per_row: list[dict[str, Any]],
) -> tuple[dict[str, dict[str, Stat]], dict[str, Any]]:
    """One model's figures (metric -> bucket -> Stat) and description; its responses go into ``per_row``."""
    generation = settings.generation
    timings: dict[str, Any] = {"generation_s": [], "scoring_s": []}
    clock = time.perf_counter()
    model, tokenizer = _load_policy(path, device)
    timings["load_s"] = time.perf_counter() - clock

    logger.info("%s: perplexity of %d reference responses", name, len(data.rows))
    clock = time.perf_counter()
    nlls = response_nlls(
        model, tokenizer, data.histories, data.prompts, data.references,
        batch_size=settings.batch_size, max_length=settings.max_length, system=settings.system_prompt,
    )  # fmt: skip
    timings["perplexity_s"] = time.perf_counter() - clock
    figures: dict[str, dict[str, Stat]] = {"perplexity": {}, "perplexity_word": {}}
    for bucket, indices in data.groups.items():
        scores = [nlls[i] for i in indices]
        words = sum(text_metrics.word_count(data.references[i]) for i in indices)
        figures["perplexity"][bucket] = Stat.single(perplexity(scores), len(indices))
        figures["perplexity_word"][bucket] = Stat.single(perplexity(scores, words=words), len(indices))
    for record, score in zip(per_row, nlls, strict=True):
        record["nll"][name] = {"nll": score.nll, "tokens": score.tokens, "truncated": score.truncated}

    discriminator, discriminator_source = shared_discriminator, settings.discriminator
    own = Path(path) / DISCRIMINATOR_DIR
    if discriminator is None and (own / "config.json").is_file():
        discriminator, discriminator_source = _load_discriminator(own), str(own)
    if discriminator is not None:
        discriminator.to(device)

    max_prompt = prompt_budget(model, tokenizer, generation, cap=settings.max_length)
    per_seed = []
    for seed in settings.decoding_seeds:
        logger.info("%s: sampling %d responses with seed %d", name, len(data.rows), seed)
        clock = time.perf_counter()
        responses = generate_responses(
            model, tokenizer, data.histories, data.prompts, generation, seed,
            max_prompt_length=max_prompt, system=settings.system_prompt, batch_size=settings.batch_size,
        )  # fmt: skip
        timings["generation_s"].append(time.perf_counter() - clock)
        clock = time.perf_counter()
        d_scores = None
        if discriminator is not None:
            d_scores = discriminator.score(data.histories, data.prompts, responses).tolist()
        per_seed.append(_sample_metrics(data, responses, _emotion_hits(data, responses), d_scores))
        timings["scoring_s"].append(time.perf_counter() - clock)
        for record, text in zip(per_row, responses, strict=True):
            record["responses"].setdefault(name, {})[str(seed)] = text

    for metric in per_seed[0]:
        figures[metric] = {}
        for bucket, indices in data.groups.items():
            # emotion accuracy counts only the rows the classifier scores
            n = sum(data.emotion_scored[i] for i in indices) if metric == "emotion_accuracy" else len(indices)
            figures[metric][bucket] = Stat.over_seeds([values[metric][bucket] for values in per_seed], n)
    info = {
        "path": str(path),
        "chat_template": has_chat_template(tokenizer),
        "parameters": sum(p.numel() for p in model.parameters()),
        "discriminator": discriminator_source if discriminator is not None else None,
        "timings": timings,
    }
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return figures, info


def _row_record(row: Row, responses: dict[str, Any], nll: dict[str, Any]) -> dict[str, Any]:
    """A row of responses.jsonl: the row, its state and reference, and per model its responses and the NLL."""
    return {
        "row": row.index, "bucket": row.bucket, "conv_id": row.conv_id, "source": row.source, "emotion": row.emotion,
        "history": row.history, "prompt": row.prompt, "reference": row.response, "responses": responses, "nll": nll,
    }  # fmt: skip


def _examples(rows: list[Row], per_row: list[dict[str, Any]], settings: EvaluationSettings) -> list[dict[str, Any]]:
    """examples.md's rows (`_pick_examples`), each with every model's response to the first decoding seed."""
    first_seed = str(settings.decoding_seeds[0])
    return [
        {
            "bucket": rows[i].bucket,
            "history": rows[i].history,
            "prompt": rows[i].prompt,
            "reference": rows[i].response,
            "emotion": rows[i].emotion,
            "responses": {name: seeds[first_seed] for name, seeds in per_row[i]["responses"].items()},
        }
        for i in _pick_examples(_by_bucket(rows), settings.n_examples)
    ]


def _pick_examples(groups: dict[str, list[int]], n: int) -> list[int]:
    """``n`` rows spread evenly over the buckets and, within a bucket, over its rows."""
    picked: list[int] = []
    per_bucket = [groups[b] for b in BUCKETS if groups[b]]
    for k, indices in enumerate(per_bucket):
        share = n // len(per_bucket) + (k < n % len(per_bucket))
        step = max(len(indices) / max(share, 1), 1)
        picked += [indices[int(j * step)] for j in range(min(share, len(indices)))]
    return picked


def evaluate_models(
    models: Mapping[str, str] | Sequence[str],
    dataset: Any = "embedded",
    settings: EvaluationSettings | None = None,
    dataset_name: str | None = None,
) -> EvaluationReport:
    """Evaluate every model on the same rows of ``dataset`` and return the report (``report.write(dir)``).

    ``models`` maps display names to model names/folders (a list uses the names as given). ``dataset`` is
    a name for ``egail.data.load_trajectories`` ("embedded", a folder, a Hub id), a ``DatasetDict`` or a
    ``Dataset``; ``dataset_name`` labels an in-memory one in the report. Models are loaded one at a time,
    so only one is in memory. Every model is checked before any work starts.
    """
    settings = settings or EvaluationSettings()
    models = dict(models) if isinstance(models, Mapping) else {str(m): str(m) for m in models}
    if not models:
        raise EvaluationInputError("no models to evaluate.")
    device = torch.device(settings.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    started = time.perf_counter()
    for path in models.values():
        check_model(path)
    rows, dataset_info = load_rows(dataset, settings, dataset_name)
    data = _Rows(
        rows=rows,
        histories=[truncate_history(r.history, settings.history_max_turns) for r in rows],
        prompts=[r.prompt for r in rows],
        references=[r.response for r in rows],
        groups=_by_bucket(rows),
    )
    emotion_info = _attach_classifier(data, settings.emotion_classifier)
    shared_discriminator = _load_discriminator(settings.discriminator) if settings.discriminator else None
    reference = _reference_figures(data)

    per_row = [_row_record(r, responses={}, nll={}) for r in rows]
    results, model_info = {}, {}
    for name, path in models.items():
        results[name], model_info[name] = _evaluate_model(
            name, str(path), data, settings, device, shared_discriminator, per_row
        )

    return EvaluationReport(
        dataset=dataset_info,
        settings=settings.to_dict(),
        models=model_info,
        results=results,
        reference=reference,
        examples=_examples(rows, per_row, settings),
        rows=per_row,
        extra={
            "emotion_classifier": emotion_info,
            "bleu_signature": text_metrics.bleu_signature(),
            "environment": _environment(device),
            "total_s": time.perf_counter() - started,
        },
    )


def restore_corpus_text(data: dict[str, Any], dataset: Any, settings: EvaluationSettings) -> EvaluationReport:
    """The report that `EvaluationReport.without_corpus_text` gave ``data``, its states, references and examples
    read again from ``dataset`` with ``settings`` (those of the evaluation).

    How a study's committed evaluation of a model is put back on a machine that has the corpora but never
    evaluated the model. Each row's text must have the fingerprint it had when the model was evaluated: an
    `EvaluationInputError` names the first row that differs (another split, corpus or version of the data).
    """
    if settings.to_dict() != data["settings"]:
        raise EvaluationInputError("the evaluation to restore was made with other settings than these.")
    rows, _ = load_rows(dataset, settings)
    kept = data["rows"]
    if [r.index for r in rows] != [row["row"] for row in kept]:
        raise EvaluationInputError(
            f"the evaluation to restore scored other rows than this dataset gives ({len(kept)} rows, here {len(rows)})."
        )
    per_row = []
    for row, record in zip(rows, kept, strict=True):
        restored = _row_record(row, responses=record["responses"], nll=record["nll"])
        if row_fingerprint(restored) != record["fingerprint"]:
            raise EvaluationInputError(
                f"row {row.index} of the dataset is not the text that was evaluated (another corpus or version)."
            )
        per_row.append(restored)
    report = EvaluationReport.from_dict({**data, "rows": per_row})
    report.examples = _examples(rows, per_row, settings)
    return report


def _environment(device: torch.device) -> dict[str, str]:
    import sacrebleu
    import transformers

    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sacrebleu": sacrebleu.__version__,
        "python": platform.python_version(),
    }
