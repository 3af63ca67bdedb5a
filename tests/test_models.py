"""Embedded model names, the conversion cache, and clear errors."""

from __future__ import annotations

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
