"""A whole evaluation: two models on a small split, every figure, the files, and the bad-input errors."""

from __future__ import annotations

import json
import math

import pytest

from egail.evaluation import EvaluationReport, EvaluationSettings, GenerationSettings, evaluate_models
from egail.evaluation.trajectories import EvaluationInputError

FAST = GenerationSettings(max_new_tokens=4, top_p=1.0)


@pytest.fixture(scope="module")
def tiny_lm_twin(tmp_path_factory, tiny_lm_path) -> str:
    """A second model: the tiny LM with other random weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm_path)
    torch.manual_seed(1)
    for parameter in model.parameters():
        parameter.data.normal_(0, 0.02)
    path = tmp_path_factory.mktemp("tiny-twin")
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_lm_path).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def report(
    tiny_lm_path, tiny_lm_twin, tiny_discriminator_path, toy_emotion_classifier, small_split
) -> EvaluationReport:
    settings = _settings(tiny_discriminator_path, toy_emotion_classifier)
    return evaluate_models(
        {"tiny": tiny_lm_path, "twin": tiny_lm_twin}, small_split, settings, dataset_name="hand-built"
    )


def _settings(discriminator: str, emotion_classifier) -> EvaluationSettings:
    return EvaluationSettings(
        generation=FAST,
        seeds=(0, 1),
        batch_size=8,
        emotion_classifier=emotion_classifier,
        discriminator=discriminator,
        n_examples=3,
        device="cpu",
    )


def test_every_figure_for_every_model_and_bucket(report):
    expected = {
        "perplexity", "perplexity_word", "bleu", "bleu2", "distinct1", "distinct2", "length",
        "emotion_accuracy", "sentiment_agreement", "discriminator_score",
    }  # fmt: skip
    assert set(report.results) == {"tiny", "twin"}
    for model in report.results.values():
        assert set(model) == expected
        for metric, by_bucket in model.items():
            assert set(by_bucket) == {"1", "2", "3+", "all"}
            for stat in by_bucket.values():
                assert not math.isnan(stat.mean)
                if metric.startswith("perplexity"):
                    assert stat.std is None and len(stat.values) == 1
                else:
                    assert len(stat.values) == 2 and stat.std is not None
    assert report.dataset["rows_per_bucket"] == {"1": 3, "2": 2, "3+": 1, "all": 6}
    assert report.results["tiny"]["length"]["1"].n == 3
    # The two models are different, so are their perplexities; a random 49k-vocab LM is near uniform.
    assert report.value("tiny", "perplexity") != report.value("twin", "perplexity")
    assert 1e4 < report.value("tiny", "perplexity") < 1e6
    assert 0 < report.value("tiny", "discriminator_score") < 1


def test_figures_agree_with_the_responses(report):
    """Recompute a few figures from responses.jsonl's rows with the metric functions directly."""
    from egail.evaluation.text_metrics import bleu, distinct, mean_length

    rows = report.rows
    for seed_index, seed in enumerate(("0", "1")):
        responses = [r["responses"]["twin"][seed] for r in rows]
        references = [r["reference"] for r in rows]
        assert report.results["twin"]["bleu"]["all"].values[seed_index] == pytest.approx(bleu(responses, references))
        assert report.results["twin"]["distinct2"]["all"].values[seed_index] == pytest.approx(distinct(responses)[2])
        first_turn = [r["responses"]["twin"][seed] for r in rows if r["bucket"] == "1"]
        assert report.results["twin"]["length"]["1"].values[seed_index] == pytest.approx(mean_length(first_turn))
    nll = sum(r["nll"]["tiny"]["nll"] for r in rows)
    words = sum(len(r["reference"].split()) for r in rows)
    assert report.value("tiny", "perplexity_word") == pytest.approx(math.exp(nll / words))


def test_reference_row_and_emotion_ceiling(report):
    assert report.reference["length"]["3+"].mean == pytest.approx(len("That is normal, you will do great.".split()))
    assert set(report.reference) == {"length", "distinct1", "distinct2", "emotion_accuracy"}
    assert report.reference["emotion_accuracy"]["all"].n == 6
    assert 0 <= report.reference["emotion_accuracy"]["all"].mean <= 1


def test_report_files(report, tmp_path):
    paths = report.write(tmp_path)
    for key in ("json", "table", "examples", "responses", "perplexity_plot", "bleu_plot"):
        assert paths[key].is_file() and paths[key].stat().st_size > 0, key
    assert paths["perplexity_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    data = json.loads(paths["json"].read_text())
    assert data["dataset"]["id"] == "hand-built" and data["dataset"]["rows"] == 6
    assert data["settings"]["generation"] == FAST.to_dict()
    assert data["settings"]["seeds"] == [0, 1] and data["settings"]["batch_size"] == 8
    assert data["settings"]["include_oneliners"] is False
    assert data["metrics"]["bleu"]["higher_is_better"] is True
    assert data["metrics"]["perplexity"]["higher_is_better"] is False
    assert data["models"]["tiny"]["chat_template"] is True
    assert set(data["models"]["tiny"]["timings"]) == {"load_s", "perplexity_s", "generation_s", "scoring_s"}
    assert "tok:13a" in data["bleu_signature"]

    table = paths["table"].read_text()
    assert "## Table 2: perplexity and BLEU by conversation length" in table
    assert "| metric | model | 1 turn | 2 turns | 3+ turns |" in table
    assert "## BLEU ↑" in table and "## Perplexity (per token) ↓" in table
    assert "| model | 1 turn (n=3) | 2 turns (n=2) | 3+ turns (n=1) | all (n=6) |" in table
    assert "| *reference* |" in table and "| twin |" in table

    examples = paths["examples"].read_text()
    assert examples.count("## Example") == 3 and "| **History** | None |" in examples
    assert len(paths["responses"].read_text().splitlines()) == 6

    reloaded = EvaluationReport.from_json(paths["json"])
    assert reloaded.value("twin", "bleu", "2") == pytest.approx(report.value("twin", "bleu", "2"))
    assert reloaded.table_markdown() == table


def test_models_evaluated_one_at_a_time_combine_into_the_report_of_both(
    report, tiny_lm_path, tiny_lm_twin, tiny_discriminator_path, toy_emotion_classifier, small_split, tmp_path
):
    """A study evaluates each model once, when it is trained: the combined reports equal one joint evaluation."""
    import dataclasses

    settings = _settings(tiny_discriminator_path, toy_emotion_classifier)
    alone = [evaluate_models({name: path}, small_split, settings, dataset_name="hand-built")
             for name, path in (("tiny", tiny_lm_path), ("twin", tiny_lm_twin))]  # fmt: skip
    alone[1].write(tmp_path / "twin")
    combined = EvaluationReport.combine([alone[0], EvaluationReport.load(tmp_path / "twin")])
    assert list(combined.results) == ["tiny", "twin"]
    for model in ("tiny", "twin"):
        for metric, by_bucket in report.results[model].items():
            for bucket, stat in by_bucket.items():
                assert combined.results[model][metric][bucket].mean == pytest.approx(stat.mean), (model, metric)
    assert [row["responses"] for row in combined.rows] == [row["responses"] for row in report.rows]
    for mine, joint in zip(combined.rows, report.rows, strict=True):
        assert {m: v["nll"] for m, v in mine["nll"].items()} == pytest.approx(
            {m: v["nll"] for m, v in joint["nll"].items()}
        )
    assert combined.examples == report.examples
    assert combined.table_markdown().count("| twin |") == report.table_markdown().count("| twin |")

    with pytest.raises(EvaluationInputError, match="more than one"):
        EvaluationReport.combine([alone[0], alone[0]])
    other = dataclasses.replace(alone[1], settings={**alone[1].settings, "seeds": [5]})
    with pytest.raises(EvaluationInputError, match="settings differ"):
        EvaluationReport.combine([alone[0], other])
    fewer = dataclasses.replace(alone[1], rows=alone[1].rows[:-1])
    with pytest.raises(EvaluationInputError, match="rows differ"):
        EvaluationReport.combine([alone[0], fewer])


def test_a_report_without_corpus_text_quotes_none_and_comes_back_whole_from_the_dataset(
    report, tiny_discriminator_path, toy_emotion_classifier, small_split
):
    """A study commits each model's evaluation without the corpora's text (their licenses) and puts the text back
    from the dataset on a fresh clone: the same report, rows, examples and table as the evaluation wrote."""
    from egail.evaluation.runner import restore_corpus_text

    shared = report.without_corpus_text()
    dumped = json.dumps(shared)
    for row in report.rows:
        for text in (row["prompt"], row["reference"], *row["history"]):
            assert json.dumps(text)[1:-1] not in dumped, text
    kept = {row["row"]: row["responses"] for row in shared["rows"]}
    assert kept == {row["row"]: row["responses"] for row in report.rows}  # the models' own text stays

    settings = _settings(tiny_discriminator_path, toy_emotion_classifier)
    restored = restore_corpus_text(json.loads(dumped), small_split, settings)
    assert restored.rows == json.loads(json.dumps(report.rows))
    assert restored.examples == report.examples
    assert restored.table_markdown() == report.table_markdown()
    assert restored.to_dict() == json.loads(json.dumps(report.to_dict()))

    edited = small_split.map(lambda row, i: {"response": row["response"] + (" (edited)" if i == 4 else "")},
                             with_indices=True)  # fmt: skip
    with pytest.raises(EvaluationInputError, match=r"row \d+ of the dataset is not the text that was evaluated"):
        restore_corpus_text(shared, edited, settings)
    with pytest.raises(EvaluationInputError, match="other rows"):
        restore_corpus_text(shared, small_split.select(range(3)), settings)
    fewer_seeds = _settings(tiny_discriminator_path, toy_emotion_classifier)
    fewer_seeds.seeds = (0,)
    with pytest.raises(EvaluationInputError, match="other settings"):
        restore_corpus_text(shared, small_split, fewer_seeds)


def test_plain_format_model_and_lora_adapter(tiny_lm_path, tiny_discriminator_path, small_split, tmp_path):
    """A model without a chat template is scored in the plain format; a LoRA folder is merged into its base;
    a GAIL run's own discriminator/ scores that run's responses."""
    import shutil

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    plain = tmp_path / "plain"
    AutoModelForCausalLM.from_pretrained(tiny_lm_path).save_pretrained(plain)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm_path)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)

    adapter = tmp_path / "adapter"
    lora = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_lm_path), LoraConfig(r=2, target_modules=["q_proj"])
    )
    lora.save_pretrained(adapter)
    AutoTokenizer.from_pretrained(tiny_lm_path).save_pretrained(adapter)
    shutil.copytree(tiny_discriminator_path, adapter / "discriminator")

    settings = EvaluationSettings(
        generation=GenerationSettings(max_new_tokens=3, top_p=1.0), seeds=(0,), emotion_classifier=None, max_samples=2
    )
    report = evaluate_models({"plain": str(plain), "lora": str(adapter)}, small_split, settings)
    assert report.models["plain"]["chat_template"] is False
    assert report.models["lora"]["chat_template"] is True
    # LoRA's B starts at zero: the merged adapter is the base model, so its perplexity is the base's.
    base = evaluate_models({"base": tiny_lm_path}, small_split, settings)
    assert report.value("lora", "perplexity") == pytest.approx(base.value("base", "perplexity"), rel=1e-4)
    assert "emotion_accuracy" not in report.results["plain"]
    empty = [b for b, n in report.dataset["rows_per_bucket"].items() if n == 0]
    assert empty and all(math.isnan(report.value("lora", "bleu", b)) for b in empty)
    text = report.write(tmp_path / "out")["json"].read_text()
    assert "NaN" not in text and json.loads(text)["results"]["lora"]["bleu"][empty[0]]["mean"] is None
    assert report.models["lora"]["discriminator"] == str(adapter / "discriminator")
    assert "discriminator_score" in report.results["lora"] and "discriminator_score" not in report.results["plain"]


def test_bad_models_and_data_are_clear_errors(tiny_lm_path, minilm_path, small_split, tmp_path):
    settings = EvaluationSettings(generation=FAST, emotion_classifier=None)
    with pytest.raises(EvaluationInputError, match="'minilm-l6' is a 'bert' model, not a causal language model"):
        evaluate_models({"encoder": "minilm-l6"}, small_split, settings)
    with pytest.raises(EvaluationInputError, match="does not exist"):
        evaluate_models([str(tmp_path / "missing")], small_split, settings)
    with pytest.raises(EvaluationInputError, match="is empty"):
        evaluate_models([tiny_lm_path], small_split.select([]), settings)
    with pytest.raises(EvaluationInputError, match="missing column\\(s\\) \\['prompt'\\]"):
        evaluate_models([tiny_lm_path], small_split.remove_columns("prompt"), settings)
    import datasets

    with pytest.raises(EvaluationInputError, match="no split 'test'"):
        evaluate_models([tiny_lm_path], datasets.DatasetDict({"train": small_split}), settings)
    with pytest.raises(EvaluationInputError, match="no models"):
        evaluate_models({}, small_split, settings)


def test_emotion_is_not_scored_on_the_classifier_s_own_training_conversations(toy_emotion_classifier, small_split):
    from dataclasses import replace

    from egail.evaluation.runner import _attach_classifier, _by_bucket, _Rows
    from egail.evaluation.trajectories import select_rows

    rows = select_rows(small_split)
    data = _Rows(
        rows, [r.history for r in rows], [r.prompt for r in rows], [r.response for r in rows], _by_bucket(rows)
    )
    classifier = replace(toy_emotion_classifier, info=toy_emotion_classifier.info | {"train_conv_ids": ["c2"]})
    info = _attach_classifier(data, classifier)
    assert data.emotion_scored == [r.conv_id != "c2" for r in rows]
    assert info["rows_scored"] == 4 and info["rows_left_out_as_classifier_training_data"] == 2
    assert "train_conv_ids" not in info
