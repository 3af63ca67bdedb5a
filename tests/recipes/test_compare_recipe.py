"""recipes/compare.py end to end on tiny models: four models trained alike, one table."""

from __future__ import annotations

import json

import pytest

from tests.helpers import load_recipe


@pytest.mark.slow
def test_compare_trains_four_models_and_writes_the_table(tmp_path, tiny_lm_path, tiny_encoder_path):
    out = load_recipe("compare").main(
        [
            "--source",
            "embedded",
            "--model",
            tiny_lm_path,
            "--out",
            str(tmp_path / "results"),
            "--work-dir",
            str(tmp_path / "work"),
            "--sft-steps",
            "1",
            "--gail-steps",
            "1",
            "--discriminator-pretrain-steps",
            "1",
            "--discriminator-encoder",
            tiny_encoder_path,
            "--eval-samples",
            "6",
            "--seeds",
            "0",
            "--max-new-tokens",
            "6",
        ]
    )
    results = json.loads((out / "results.json").read_text())
    assert {"base", "sft", "textgail", "empathygail"} <= set(json.dumps(results).split('"'))
    for name in ("table.md", "perplexity.png", "bleu.png", "examples.md", "run.md"):
        assert (out / name).is_file(), name
    run = json.loads((out / "run.json").read_text())
    assert set(run["timings_s"]) == {"data", "sft", "textgail", "empathygail", "evaluation"}
    assert "recipes/train.py" in (out / "run.md").read_text()
