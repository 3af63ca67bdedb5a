"""Pushing a GAIL run to the Hub: files, model card, the token kept secret, and clear errors.

The Hub here is a STAND-IN: ``tests/hub_standin.py``, a small HTTP server on 127.0.0.1 that answers the part of
the Hub's API used to create a repo, commit files and read them back. Nothing reaches huggingface.co. The client
side is the real one: ``GAILTrainer.push_to_hub`` -> ``egail.hub.push_run`` -> ``huggingface_hub.HfApi``, run
in a subprocess whose ``HF_ENDPOINT`` points at the stand-in (``huggingface_hub`` reads it at import), with the
token in ``HF_TOKEN`` as a user would have it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from egail.hub import (
    MODEL_CARD_TEMPLATE,
    adapter_config_for_hub,
    build_model_card,
    hub_base_model,
    push_run,
    run_kind,
    uploaded_files,
    without_secrets,
)
from tests.hub_standin import HubStandIn

REPO_ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_standinSECRET0123456789abcdefABCDEF"
FULL_REPO = "standin-user/egail-tiny"
LORA_REPO = "standin-user/lora-run"  # no hub_model_id: named after the output folder, under the token's user

# Trains a tiny full run for one step and pushes it with GAILTrainer.push_to_hub; pushes a LoRA run on the embedded
# SmolLM2 (untrained: the push does not depend on training, and a 135M step is slow on CPU); then loads the pushed
# policy and discriminator back from the stand-in. Prints one JSON line of results.
PUSH_SCRIPT = textwrap.dedent(
    """
    import json, logging, os, sys
    from pathlib import Path

    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM

    from egail import Discriminator, GAILTrainer
    from tests.helpers import make_args, trajectories

    logging.basicConfig(level=logging.DEBUG)  # everything the libraries log goes to the captured output
    tiny_lm, tiny_encoder, work = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    common = dict(max_steps=1, discriminator_encoder=tiny_encoder)

    full = GAILTrainer(tiny_lm, args=make_args(work / "full", hub_model_id="egail-tiny",
                       hub_token=os.environ["HF_TOKEN"], **common), train_dataset=trajectories())
    full.train()
    full_url = full.push_to_hub(dataset_name=["standin-user/empathetic-trajectories", "embedded"])

    lora_config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0)
    lora = GAILTrainer("smollm2-135m-instruct", args=make_args(work, output_dir=str(work / "lora-run"), **common),
                       train_dataset=trajectories(), peft_config=lora_config)
    lora_url = lora.push_to_hub(blocking=False).result()

    state = ([["I had a rough week."]], ["My dog died."], ["I'm so sorry. How are you?"])
    pulled_disc = Discriminator.from_pretrained("standin-user/egail-tiny", subfolder="discriminator")
    pulled_policy = AutoModelForCausalLM.from_pretrained("standin-user/egail-tiny")
    policy = full.model.state_dict()
    print("RESULT " + json.dumps({
        "full_url": full_url,
        "lora_url": lora_url,
        "score_diff": (pulled_disc.score(*state) - full.discriminator.score(*state).cpu()).abs().max().item(),
        "policy_equal": all(torch.equal(v, policy[k]) for k, v in pulled_policy.state_dict().items()),
    }))
    """
)


@pytest.fixture(scope="module")
def pushed(tmp_path_factory, tiny_lm_path, tiny_encoder_path):
    """The stand-in after both pushes, the script's results, its whole output, and the local run folders."""
    work = tmp_path_factory.mktemp("hub-runs")
    with HubStandIn(token=TOKEN) as hub:
        env = {
            **os.environ,
            **hub.env(),
            "HF_HOME": str(work / "hf-home"),
            "PYTHONPATH": str(REPO_ROOT),
            "HF_DEBUG": "1",
        }  # HF_DEBUG: huggingface_hub logs every request (as a curl command)
        process = subprocess.run(
            [sys.executable, "-c", PUSH_SCRIPT, tiny_lm_path, tiny_encoder_path, str(work)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        output = process.stdout + process.stderr
        assert process.returncode == 0, output[-5000:]
        assert not hub.unhandled, hub.unhandled
        result = json.loads(next(line for line in process.stdout.splitlines() if line.startswith("RESULT "))[7:])
        yield hub, result, output, work


def card_metadata(readme: bytes) -> dict:
    text = readme.decode()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


# ------------------------------------------------------------------------------------- the pushed repos
def test_full_run_pushes_policy_tokenizer_discriminator_and_card(pushed):
    hub, result, _, _ = pushed
    files = hub.files(FULL_REPO)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "discriminator/config.json", "discriminator/model.safetensors", "discriminator/tokenizer.json",
                 "training_config.json", "README.md"):  # fmt: skip
        assert name in files, name
    assert not [p for p in files if p.endswith((".bin", ".pt")) or p.startswith(("checkpoint-", "runs/"))]
    assert files["model.safetensors"][:8] != b"version "  # real weights, not an LFS pointer
    assert result["full_url"] == f"{hub.url}/{FULL_REPO}/commit/{hub.commits(FULL_REPO)[-1].oid}"
    assert len(hub.commits(FULL_REPO)) == 2  # the repo's creation, then everything in one commit


def test_pushed_models_load_back_from_the_hub(pushed):
    _, result, _, _ = pushed
    assert result["policy_equal"]
    assert result["score_diff"] < 1e-6


def test_card_metadata_and_sections(pushed):
    hub, _, _, _ = pushed
    readme = hub.files(FULL_REPO)["README.md"]
    metadata = card_metadata(readme)
    assert metadata["tags"][:5] == ["egail", "gail", "trl", "empathy", "dialogue"]
    assert metadata["library_name"] == "transformers"
    assert metadata["license"] == "apache-2.0"
    assert metadata["pipeline_tag"] == "text-generation"
    assert metadata["datasets"] == ["standin-user/empathetic-trajectories"]  # "embedded" is not a Hub id
    assert "base_model" not in metadata  # the tiny test policy is a local checkpoint
    text = readme.decode()
    caveats = ["not a therapist", "must **not be used for crisis", "is not sufficient", "section 7",
               "invents experiences", "Biases and errors"]  # fmt: skip
    usage = [f'EmpatheticResponder.from_pretrained("{FULL_REPO}")',
             f'AutoModelForCausalLM.from_pretrained("{FULL_REPO}")',
             f'Discriminator.from_pretrained("{FULL_REPO}", subfolder="discriminator")']  # fmt: skip
    config = ["| `discriminator_hidden_sizes` | [100, 100] |", "| `max_steps` | 1 |", "`embedded`"]
    for phrase in caveats + usage + config + ["2105.13328", "2004.13796", "No evaluation was recorded"]:
        assert phrase in text, phrase
    assert "num_train_epochs" not in text  # max_steps decides the length of the run


def test_lora_run_pushes_the_adapter_and_discriminator(pushed):
    hub, result, _, work = pushed
    files = hub.files(LORA_REPO)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json",
                 "discriminator/config.json", "discriminator/model.safetensors", "README.md"):  # fmt: skip
        assert name in files, name
    assert "model.safetensors" not in files
    metadata = card_metadata(files["README.md"])
    assert metadata["library_name"] == "peft"
    assert metadata["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    text = files["README.md"].decode()
    assert "AutoPeftModelForCausalLM" in text and "de-quantised from the Q4_1 GGUF" in text
    assert result["lora_url"].startswith(f"{hub.url}/{LORA_REPO}/commit/")
    # The local cache path of the embedded base becomes its Hub id in the pushed copy only.
    assert json.loads(files["adapter_config.json"])["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    local = json.loads((work / "lora-run" / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(local, "egail_converted.json").is_file()


def test_training_args_pickle_stays_local_and_config_is_json(pushed):
    hub, _, _, work = pushed
    assert (work / "full" / "run" / "training_args.bin").is_file()  # written by transformers, never pushed
    assert "training_args.bin" not in hub.files(FULL_REPO)
    config = json.loads(hub.files(FULL_REPO)["training_config.json"])
    assert config["max_steps"] == 1 and config["discriminator_hidden_sizes"] == [100, 100]
    assert not [key for key in config if "token" in key.lower()]


def test_token_is_in_no_uploaded_file_and_no_log_line(pushed):
    hub, _, output, work = pushed
    assert "Authorization" in output or "authorization" in output  # HF_DEBUG logged the requests ...
    assert TOKEN not in output  # ... with the token hidden
    for repo in (FULL_REPO, LORA_REPO):
        leaks = [path for path, content in hub.files(repo).items() if TOKEN.encode() in content]
        assert not leaks, f"{repo}: {leaks}"
        for commit in hub.commits(repo):
            assert TOKEN not in json.dumps(commit.operations) + commit.message
    assert not [p for p in work.rglob("*") if p.is_file() and p.suffix in (".json", ".md")
                and "hf-home" not in p.parts and TOKEN in p.read_text(errors="ignore")]  # fmt: skip


# ----------------------------------------------------------------------------------------------- errors
def make_run_dir(path: Path, files: list[str]) -> Path:
    for name in files:
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(b"{}")
    return path


POLICY = ["config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json"]
DISCRIMINATOR = ["discriminator/config.json", "discriminator/model.safetensors"]


@pytest.mark.parametrize(
    "files, missing",
    [
        (POLICY, ["discriminator/config.json", "discriminator/model.safetensors"]),
        (POLICY[:1] + POLICY[2:] + DISCRIMINATOR, ["model.safetensors or model.safetensors.index.json"]),
        (["config.json", "pytorch_model.bin"] + POLICY[2:] + DISCRIMINATOR, ["found only pickled pytorch_model.bin"]),
        (["adapter_config.json"] + POLICY[2:] + DISCRIMINATOR, ["adapter_model.safetensors"]),
        (POLICY[:2] + DISCRIMINATOR, ["tokenizer_config.json and one of tokenizer.json"]),
        ([], ["config.json or adapter_config.json", "tokenizer_config.json", "discriminator/config.json"]),
    ],
)
def test_incomplete_run_is_a_clear_error_before_any_request(tmp_path, files, missing):
    run = make_run_dir(tmp_path / "run", files) if files else tmp_path
    with pytest.raises(FileNotFoundError, match="is not a complete GAIL run") as error:
        push_run(run, "user/model", token=TOKEN)  # fails before the (unreachable) Hub is contacted
    for part in missing:
        assert part in str(error.value)


def test_run_kind(tmp_path):
    assert run_kind(make_run_dir(tmp_path / "full", POLICY + DISCRIMINATOR)) == "full"
    adapter = ["adapter_config.json", "adapter_model.safetensors"] + POLICY[2:] + DISCRIMINATOR
    assert run_kind(make_run_dir(tmp_path / "lora", adapter)) == "adapter"
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        run_kind(tmp_path / "absent")


def test_a_file_holding_the_token_stops_the_push(tmp_path):
    run = make_run_dir(tmp_path, POLICY + DISCRIMINATOR)
    (run / "notes.txt").write_text(f"login with {TOKEN}")
    with pytest.raises(ValueError, match="the Hub token appears in notes.txt") as error:
        push_run(run, "user/model", token=TOKEN)
    assert TOKEN not in str(error.value)


def test_no_token_is_a_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-login-cache"))
    with pytest.raises(PermissionError, match="No Hugging Face token"):
        push_run(make_run_dir(tmp_path / "run", POLICY + DISCRIMINATOR), "user/model")


def test_adapter_base_model_is_renamed_only_to_a_hub_id(tmp_path, smollm2_path, caplog):
    run = make_run_dir(tmp_path, ["adapter_config.json"])
    for base, expected in ((smollm2_path, "HuggingFaceTB/SmolLM2-135M-Instruct"), ("Qwen/Qwen2.5-0.5B", None)):
        (run / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base, "r": 4}))
        renamed = adapter_config_for_hub(run)
        assert (json.loads(renamed)["base_model_name_or_path"] if renamed else None) == expected
    (run / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path)}))
    assert adapter_config_for_hub(run) is None
    assert "is not on the Hub; the pushed adapter needs that model" in caplog.text
    assert adapter_config_for_hub(tmp_path / "no-adapter") is None


def test_checkpoints_logs_and_pickles_are_not_uploaded(tmp_path):
    extra = ["checkpoint-2/model.safetensors", "runs/events.out", "training_args.bin", "optimizer.pt",
             "discriminator_optimizer.pt", "evaluation/table.md", ".git/HEAD"]  # fmt: skip
    run = make_run_dir(tmp_path, POLICY + DISCRIMINATOR + extra)
    assert uploaded_files(run) == sorted(POLICY + DISCRIMINATOR + ["evaluation/table.md"])


# ------------------------------------------------------------------------------------------------- card
def test_secrets_are_dropped_at_any_depth():
    config = {"hub_token": "x", "learning_rate": 1e-5, "model_init_kwargs": {"token": "x", "dtype": "float32"},
              "wandb_api_key": "x", "db_password": "x", "client_secret": "x", "seed": 0}  # fmt: skip
    assert without_secrets(config) == {"learning_rate": 1e-5, "model_init_kwargs": {"dtype": "float32"}, "seed": 0}


def test_base_model_ids(smollm2_path, tmp_path):
    assert hub_base_model("smollm2-135m-instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert hub_base_model(smollm2_path) == "HuggingFaceTB/SmolLM2-135M-Instruct"  # the converted embedded model
    assert hub_base_model("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    assert hub_base_model(str(tmp_path)) is None
    assert hub_base_model(None) is None


def test_card_from_arguments_and_the_runs_evaluation_table(tmp_path):
    run = make_run_dir(tmp_path, POLICY + DISCRIMINATOR)
    (run / "evaluation").mkdir()
    (run / "evaluation" / "table.md").write_text("| metric | GAIL |\n|---|---|\n| BLEU | 1.23 |\n")
    card = build_model_card(
        run,
        base_model="smollm2-135m-instruct",
        datasets=["user/trajectories"],
        training_args={"learning_rate": 1e-5, "hub_token": TOKEN, "system_prompt": "a | b", "demo_ratio_start": 0.3},
        license="mit",
        repo_id="user/egail-smollm2",
        tags=["custom", "gail"],
    )
    metadata = card.data.to_dict()
    assert metadata["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert metadata["license"] == "mit" and metadata["language"] == "en"
    assert metadata["tags"] == ["egail", "gail", "trl", "empathy", "dialogue", "custom"]
    text = str(card)
    assert "| BLEU | 1.23 |" in text
    assert "| `system_prompt` | a \\| b |" in text and "| `demo_ratio_start` | 0.3 |" in text
    assert TOKEN not in text and "hub_token" not in text
    assert "{{" not in text.replace("{{Generative", "").replace("{{TextGAIL", ""), "every template variable is filled"


def test_card_without_config_or_evaluation_says_so(tmp_path):
    text = str(build_model_card(make_run_dir(tmp_path, POLICY + DISCRIMINATOR)))
    assert "The training configuration was not recorded with this run." in text
    assert "No evaluation was recorded with this run." in text


def test_card_cites_the_trainers_paper_and_only_that(tmp_path):
    """The citation comes from the trainer's ``_paper`` alone: another paper there, another citation in the card."""
    from egail.trainer import GAILTrainer

    run = make_run_dir(tmp_path, POLICY + DISCRIMINATOR)
    text = str(build_model_card(run))
    assert GAILTrainer._paper["citation"] in text and f"arxiv.org/abs/{GAILTrainer._paper['id']}" in text
    other = {"title": "Another Paper", "id": "0000.00000", "citation": "@article{another2026,\n  title = {X}\n}"}
    text = str(build_model_card(run, paper=other, trainer_name="Other"))
    assert other["citation"] in text and "[Another Paper](https://arxiv.org/abs/0000.00000)" in text
    assert "muthukumar2021empathygail" not in text and "`OtherTrainer`" in text


def test_card_is_rendered_from_the_shipped_template(tmp_path, monkeypatch):
    """Edit the template file and the card changes: the body lives in the template, not in code."""
    import egail.hub

    assert MODEL_CARD_TEMPLATE.is_file()
    template = tmp_path / "card.md"
    template.write_text("---\n{{ card_data }}\n---\n\nCustom card for {{ repo_id }}.\n")
    monkeypatch.setattr(egail.hub, "MODEL_CARD_TEMPLATE", template)
    card = build_model_card(make_run_dir(tmp_path / "run", POLICY + DISCRIMINATOR), repo_id="user/x")
    assert card.text.strip() == "Custom card for user/x." and card.data.to_dict()["license"] == "apache-2.0"


def test_card_template_is_package_data():
    import tomllib

    package_data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    relative = MODEL_CARD_TEMPLATE.relative_to(REPO_ROOT / "egail").as_posix()
    assert any(Path(relative).match(pattern) for pattern in package_data["egail"]), relative
