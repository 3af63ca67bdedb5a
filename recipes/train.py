#!/usr/bin/env python
"""Train an empathetic chatbot with GAIL.

    accelerate launch recipes/train.py --config recipes/configs/empathygail.yaml
    python recipes/train.py --config recipes/configs/quickstart-cpu.yaml
    torchrun --nproc_per_node 2 recipes/train.py --config recipes/configs/quickstart-cpu.yaml   # CPU processes

Any field of GAILConfig, ModelConfig (incl. --use_peft and the LoRA fields) or egail.scripts.ScriptArguments can be set
in the YAML file and overridden on the command line.
"""

from __future__ import annotations

from trl import ModelConfig, TrlParser, get_peft_config

from egail import GAILConfig, GAILTrainer
from egail.cli import run_cli
from egail.models import SMOLLM2
from egail.plotting import TrainingCurvesCallback
from egail.scripts import ScriptArguments, load_splits, print_before_after, script_callbacks


def model_init_kwargs(model_args: ModelConfig, trust_remote_code: bool) -> dict:
    kwargs = {"revision": model_args.model_revision, "trust_remote_code": trust_remote_code}
    if model_args.dtype not in (None, "auto"):
        kwargs["dtype"] = model_args.dtype
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    return kwargs


def main(argv: list[str] | None = None) -> GAILTrainer:
    parser = TrlParser((ScriptArguments, GAILConfig, ModelConfig))
    script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    training_args.model_init_kwargs = training_args.model_init_kwargs or model_init_kwargs(
        model_args, training_args.trust_remote_code
    )

    train_dataset, eval_dataset = load_splits(script_args, training_args.seed)

    trainer = GAILTrainer(
        model_args.model_name_or_path or SMOLLM2,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        peft_config=get_peft_config(model_args),
        callbacks=[TrainingCurvesCallback(), *script_callbacks(script_args)],
    )
    trainer.train(resume_from_checkpoint=training_args.resume_from_checkpoint)
    trainer.save_model(training_args.output_dir)
    if trainer.is_world_process_zero():
        print_before_after(
            script_args, model_args.model_name_or_path or SMOLLM2, training_args.output_dir,
            training_args.max_completion_length, training_args.history_max_turns,
        )  # fmt: skip
    if training_args.push_to_hub:
        trainer.push_to_hub(dataset_name=script_args.dataset_name)
    return trainer


if __name__ == "__main__":
    run_cli(main)
