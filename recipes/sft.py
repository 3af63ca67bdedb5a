#!/usr/bin/env python
"""The MLE baseline: supervised fine-tuning on the expert responses with TRL's SFTTrainer.

    accelerate launch recipes/sft.py --config recipes/configs/sft.yaml

It sees exactly the states GAIL sees (same formatting), and its output folder is a valid `--model_name_or_path`
for recipes/train.py: SFT first, then GAIL, is the usual recipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from egail.cli import run_cli
from egail.data import load_trajectories
from egail.formatting import build_messages, has_chat_template, render_plain, response_suffix, truncate_history
from egail.models import SMOLLM2, load_causal_lm, load_tokenizer
from egail.schema import validate_trajectories


@dataclass
class ScriptArguments:
    dataset_name: str = field(
        default="embedded",
        metadata={"help": "Expert trajectories: 'embedded', a folder from `python -m egail.data build`, or a Hub id."},
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split to train on."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on a seeded sample of this size."})
    history_max_turns: int | None = field(default=None, metadata={"help": "Earlier turns kept in each state."})
    system_prompt: str | None = field(default=None, metadata={"help": "System message of every state."})


def to_prompt_completion(dataset, tokenizer, history_max_turns: int | None, system: str | None):
    """Expert trajectories as TRL prompt-completion rows, formatted like GAIL's states."""
    chat = has_chat_template(tokenizer)

    def convert(row: dict) -> dict:
        messages = build_messages(truncate_history(row["history"], history_max_turns), row["prompt"], system)
        if chat:
            return {"prompt": messages, "completion": [{"role": "assistant", "content": row["response"]}]}
        return {"prompt": render_plain(messages), "completion": row["response"] + response_suffix(tokenizer)}

    return dataset.map(convert, remove_columns=dataset.column_names, desc="Formatting for SFT")


def main(argv: list[str] | None = None) -> SFTTrainer:
    parser = TrlParser((ScriptArguments, SFTConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    model_name = model_args.model_name_or_path or SMOLLM2

    dataset = load_trajectories(script_args.dataset_name)
    if script_args.dataset_train_split not in dataset:
        raise ValueError(f"split '{script_args.dataset_train_split}' not in {script_args.dataset_name}: {list(dataset)}")
    train_dataset = dataset[script_args.dataset_train_split]
    validate_trajectories(train_dataset)
    if script_args.max_train_samples:
        count = min(script_args.max_train_samples, len(train_dataset))
        train_dataset = train_dataset.shuffle(seed=training_args.seed).select(range(count))

    tokenizer = load_tokenizer(model_name)
    model = load_causal_lm(model_name, trust_remote_code=getattr(training_args, "trust_remote_code", False))
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=to_prompt_completion(
            train_dataset, tokenizer, script_args.history_max_turns, script_args.system_prompt
        ),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(training_args.output_dir)
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


if __name__ == "__main__":
    run_cli(main)
