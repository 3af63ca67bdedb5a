"""recipes/ship_default.py: which study model becomes the default chatbot, and the folder it ships."""

from __future__ import annotations

import json

import pytest

from tests.helpers import load_recipe


@pytest.fixture(scope="module")
def ship():
    return load_recipe("ship_default")


def _figures(bleu2, distinct2, auc, perplexity):
    return {"figures": {"bleu2": {"value": bleu2}, "distinct2": {"value": distinct2},
                        "realism_auc": {"value": auc}, "perplexity": {"value": perplexity}}}  # fmt: skip


def test_the_best_model_wins_on_the_ranked_metrics_within_the_perplexity_margin(ship):
    study = {"models": {
        "base": _figures(9.0, 0.9, 0.50, 30.0),  # not a trained model: never shipped
        "sft": _figures(3.0, 0.30, 0.90, 10.0),
        "sft-equal-compute": _figures(3.2, 0.31, 0.89, 9.8),
        "empathygail": _figures(3.5, 0.35, 0.85, 10.5),  # wins every ranked metric, perplexity +7 %
        "spin": _figures(4.0, 0.40, 0.80, 12.0),  # better still, but perplexity +22 %: not eligible
    }}  # fmt: skip
    best, why = ship.choose_best(study)
    assert best == "empathygail" and "spin" not in why.split(" among ")[1]
    study["models"]["empathygail"] = _figures(3.5, 0.35, 0.85, 11.0)  # +12 %: out of the margin
    assert ship.choose_best(study)[0] == "sft-equal-compute"
    study["models"]["empathygail-lr1e-4"] = _figures(3.6, 0.36, 0.84, 10.0)  # an ablation competes like the rest
    assert ship.choose_best(study)[0] == "empathygail-lr1e-4"


def test_an_ablation_is_carded_as_the_variant_it_varies_and_other_names_are_refused(ship):
    assert ship.trainer_of("empathygail-d4-lr1e-4") == ship.trainer_of("empathygail") == ("GAIL", "gail")
    assert ship.trainer_of("sft-equal-compute") == ("SFT", "sft")
    for name in ("base", "sft-longer", "gail"):
        with pytest.raises(ValueError, match="not one of a study's models"):
            ship.trainer_of(name)


def _study(tmp_path, base="smollm2-135m-instruct"):
    study = tmp_path / "study"
    adapter = study / "adapters" / "sft"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "peft_type": "LORA"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"0" * 1000)
    (adapter / "stage.json").write_text(json.dumps({"command": ["python", "recipes/sft.py"], "cpu_s": 1.0}))
    return study


def test_shipping_writes_the_adapter_its_card_license_and_provenance(ship, tmp_path):
    out = ship.main(["--study", str(_study(tmp_path)), "--model", "sft", "--out", str(tmp_path / "default")])
    assert sorted(p.name for p in out.iterdir()) == [
        "LICENSE.md", "README.md", "adapter_config.json", "adapter_model.safetensors", "shipped.json",
    ]  # fmt: skip
    card = (out / "README.md").read_text()
    assert "license: cc-by-nc-sa-4.0" in card and "supervised fine-tuning" in card and "Discriminator" not in card
    shipped = json.loads((out / "shipped.json").read_text())
    assert shipped["model"] == "sft" and shipped["why"] == "named on the command line"
    assert not (tmp_path / "default.staging").exists()


def test_bad_input_is_a_clear_error_and_leaves_the_shipped_folder_alone(ship, tmp_path):
    out = tmp_path / "default"
    out.mkdir()
    (out / "keep.txt").write_text("the shipped chatbot")
    with pytest.raises(ValueError, match="name a --model"):
        ship.main(["--study", str(_study(tmp_path)), "--out", str(out)])
    with pytest.raises(FileNotFoundError, match="spin stage finished"):
        ship.main(["--study", str(tmp_path / "study"), "--model", "spin", "--out", str(out)])
    other = _study(tmp_path / "other", base="gpt2")
    with pytest.raises(ValueError, match="not on smollm2-135m-instruct"):
        ship.main(["--study", str(other), "--model", "sft", "--out", str(out)])
    assert (out / "keep.txt").read_text() == "the shipped chatbot"
