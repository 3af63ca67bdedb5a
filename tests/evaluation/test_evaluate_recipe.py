"""recipes/evaluate_models.py: a real run as a script, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess

import pytest

from tests.helpers import PYTHON, RECIPES, load_recipe

TINY_FLAGS = ["--max-new-tokens", "3", "--top-p", "1.0", "--seeds", "0", "1", "--no-emotion", "--device", "cpu"]


def test_script_compares_two_models_on_the_embedded_test_split(tiny_lm_path, tmp_path):
    """Run as a script, with its folder first on sys.path."""
    out = tmp_path / "eval"
    command = [
        PYTHON, str(RECIPES / "evaluate_models.py"), "--models", f"base={tiny_lm_path}", f"again={tiny_lm_path}",
        "--dataset", "embedded", "--split", "test", "--max-samples", "5", "--out", str(out), *TINY_FLAGS,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ | {"EGAIL_DEBUG": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "## Table 2: perplexity and BLEU by conversation length" in result.stdout
    for name in ("results.json", "table.md", "examples.md", "responses.jsonl", "perplexity.png", "bleu.png"):
        assert (out / name).is_file(), name
    data = json.loads((out / "results.json").read_text())
    assert list(data["models"]) == ["base", "again"]
    assert data["dataset"] | {"id": "embedded", "split": "test", "rows": 5} == data["dataset"]
    assert data["settings"]["seeds"] == [0, 1] and data["settings"]["emotion_classifier"] is None
    # Same weights, same seeds, same settings: the same figures.
    assert data["results"]["base"]["bleu"]["all"] == data["results"]["again"]["bleu"]["all"]


def test_no_recipe_shadows_an_importable_module():
    """A script's folder leads sys.path: a recipe named like a package (``evaluate.py``) would hide it."""
    shadowed = [path.name for path in RECIPES.glob("*.py") if importlib.util.find_spec(path.stem) is not None]
    assert shadowed == []


def test_parse_models():
    parse = load_recipe("evaluate_models").parse_models
    assert parse(["smollm2-135m-instruct", "gail=outputs/gail"]) == {
        "smollm2-135m-instruct": "smollm2-135m-instruct",
        "gail": "outputs/gail",
    }
    with pytest.raises(ValueError, match="given twice"):
        parse(["a=x", "a=y"])
    with pytest.raises(ValueError, match="NAME=PATH"):
        parse(["=x"])


def _cli_error(argv: list[str], capsys) -> str:
    recipe = load_recipe("evaluate_models")
    with pytest.raises(SystemExit) as exit_info:
        recipe.run_cli(recipe.main, argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line_and_exit_code_2(tiny_lm_path, small_split, tmp_path, capsys, monkeypatch):
    import datasets

    monkeypatch.delenv("EGAIL_DEBUG", raising=False)
    assert "not a causal language model" in _cli_error(["--models", "minilm-l6", *TINY_FLAGS], capsys)
    assert "does not exist" in _cli_error(["--models", str(tmp_path / "nothing"), *TINY_FLAGS], capsys)

    no_response = tmp_path / "no-response"
    datasets.DatasetDict({"test": small_split.remove_columns("response")}).save_to_disk(str(no_response))
    capsys.readouterr()  # the save's progress bar
    err = _cli_error(["--models", tiny_lm_path, "--dataset", str(no_response), *TINY_FLAGS], capsys)
    assert "no-response" in err and "response" in err.split("no-response", 1)[1]

    # datasets cannot save_to_disk/load_from_disk an empty split, so hand one to the loader directly.
    import egail.data

    empty = datasets.DatasetDict({"test": small_split.select([])})
    monkeypatch.setattr(egail.data, "load_trajectories", lambda name: empty)
    assert "is empty" in _cli_error(["--models", tiny_lm_path, "--dataset", "empty", *TINY_FLAGS], capsys)
    monkeypatch.undo()

    err = _cli_error(["--models", tiny_lm_path, "--split", "nope", *TINY_FLAGS], capsys)
    assert "no split 'nope'" in err
    err = _cli_error(["--models", tiny_lm_path, "--temperature", "0", *TINY_FLAGS], capsys)
    assert "temperature must be > 0" in err
