"""Shared fixtures: tiny random models (fast tests), the embedded models (slow tests), the raw corpora, the recipes'
tiny overrides and the Space's module and responder (used by tests/space and tests/reliability)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

# Tests never reach the Hub: everything they load is embedded, generated here, or on disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")


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


@pytest.fixture
def tiny_overrides(tmp_path, tiny_lm_path, tiny_encoder_path) -> list[str]:
    """Command-line overrides that shrink any GAIL config to one fast step on tiny models."""
    return [
        "--model_name_or_path", tiny_lm_path,
        "--discriminator_encoder", tiny_encoder_path,
        "--dataset_name", "embedded",
        "--output_dir", str(tmp_path / "out"),
        "--max_steps", "1",
        "--num_generations", "4",
        "--generation_batch_size", "8",
        "--per_device_train_batch_size", "4",
        "--max_completion_length", "8",
        "--discriminator_pretrain_steps", "1",
        "--sft_warmup_steps", "1",
        "--before_after_rows", "0",
        "--warmup_steps", "0",
        "--use_cpu", "true",
        "--bf16", "false",
        "--report_to", "none",
        "--logging_steps", "1",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def space_app():
    """``space/app.py`` as a module (the Space folder is not a package; "app" is too common a name)."""
    spec = importlib.util.spec_from_file_location("egail_space_app", REPO_ROOT / "space" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def tiny_responder(tiny_lm_path):
    from egail.chat import EmpatheticResponder, GenerationSettings

    return EmpatheticResponder.from_pretrained(
        tiny_lm_path, settings=GenerationSettings(max_new_tokens=8, do_sample=False), device="cpu"
    )


@pytest.fixture
def trainer_factory(tmp_path, tiny_lm_path, tiny_encoder_path):
    """Builds a `GAILTrainer` on the tiny models; keyword arguments override `tests.helpers.make_args`."""
    from egail import GAILTrainer
    from tests.helpers import make_args, trajectories

    def build(dataset=None, peft_config=None, **overrides):
        overrides.setdefault("discriminator_encoder", tiny_encoder_path)
        args = make_args(tmp_path, **overrides)
        dataset = dataset if dataset is not None else trajectories()
        return GAILTrainer(tiny_lm_path, args=args, train_dataset=dataset, peft_config=peft_config)

    return build
