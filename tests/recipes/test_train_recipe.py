"""recipes/train.py and recipes/sft.py: every YAML config runs, outputs are complete, CLI errors are clean."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import PYTHON, RECIPES, load_recipe

CONFIGS = sorted((RECIPES / "configs").glob("*.yaml"))
GAIL_CONFIGS = [c for c in CONFIGS if c.name not in {"sft.yaml", "spin.yaml"}]  # spin.yaml: tests/test_spin.py


def test_the_four_configs_exist():
    names = {"empathygail.yaml", "textgail.yaml", "quickstart-cpu.yaml", "sft.yaml", "spin.yaml"}
    assert {c.name for c in CONFIGS} == names


@pytest.mark.parametrize("config", GAIL_CONFIGS, ids=lambda c: c.stem)
def test_gail_config_parses_and_runs_one_step(config, tiny_overrides, tmp_path):
    trainer = load_recipe("train").main(["--config", str(config), *tiny_overrides])
    out = tmp_path / "out"
    assert trainer.state.global_step == 1
    assert (out / "model.safetensors").is_file() and (out / "discriminator" / "model.safetensors").is_file()
    assert (out / "training_curves.png").is_file()
    if config.stem == "textgail":
        assert trainer.args.sentiment_history_weight == 0 and trainer.args.demo_advantage == 2.0
    if config.stem == "empathygail":
        assert trainer.args.demo_ratio_start == 0.3 and trainer.args.discriminator_hidden_sizes == [100, 100]


def test_quickstart_warms_up_then_prints_a_before_after_table(tiny_overrides, tmp_path, capsys):
    config = RECIPES / "configs" / "quickstart-cpu.yaml"
    overrides = [*tiny_overrides]
    overrides[overrides.index("--sft_warmup_steps") + 1] = "2"
    overrides[overrides.index("--before_after_rows") + 1] = "4"
    trainer = load_recipe("train").main(["--config", str(config), *overrides])
    assert trainer.policy_warmed_up and trainer.args.sft_warmup_steps == 2
    printed = capsys.readouterr().out
    assert "Before/after on 4 held-back rows (test)" in printed
    for line in ("reference perplexity (per token)", "BLEU-2", "reply length (words)", "reference length (words)"):
        assert line in printed
    assert "before:" in printed and "after:" in printed  # the replies side by side


def test_lora_flag_trains_an_adapter(tiny_overrides, tmp_path):
    config = RECIPES / "configs" / "quickstart-cpu.yaml"
    load_recipe("train").main(
        [
            "--config",
            str(config),
            *tiny_overrides,
            "--use_peft",
            "--lora_r",
            "4",
            "--lora_target_modules",
            "q_proj",
            "v_proj",
        ]
    )
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    assert (tmp_path / "out" / "discriminator" / "config.json").is_file()


def test_sft_config_runs_one_step(tmp_path, tiny_lm_path):
    trainer = load_recipe("sft").main(
        [
            "--config",
            str(RECIPES / "configs" / "sft.yaml"),
            "--model_name_or_path",
            tiny_lm_path,
            "--dataset_name",
            "embedded",
            "--output_dir",
            str(tmp_path / "sft"),
            "--max_steps",
            "1",
            "--per_device_train_batch_size",
            "2",
            "--use_cpu",
            "true",
            "--bf16",
            "false",
            "--report_to",
            "none",
            "--warmup_steps",
            "0",
        ]
    )
    assert trainer.state.global_step == 1
    assert (tmp_path / "sft" / "model.safetensors").is_file() and (
        tmp_path / "sft" / "tokenizer_config.json"
    ).is_file()


def test_sft_sees_gails_states_and_learns_only_the_response(tiny_lm_path):
    """SFT's examples: the state as `fit_state` fits it for GAIL (same turns and token budget), then the response
    as GAIL's demos end it; only the response carries a loss."""
    from datasets import Dataset

    from egail.formatting import fit_state, response_ids
    from egail.models import load_tokenizer
    from egail.scripts import StateScriptArguments

    sft = load_recipe("sft")
    tokenizer = load_tokenizer(tiny_lm_path)
    history = [f"turn {i}: " + "words " * 30 for i in range(8)]
    rows = Dataset.from_list([{"history": history, "prompt": "What now?", "response": "Take a breath."}])
    args = StateScriptArguments(history_max_turns=3, max_prompt_length=120)
    (example,) = sft.tokenize_trajectories(rows, tokenizer, args).to_list()
    state = fit_state(tokenizer, history, "What now?", 120, history_max_turns=3)
    assert len(state.history) < 6, "the token budget, not only the turn cap, shortened the history"
    answer = response_ids(tokenizer, "Take a breath.")
    assert example["input_ids"] == state.input_ids + answer
    assert example["labels"] == [-100] * len(state.input_ids) + answer
    defaults = StateScriptArguments()
    from egail import GAILConfig

    gail = GAILConfig(output_dir="unused", report_to="none")
    assert (defaults.max_prompt_length, defaults.history_max_turns, defaults.system_prompt) == (
        gail.max_prompt_length,
        gail.history_max_turns,
        gail.system_prompt,
    )


def test_sft_gail_and_spin_share_their_script_arguments():
    from egail.scripts import ScriptArguments, StateScriptArguments

    assert load_recipe("train").ScriptArguments is ScriptArguments
    assert load_recipe("sft").StateScriptArguments is StateScriptArguments
    assert issubclass(load_recipe("spin").SpinScriptArguments, StateScriptArguments)


def run_train(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, str(RECIPES / "train.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )


def assert_clean_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert lines and fragment in lines[-1], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def test_unknown_config_key_is_a_clean_error(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model_name_or_path: x\nnot_a_real_field: 3\n")
    assert_clean_error(run_train("--config", str(config), cwd=tmp_path), "not_a_real_field")


def test_missing_config_file_is_a_clean_error(tmp_path):
    assert_clean_error(run_train("--config", str(tmp_path / "nope.yaml"), cwd=tmp_path), "nope.yaml")


def test_missing_dataset_is_a_clean_error(tmp_path, capsys):
    from egail.cli import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            load_recipe("train").main,
            ["--dataset_name", str(tmp_path / "no-such-data"), "--output_dir", str(tmp_path)],
        )
    assert exit_info.value.code == 2
    assert "no-such-data" in capsys.readouterr().err


def test_non_causal_model_is_a_clean_error(tmp_path, capsys, tiny_encoder_path):
    from egail.cli import run_cli

    with pytest.raises(SystemExit) as exit_info:
        run_cli(
            load_recipe("train").main,
            ["--model_name_or_path", tiny_encoder_path, "--output_dir", str(tmp_path), "--use_cpu", "true"],
        )
    assert exit_info.value.code == 2
    assert "not a causal language model" in capsys.readouterr().err
