#!/usr/bin/env python
"""The MLE baseline: supervised fine-tuning on the expert responses with TRL's SFTTrainer.

    accelerate launch recipes/sft.py --config recipes/configs/sft.yaml

It sees exactly the states GAIL sees: each state is fitted by `egail.formatting.fit_state` with the same
``history_max_turns``, ``max_prompt_length`` and ``system_prompt`` (GAILConfig's defaults), and each target ends as
GAIL's demos end (`egail.formatting.response_ids`). Its output folder is a valid `--model_name_or_path` for
recipes/train.py: SFT first, then GAIL, is the usual recipe.
"""

from __future__ import annotations

from trl import ModelConfig, SFTConfig, SFTTrainer, TrlParser, get_peft_config

from egail.cli import run_cli
from egail.formatting import fit_state, response_ids
from egail.models import SMOLLM2, load_causal_lm, load_tokenizer
from egail.scripts import StateScriptArguments, load_splits, script_callbacks


def tokenize_trajectories(dataset, tokenizer, script_args: StateScriptArguments):
    """Expert trajectories as SFT examples: the fitted state's tokens, then the response's, with the loss on the
    response alone. Tokenized here (TRL leaves ``input_ids``/``labels`` as given) so no re-tokenisation can merge
    tokens across the boundary or add special tokens GAIL's rollouts do not see."""

    def convert(row: dict) -> dict:
        state = fit_state(
            tokenizer,
            row["history"],
            row["prompt"],
            script_args.max_prompt_length,
            script_args.history_max_turns,
            script_args.system_prompt,
        )
        answer = response_ids(tokenizer, row["response"])
        return {"input_ids": state.input_ids + answer, "labels": [-100] * len(state.input_ids) + answer}

    return dataset.map(convert, remove_columns=dataset.column_names, desc="Fitting states for SFT")


def main(argv: list[str] | None = None) -> SFTTrainer:
    parser = TrlParser((StateScriptArguments, SFTConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    model_name = model_args.model_name_or_path or SMOLLM2
    train_dataset, eval_dataset = load_splits(script_args, training_args.seed)

    tokenizer = load_tokenizer(model_name)
    model = load_causal_lm(model_name, trust_remote_code=getattr(training_args, "trust_remote_code", False))
    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=tokenize_trajectories(train_dataset, tokenizer, script_args),
        eval_dataset=None if eval_dataset is None else tokenize_trajectories(eval_dataset, tokenizer, script_args),
        processing_class=tokenizer,
        peft_config=get_peft_config(model_args),
        callbacks=script_callbacks(script_args),
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
