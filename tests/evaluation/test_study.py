"""The study scorer on a tiny hand-made evaluation folder, written by EvaluationReport.write like a real one."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import egail
from egail.cli import run_cli
from egail.evaluation import text_metrics
from egail.evaluation.report import EvaluationReport
from egail.evaluation.study import distinct2_weights, main, score_study, study_markdown

ROWS = 20
SEEDS = ("0", "1")
FEELINGS = ["happy", "sad", "tired", "proud", "nervous"]
THINGS = ["my job", "the dog", "school", "my sister", "the move", "my exam", "the trip", "our house", "the game", "it"]


def reference(i: int) -> str:
    return f"I feel {FEELINGS[i % 5]} about {THINGS[i % 10]} today."


def responses(i: int) -> dict[str, dict[str, str]]:
    return {
        # people's own words: the probe cannot tell them apart
        "mirror": {s: reference(i) for s in SEEDS},
        # a stock closing line on every response: the probe always can
        "stock": {s: f"That sounds {FEELINGS[(i * i + int(s)) % 5]}. I hope that helps!" for s in SEEDS},
        # bigrams that occur once in the whole corpus: distinct-2 is 1 on every resample
        "unique": {s: f"r{i}s{s} a{i}s{s} b{i}s{s}" for s in SEEDS},
    }


def row(i: int, nll: bool) -> dict:
    scores = {m: {"nll": 2.0 + i % 3, "tokens": 4 + i % 2, "truncated": False} for m in ("mirror", "stock")}
    return {
        "row": i, "bucket": "1", "conv_id": f"c{i}", "source": "empatheticdialogues", "emotion": "joyful",
        "history": [], "prompt": f"Prompt {i}.", "reference": reference(i), "responses": responses(i),
        "nll": scores if nll else {},
    }  # fmt: skip


def write_folder(path, nll: bool = True):
    rows = [row(i, nll) for i in range(ROWS)]
    EvaluationReport(dataset={"id": "hand-made"}, settings={}, models={}, results={}, reference={}, rows=rows).write(
        path
    )
    return rows


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluation")
    write_folder(path)
    return path


@pytest.fixture(scope="module")
def study(folder):
    return score_study(folder, resamples=200)


def test_values_on_all_rows_are_the_reports_figures(study):
    rows = [row(i, True) for i in range(ROWS)]
    references = [r["reference"] for r in rows]
    for model in ("mirror", "stock", "unique"):
        per_seed = [[r["responses"][model][s] for r in rows] for s in SEEDS]
        figures = study["models"][model]["figures"]
        # the evaluation's own BLEU-2, distinct-2 and length, averaged over seeds as table.md averages them
        bleu2 = np.mean([text_metrics.bleu(texts, references, max_ngram_order=2) for texts in per_seed])
        assert figures["bleu2"]["value"] == pytest.approx(bleu2)
        assert figures["distinct2"]["value"] == pytest.approx(np.mean([text_metrics.distinct(t)[2] for t in per_seed]))
        assert figures["length"]["value"] == pytest.approx(np.mean([text_metrics.mean_length(t) for t in per_seed]))
    assert study["models"]["mirror"]["figures"]["bleu2"]["value"] == pytest.approx(100.0)
    nll = sum(2.0 + i % 3 for i in range(ROWS)) / sum(4 + i % 2 for i in range(ROWS))
    assert study["models"]["stock"]["figures"]["perplexity"]["value"] == pytest.approx(math.exp(nll))
    assert "perplexity" not in study["models"]["unique"]["figures"]  # no NLLs for it in the rows
    assert study["reference"]["length"]["value"] == pytest.approx(text_metrics.mean_length(references))


def test_intervals_bracket_their_values(study):
    for figures in [m["figures"] for m in study["models"].values()] + [study["reference"]]:
        for figure in figures.values():
            assert figure["low"] <= figure["value"] <= figure["high"]
    assert study["models"]["stock"]["figures"]["bleu2"]["low"] < study["models"]["stock"]["figures"]["bleu2"]["high"]


def test_realism_separates_the_stock_phrase_and_not_the_mirror(study):
    assert study["models"]["mirror"]["figures"]["realism_auc"] == {"value": 0.5, "low": 0.5, "high": 0.5}
    assert study["models"]["stock"]["figures"]["realism_auc"] == {"value": 1.0, "low": 1.0, "high": 1.0}
    assert study["models"]["stock"]["realism_pairs"] == ROWS * len(SEEDS)  # every seed's response, grouped by row
    assert study["differences"]["stock"]["realism_auc"] == {"value": 0.5, "low": 0.5, "high": 0.5}


def test_distinct2_is_not_pulled_down_by_rows_drawn_twice(study):
    # Recounting unique bigrams in a resample would give about 0.63 (the share of rows drawn at least once), not 1.
    assert study["models"]["unique"]["figures"]["distinct2"] == {"value": 1.0, "low": 1.0, "high": 1.0}


def test_distinct2_weights_sum_to_the_distinct_bigrams():
    texts = ["a b c", "a b", "b c d", "", "x"]
    weights, counts = distinct2_weights(texts)
    assert weights.sum() / counts.sum() == pytest.approx(text_metrics.distinct(texts)[2])
    assert counts.tolist() == [2, 1, 2, 0, 0]


def test_markdown_and_cli(folder, capsys):
    run_cli(main, [str(folder), "--resamples", "50", "--baseline", "stock"])
    printed = capsys.readouterr().out
    assert printed == (folder / "study.md").read_text()
    written = json.loads((folder / "study.json").read_text())
    assert written["baseline"] == "stock" and set(written["differences"]) == {"mirror", "unique"}
    lines = printed.splitlines()
    header = next(line for line in lines if line.startswith("| model |"))
    assert "BLEU-2 ↑" in header and "Realism probe AUC ↓" in header and "Perplexity (per token) ↓" in header
    mirror = next(line for line in lines if line.startswith("| mirror |"))
    assert "100.00 [100.00, 100.00]" in mirror and "0.500 [0.500, 0.500]" in mirror
    unique = next(line for line in lines if line.startswith("| unique |"))
    assert unique.endswith("| – |")  # no perplexity
    assert any(line.startswith("| *reference* |") for line in lines)
    assert "## Paired difference from stock (model − stock)" in printed


def test_markdown_without_perplexity(tmp_path):
    write_folder(tmp_path, nll=False)
    assert "Perplexity" not in study_markdown(score_study(tmp_path, resamples=20))


def test_seeded_study_is_reproducible(folder):
    assert score_study(folder, resamples=30, seed=1) == score_study(folder, resamples=30, seed=1)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path / "missing", "is not a folder"),
        (lambda path: path, "has no responses.jsonl"),
    ],
)
def test_bad_folder_is_one_error_line(tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as stop:
        run_cli(main, [str(make(tmp_path))])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and message in error and error.count("\n") == 1


def test_inconsistent_rows_are_errors(tmp_path):
    rows = write_folder(tmp_path)
    path = tmp_path / "responses.jsonl"
    rows[3]["responses"]["stock"].pop("1")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match=r"row 3: model 'stock' has responses for seeds \['0'\], the first row for"):
        score_study(tmp_path, resamples=10)
    rows[3]["responses"]["stock"]["1"] = "back"
    rows[5]["nll"].pop("mirror")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ValueError, match="some rows have model 'mirror's NLL"):
        score_study(tmp_path, resamples=10)
    with pytest.raises(ValueError, match="baseline 'sft' is not a model here"):
        score_study(tmp_path, baseline="sft")


def test_module_entry_point(tmp_path):
    # The egail under test, wherever the working directory is (another checkout may be the installed one).
    env = {**os.environ, "PYTHONPATH": str(Path(egail.__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "egail.evaluation.study", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 2
    expected = f"error: {tmp_path} has no responses.jsonl; it is not a folder written by the evaluation."
    assert done.stderr.strip().splitlines() == [expected]
