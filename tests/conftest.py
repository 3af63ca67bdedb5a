"""Shared fixtures: tiny random models (fast tests), the embedded models (slow tests), the raw corpora."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the Hub: everything they load is embedded, generated here, or on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]


def raw_data_dir() -> Path:
    """The shared raw corpora (never copied into the repo): ``$EGAIL_RAW_DATA`` or ``../shared/data/raw``."""
    return Path(os.environ.get("EGAIL_RAW_DATA", REPO_ROOT.parent / "shared" / "data" / "raw"))


@pytest.fixture(scope="session")
def raw_data() -> Path:
    path = raw_data_dir()
    if not path.is_dir():
        pytest.skip(f"raw corpora not found at {path} (set EGAIL_RAW_DATA)")
    return path


@pytest.fixture(scope="session")
def smollm2_path() -> str:
    """The embedded SmolLM2 as a normal checkpoint (converted once into the egail cache)."""
    from egail.models import SMOLLM2, resolve_model_path

    return resolve_model_path(SMOLLM2)


@pytest.fixture(scope="session")
def minilm_path() -> str:
    from egail.models import MINILM, resolve_model_path

    return resolve_model_path(MINILM)


@pytest.fixture(scope="session")
def tiny_lm_path(tmp_path_factory, smollm2_path) -> str:
    """A 2-layer random Llama with SmolLM2's real tokenizer and chat template: fast, but realistic text."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(smollm2_path)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-lm")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_encoder_path(tmp_path_factory, minilm_path) -> str:
    """A 2-layer random BERT with MiniLM's tokenizer, standing in for the discriminator encoder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=512,
    )
    torch.manual_seed(0)
    model = BertModel(config)
    path = tmp_path_factory.mktemp("tiny-encoder")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)
