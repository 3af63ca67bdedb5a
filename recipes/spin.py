#!/usr/bin/env python
"""SPIN (Chen et al. 2024), one iteration: DPO with the expert response as chosen and the starting policy's own
sample for the same state as rejected.

    python recipes/spin.py --config recipes/configs/spin.yaml --model_name_or_path outputs/sft-lora

The start is usually the SFT adapter (recipes/sft.py with --use_peft): it is continued, and its starting weights are
DPO's reference. A full model also works (add --use_peft for a new adapter). States are sampled and fitted as in
recipes/train.py, so SPIN, SFT and GAIL see the same states; the pairs are written to ``spin_pairs.jsonl`` in the
output folder. Any field of DPOConfig, ModelConfig or ScriptArguments below can be set in the YAML file and
overridden on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from accelerate.utils import is_peft_model
from trl import DPOConfig, DPOTrainer, ModelConfig, TrlParser, get_peft_config

from egail.cli import run_cli
from egail.models import SMOLLM2
from egail.scripts import StateScriptArguments, load_splits
from egail.spin import build_spin_pairs, load_spin_policy, train_spin


@dataclass
class SpinScriptArguments(StateScriptArguments):
    """The recipes' data and state arguments, plus the starting adapter's base and how rejected replies are sampled."""

    base_model: str | None = field(
        default=None, metadata={"help": "Base of the starting adapter (None: the base the adapter records)."}
    )
    max_new_tokens: int = field(
        default=64, metadata={"help": "Tokens of a rejected sample; the chosen response is cut to as many."}
    )
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature of the rejected responses."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling of the rejected responses."})
    generation_batch_size: int = field(default=16, metadata={"help": "States sampled at once."})


def main(argv: list[str] | None = None) -> DPOTrainer:
    parser = TrlParser((SpinScriptArguments, DPOConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    if training_args.max_length is not None and (
        script_args.max_prompt_length is None
        or training_args.max_length < script_args.max_prompt_length + script_args.max_new_tokens
    ):
        raise ValueError(
            f"max_length ({training_args.max_length}) must hold max_prompt_length ({script_args.max_prompt_length}) "
            f"+ max_new_tokens ({script_args.max_new_tokens}), or DPO cuts the responses it compares."
        )

    # The same seeded sample as recipes/train.py and recipes/sft.py draw; one-liners are dropped afterwards, as GAIL.
    if script_args.before_after_rows or script_args.max_cpu_seconds:
        raise ValueError("spin.py takes neither --before_after_rows nor --max_cpu_seconds (train.py and sft.py do).")
    train_dataset, _ = load_splits(script_args, training_args.seed)

    model, tokenizer = load_spin_policy(
        model_args.model_name_or_path or SMOLLM2, script_args.base_model, training_args.trust_remote_code
    )
    peft_config = get_peft_config(model_args)
    if peft_config is not None and is_peft_model(model):
        raise ValueError(
            f"{model_args.model_name_or_path} is an adapter, which SPIN continues: drop --use_peft (a new adapter)."
        )
    pairs = build_spin_pairs(
        model, tokenizer, train_dataset,
        max_new_tokens=script_args.max_new_tokens, temperature=script_args.temperature, top_p=script_args.top_p,
        seed=training_args.seed, batch_size=script_args.generation_batch_size,
        max_prompt_length=script_args.max_prompt_length, history_max_turns=script_args.history_max_turns,
        system_prompt=script_args.system_prompt,
    )  # fmt: skip
    trainer = train_spin(model, tokenizer, pairs, training_args, peft_config)
    if trainer.accelerator.is_main_process:
        pairs.to_json(Path(training_args.output_dir) / "spin_pairs.jsonl")
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


if __name__ == "__main__":
    run_cli(main)
