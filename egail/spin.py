"""SPIN (Chen et al. 2024, "Self-Play Fine-Tuning"): adversarial imitation as preference learning.

One SPIN iteration is DPO with the expert's response as *chosen* and the starting policy's own sample for the same
state as *rejected*; the starting policy is also DPO's reference (the "opponent" of the paper), so the trained
policy learns to tell its old self from the expert by its log-ratio, where GAIL learns a separate discriminator and
rewards the policy with it.

So that the GAIL-vs-MLE study compares methods and not their inputs, a state here is the state GAIL and SFT see
(`egail.formatting.fit_state`), one-liners are left out as GAIL leaves them out, and the expert response is cut to
the sample's token budget as GAIL cuts its demos, so that length alone cannot separate chosen from rejected.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from egail.formatting import build_messages, decode_reply, fit_state, has_chat_template, render_plain, response_ids
from egail.generation import GenerationSettings, generate_replies, stop_token_ids
from egail.models import load_causal_lm, load_tokenizer, resolve_model_path
from egail.schema import is_oneliner, validate_trajectories

if TYPE_CHECKING:
    from datasets import Dataset
    from peft import PeftConfig
    from trl import DPOConfig, DPOTrainer

logger = logging.getLogger(__name__)

#: The file that makes a folder a PEFT adapter rather than a full model.
ADAPTER_CONFIG = "adapter_config.json"
#: The adapter ``DPOTrainer`` adds as a frozen copy of the starting adapter, to serve as the reference policy.
TRL_REF_ADAPTER = "ref"


def build_spin_pairs(
    model: Any,
    tokenizer: Any,
    dataset: Dataset,
    *,
    max_new_tokens: int = 64,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 16,
    max_prompt_length: int | None = 512,
    history_max_turns: int | None = None,
    system_prompt: str | None = None,
) -> Dataset:
    """DPO preference pairs for one SPIN iteration: per state, the expert response (chosen) over ``model``'s own
    sample (rejected).

    ``prompt`` is the fitted state as chat messages (the plain rendering for tokenizers without a chat template),
    ``chosen``/``rejected`` assistant messages (or text); ``history``/``prompt_text`` are the fitted state, to trace a
    pair back to its row. The chosen response is the expert's answer as the policy would end it, cut at
    ``max_new_tokens`` tokens and decoded like the sample. One-liners are skipped, and a sample equal to the expert
    response is dropped: it expresses no preference. Sampling is seeded, so one seed gives the same pairs.
    """
    validate_trajectories(dataset, "dataset")
    if max_new_tokens < 1 or batch_size < 1:
        raise ValueError(f"max_new_tokens and batch_size must be at least 1, got {max_new_tokens}, {batch_size}.")
    if not (temperature > 0 and 0 < top_p <= 1):
        raise ValueError(f"sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature}, {top_p}.")
    rows = [row for row in dataset if not is_oneliner(row)]
    if not rows:
        raise ValueError("the dataset holds only one-liners, which SPIN (like GAIL) leaves out.")

    states = [
        fit_state(tokenizer, row["history"], row["prompt"], max_prompt_length, history_max_turns, system_prompt)
        for row in rows
    ]
    # Both sides are read by the one decoder of replies: the expert's tokens cut at max_new_tokens, the sample as
    # generated (one generation path for SPIN, evaluation and the chat), so neither length nor finish tells them apart.
    stops = stop_token_ids(model, tokenizer)
    experts = [
        decode_reply(tokenizer, response_ids(tokenizer, row["response"])[:max_new_tokens], stops, max_new_tokens)
        for row in rows
    ]
    settings = GenerationSettings(
        max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, top_k=0, repetition_penalty=1.0
    )
    was_training = model.training
    samples = generate_replies(
        model, tokenizer, [state.input_ids for state in states], settings, seed=seed, batch_size=batch_size
    )
    model.train(was_training)

    chat = has_chat_template(tokenizer)
    pairs = []
    for state, expert, sample in zip(states, experts, samples, strict=True):
        if sample == expert:
            continue
        messages = build_messages(state.history, state.prompt, system_prompt)
        pairs.append(
            {
                "prompt": messages if chat else render_plain(messages),
                "chosen": [{"role": "assistant", "content": expert}] if chat else expert,
                "rejected": [{"role": "assistant", "content": sample}] if chat else sample,
                "history": state.history,
                "prompt_text": state.prompt,
            }
        )
    logger.info(
        "SPIN pairs: %d of %d rows (%d one-liners skipped, %d samples equal to the expert dropped)",
        len(pairs), len(dataset), len(dataset) - len(rows), len(rows) - len(pairs),
    )  # fmt: skip
    if not pairs:
        raise ValueError("every sample equals its expert response: there is no preference to learn from.")
    from datasets import Dataset

    return Dataset.from_list(pairs)


def _same_model(name: str, other: str) -> bool:
    """Whether two model names or paths load the same model (an embedded name and its converted folder agree)."""
    name, other = resolve_model_path(name), resolve_model_path(other)
    if Path(name).exists() and Path(other).exists():
        return Path(name).resolve() == Path(other).resolve()
    return name == other


def load_spin_policy(
    model_name_or_path: str, base_model: str | None = None, trust_remote_code: bool = False
) -> tuple[Any, Any]:
    """The policy a SPIN iteration starts from, and its tokenizer.

    A folder with ``adapter_config.json`` is a LoRA adapter: it is loaded trainable on its base (``base_model``, or
    the base the adapter records), so DPO continues it and keeps the starting adapter as the reference. A base that
    differs from the recorded one is a ``ValueError``: the adapter's weights mean nothing on another model. Anything
    else is a full model (an embedded name, a folder or a Hub id).
    """
    path = Path(model_name_or_path)
    if not (path / ADAPTER_CONFIG).is_file():
        if path.is_dir() and not (path / "config.json").is_file():
            raise FileNotFoundError(
                f"{path} holds neither {ADAPTER_CONFIG} (a LoRA adapter) nor config.json (a model)."
            )
        model = load_causal_lm(model_name_or_path, trust_remote_code=trust_remote_code)
        return model, load_tokenizer(model_name_or_path, trust_remote_code=trust_remote_code)

    from peft import PeftConfig, PeftModel

    recorded = PeftConfig.from_pretrained(str(path)).base_model_name_or_path
    if base_model is not None and recorded and not _same_model(base_model, recorded):
        raise ValueError(f"the adapter {path} was trained on '{recorded}', not on --base_model '{base_model}'.")
    base_name = base_model or recorded
    if not base_name:
        raise ValueError(f"the adapter {path} does not record its base model; pass --base_model.")
    base = load_causal_lm(base_name, trust_remote_code=trust_remote_code)
    model = PeftModel.from_pretrained(base, str(path), is_trainable=True)
    # SFT saves its tokenizer with the adapter; an adapter saved without one uses its base's.
    tokenizer_source = str(path) if (path / "tokenizer_config.json").is_file() else base_name
    return model, load_tokenizer(tokenizer_source, trust_remote_code=trust_remote_code)


def train_spin(
    model: Any, tokenizer: Any, pairs: Dataset, args: DPOConfig, peft_config: PeftConfig | None = None
) -> DPOTrainer:
    """Run one SPIN iteration (DPO on ``pairs``) and save the result to ``args.output_dir``.

    The reference is the starting policy: for a loaded adapter, TRL's ``DPOTrainer`` trains the adapter and keeps a
    frozen copy of it (adapter ``"ref"``); for a full model with ``peft_config``, the base with the new adapter
    disabled; for a full model alone, a second copy of it. The frozen copy is removed before saving, so the output
    folder is the one trained adapter (or model) plus the tokenizer, loadable like the SFT output.
    """
    from accelerate.utils import is_peft_model
    from trl import DPOTrainer

    trainer = DPOTrainer(
        model=model, args=args, train_dataset=pairs, processing_class=tokenizer, peft_config=peft_config
    )
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    policy = trainer.accelerator.unwrap_model(trainer.model)
    if is_peft_model(policy) and TRL_REF_ADAPTER in policy.peft_config:
        policy.delete_adapter(TRL_REF_ADAPTER)
    trainer.save_model(args.output_dir)
    return trainer
