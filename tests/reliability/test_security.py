"""Security: no remote code, no pickles, no leaked Hub token, no server internals in the Space's answers.

- ``trust_remote_code`` is off by default everywhere: every ``Auto*.from_pretrained`` in egail, the Space
  and the recipes says so explicitly (transformers' own default *asks* on a terminal), and a folder whose
  ``auto_map`` points at custom code is refused by every loader, even when a user would answer "y".
- Only safetensors weights load; a pickle-only model or adapter is refused with a clear message before
  anything is unpickled.
- The Hub token from the arguments or the environment appears in no log line and no file of a run.
- The Space answers internal errors with a polite line: no traceback, no file path, no source file served.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import pickle
import re
import shutil
import socket
from pathlib import Path

import httpx
import pytest
import torch

from tests.helpers import REPO_ROOT, load_recipe

SOURCES = sorted([*(REPO_ROOT / "egail").rglob("*.py"), *(REPO_ROOT / "space").glob("*.py"),
                  *(REPO_ROOT / "recipes").glob("*.py")])  # fmt: skip
CONFIGS = sorted((REPO_ROOT / "recipes").rglob("*.yaml"))


# ------------------------------------------------------------------------------------------ remote code
def _from_pretrained_calls(path: Path):
    """(line, call, enclosing function source) of every ``Auto*.from_pretrained(...)`` in a file."""
    source = path.read_text()
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        func = getattr(node, "func", None)
        if (isinstance(node, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "from_pretrained"
                and isinstance(func.value, ast.Name) and func.value.id.startswith("Auto")):  # fmt: skip
            function = node
            while function in parents and not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                function = parents[function]
            yield node.lineno, node, ast.get_source_segment(source, function) or ""


def test_every_auto_loader_says_trust_remote_code():
    """Each call passes ``trust_remote_code=`` (never a literal True), or forwards ``**kwargs`` that default it
    to False; transformers' own default (None) prompts on a terminal and runs the code on "y"."""
    problems = []
    for path in SOURCES:
        for line, call, function in _from_pretrained_calls(path):
            where = f"{path.relative_to(REPO_ROOT)}:{line}"
            keywords = {k.arg: k.value for k in call.keywords}
            if "trust_remote_code" in keywords:
                value = keywords["trust_remote_code"]
                if isinstance(value, ast.Constant) and value.value is not False:
                    problems.append(f"{where}: trust_remote_code={value.value!r}")
            elif None in keywords:  # **kwargs
                if 'kwargs.setdefault("trust_remote_code", False)' not in function:
                    problems.append(f"{where}: forwards **kwargs without defaulting trust_remote_code to False")
            else:
                problems.append(f"{where}: no trust_remote_code=False")
    assert not problems, "\n".join(problems)
    assert sum(1 for p in SOURCES for _ in _from_pretrained_calls(p)) >= 8  # the scan really finds the loaders


def test_no_config_or_default_turns_remote_code_on():
    from egail import GAILConfig

    for config in CONFIGS:
        assert not re.search(r"trust_remote_code\s*:\s*(true|yes|1)", config.read_text(), re.IGNORECASE), config
    assert GAILConfig(output_dir="x", report_to=[]).trust_remote_code is False


@pytest.fixture
def remote_code_repo(tmp_path, tiny_lm_path, monkeypatch) -> tuple[Path, Path]:
    """A model folder whose config and tokenizer point at custom code that leaves a marker when imported."""
    marker = tmp_path / "REMOTE_CODE_RAN"
    repo = tmp_path / "remote-code-model"
    shutil.copytree(tiny_lm_path, repo)
    (repo / "sneaky.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast\n"
        "class SneakyConfig(LlamaConfig):\n    model_type = 'sneaky'\n"
        "class SneakyModel(LlamaForCausalLM):\n    config_class = SneakyConfig\n"
        "class SneakyTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    auto_map = {"AutoConfig": "sneaky.SneakyConfig", "AutoModel": "sneaky.SneakyModel",
                "AutoModelForCausalLM": "sneaky.SneakyModel"}  # fmt: skip
    config = json.loads((repo / "config.json").read_text())
    (repo / "config.json").write_text(json.dumps({**config, "model_type": "sneaky", "auto_map": auto_map}))
    tokenizer_config = json.loads((repo / "tokenizer_config.json").read_text())
    tokenizer_config.update(
        auto_map={"AutoTokenizer": [None, "sneaky.SneakyTokenizer"]}, tokenizer_class="SneakyTokenizer"
    )
    (repo / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr("builtins.input", lambda *args: "y")  # a user who would say yes to the prompt
    return repo, marker


def test_the_remote_code_trap_works(remote_code_repo):
    """Control: transformers' default (None) asks, gets "y", and runs the code. The tests below would see it."""
    from transformers import AutoConfig

    repo, marker = remote_code_repo
    AutoConfig.from_pretrained(repo)
    assert marker.is_file()


@pytest.mark.parametrize(
    "loader", ["load_causal_lm", "load_tokenizer", "discriminator_encoder", "responder", "recipe"]
)
def test_custom_code_is_refused_by_every_loader(remote_code_repo, loader, tiny_encoder_path, tmp_path):
    from egail.chat import EmpatheticResponder
    from egail.discriminator import Discriminator, DiscriminatorConfig
    from egail.models import load_causal_lm, load_tokenizer

    repo, marker = remote_code_repo
    load = {
        "load_causal_lm": lambda: load_causal_lm(str(repo)),
        "load_tokenizer": lambda: load_tokenizer(str(repo)),
        "discriminator_encoder": lambda: Discriminator(DiscriminatorConfig(encoder=str(repo))),
        "responder": lambda: EmpatheticResponder.from_pretrained(str(repo), device="cpu"),
        "recipe": lambda: load_recipe("train").main(
            [
                "--model_name_or_path",
                str(repo),
                "--discriminator_encoder",
                tiny_encoder_path,
                "--output_dir",
                str(tmp_path / "out"),
                "--max_steps",
                "1",
                "--use_cpu",
                "true",
                "--report_to",
                "none",
            ]
        ),  # fmt: skip
    }[loader]
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        load()
    assert not marker.exists(), "custom code was executed"


def test_a_saved_discriminator_with_custom_tokenizer_code_is_refused(remote_code_repo, tiny_encoder_path, tmp_path):
    from egail.discriminator import Discriminator, DiscriminatorConfig

    repo, marker = remote_code_repo
    saved = tmp_path / "discriminator"
    Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path)).save_pretrained(saved)
    shutil.copy(repo / "sneaky.py", saved)
    tokenizer_config = json.loads((saved / "tokenizer_config.json").read_text())
    tokenizer_config.update(
        auto_map={"AutoTokenizer": [None, "sneaky.SneakyTokenizer"]}, tokenizer_class="SneakyTokenizer"
    )
    (saved / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        Discriminator.from_pretrained(saved)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------- pickles
class _Payload:
    """Unpickling this writes a marker file: what a malicious .bin could do with any code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "unpickled")


@pytest.fixture
def pickle_only(tmp_path, tiny_lm_path) -> tuple[Path, Path, Path]:
    """A full model folder and a LoRA adapter folder whose weights are only malicious pickles."""
    marker = tmp_path / "PICKLE_RAN"
    model = tmp_path / "pickled-model"
    shutil.copytree(tiny_lm_path, model)
    (model / "model.safetensors").unlink()
    adapter = tmp_path / "pickled-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": tiny_lm_path, "r": 2,
        "lora_alpha": 4, "target_modules": ["q_proj"],
    }))  # fmt: skip
    for path in (model / "pytorch_model.bin", adapter / "adapter_model.bin"):
        path.write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    return model, adapter, marker


def test_pickle_only_model_is_refused_by_the_responder(pickle_only):
    from egail.chat import EmpatheticResponder

    model, _, marker = pickle_only
    with pytest.raises(ValueError, match="has no safetensors weights. egail loads only safetensors"):
        EmpatheticResponder.from_pretrained(str(model), device="cpu")
    assert not marker.exists()


def test_pickle_only_lora_adapter_is_refused(pickle_only):
    from egail.chat import EmpatheticResponder

    _, adapter, marker = pickle_only
    with pytest.raises(ValueError, match="has no adapter_model.safetensors. egail loads only safetensors"):
        EmpatheticResponder.from_pretrained(str(adapter), device="cpu")
    assert not marker.exists()


def test_evaluation_refuses_a_pickle_only_adapter(pickle_only):
    from datasets import Dataset

    from egail.evaluation import EvaluationInputError, EvaluationSettings, evaluate_models

    _, adapter, marker = pickle_only
    rows = Dataset.from_list([{"history": [], "prompt": "I lost my keys.", "response": "Oh no!"}])
    with pytest.raises(EvaluationInputError, match="has no adapter_model.safetensors"):
        evaluate_models([str(adapter)], rows, EvaluationSettings(emotion_classifier=None, device="cpu"))
    assert not marker.exists()


def test_discriminator_loads_only_safetensors(tmp_path, tiny_encoder_path, pickle_only):
    from egail.discriminator import Discriminator, DiscriminatorConfig

    *_, marker = pickle_only
    saved = tmp_path / "discriminator"
    discriminator = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path))
    discriminator.save_pretrained(saved)
    (saved / "model.safetensors").unlink()
    (saved / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        Discriminator.from_pretrained(saved)
    encoder = tmp_path / "pickled-encoder"
    shutil.copytree(tiny_encoder_path, encoder)
    (encoder / "model.safetensors").unlink()
    (encoder / "pytorch_model.bin").write_bytes(pickle.dumps({"weight": _Payload(marker)}))
    with pytest.raises(OSError, match="model.safetensors"):
        Discriminator(DiscriminatorConfig(encoder=str(encoder)))
    assert not marker.exists()


# ------------------------------------------------------------------------------------------- Hub token
def test_hub_token_is_never_logged_nor_written(trainer_factory, tmp_path, monkeypatch, caplog, capfd):
    """With the token in the arguments and in the environment, no log line and no file of the run holds it."""
    arg_token, env_token = "hf_ArgTokenDoNotLeak1234567890", "hf_EnvTokenDoNotLeak0987654321"
    monkeypatch.setenv("HF_TOKEN", env_token)
    with caplog.at_level(logging.DEBUG):
        trainer = trainer_factory(max_steps=1, save_strategy="steps", save_steps=1, hub_token=arg_token,
                                  logging_steps=1, report_to=["tensorboard"])  # fmt: skip
        trainer.train()
        trainer.save_model()
        logging.getLogger("egail.test").info("arguments: %s", trainer.args)
    assert trainer.args.hub_token == arg_token  # still there for push_to_hub
    run = tmp_path / "run"
    files = [p for p in run.rglob("*") if p.is_file()]
    assert {"training_args.bin", "README.md", "config.json", "trainer_state.json"} <= {p.name for p in files}
    assert any(p.name.startswith("events.out.tfevents") for p in files)  # tensorboard logged the arguments
    for token in (arg_token, env_token):
        leaks = [str(p.relative_to(run)) for p in files if token.encode() in p.read_bytes()]
        assert not leaks, f"token written into {leaks}"
        assert token not in caplog.text and token not in "".join(capfd.readouterr())
    args = torch.load(run / "training_args.bin", weights_only=False)
    assert args.hub_token is None and args.output_dir == trainer.args.output_dir


# ------------------------------------------------------------------------------------------------ Space
SECRET_PATH = "/srv/secret/models/policy/model.safetensors"


class _FailingResponder:
    guard = None

    def respond(self, history, message):
        raise RuntimeError(f"{SECRET_PATH} is corrupt (see {__file__})")


def _serve(demo, space_app) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.queue(default_concurrency_limit=space_app.CONCURRENCY_LIMIT, max_size=space_app.MAX_QUEUE_SIZE).launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, show_error=False
    )
    return f"http://127.0.0.1:{port}"


def _stream(url: str, message: str) -> str:
    """Everything the browser receives for one chat turn: the queued call's whole event stream."""
    event = httpx.post(f"{url}/gradio_api/call/chat", json={"data": [message, []]}, timeout=60).json()["event_id"]
    return httpx.get(f"{url}/gradio_api/call/chat/{event}", timeout=60).text


def _assert_no_internals(text: str) -> None:
    for leak in (SECRET_PATH, "/srv/", str(REPO_ROOT), __file__, "Traceback", 'File "', "RuntimeError"):
        assert leak not in text, f"{leak!r} reached the browser: {text[:500]}"


def test_space_failures_show_no_paths_or_tracebacks(space_app, monkeypatch):
    """A failing model is answered politely; an error that escapes the turn is an opaque error event."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    demo = space_app.build_demo(responder=_FailingResponder(), emotion_reader=False)
    url = _serve(demo, space_app)
    try:
        answer = _stream(url, "Hello, I had a hard day.")
        assert space_app.ERROR_REPLY in answer
        _assert_no_internals(answer)
        for route in ("/config", "/gradio_api/info", "/", "/no-such-page"):
            _assert_no_internals(httpx.get(url + route, timeout=60).text)
        source = REPO_ROOT / "space" / "app.py"
        assert httpx.get(f"{url}/gradio_api/file={source}", timeout=60).status_code == 403  # no source served
    finally:
        demo.close()

    def escaping_error(self, message, history):
        raise RuntimeError(f"{SECRET_PATH} is corrupt")

    monkeypatch.setattr(space_app.ChatApp, "chat", escaping_error)
    demo = space_app.build_demo(responder=_FailingResponder(), emotion_reader=False)
    url = _serve(demo, space_app)
    try:
        answer = _stream(url, "Hello again.")
        assert answer.startswith("event: error")
        _assert_no_internals(answer)
        with pytest.raises(AppError) as error:
            Client(url + "/", verbose=False).predict("Hello?", api_name="/chat")
        _assert_no_internals(str(error.value))
    finally:
        demo.close()


def test_space_main_hides_errors_and_bounds_the_queue(space_app, monkeypatch):
    calls = {}

    class Demo:
        def queue(self, **kwargs):
            calls["queue"] = kwargs
            return self

        def launch(self, **kwargs):
            calls["launch"] = kwargs

    monkeypatch.setattr(space_app, "build_demo", lambda *args, **kwargs: Demo())
    monkeypatch.delenv("SPACE_ID", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    space_app.main()
    assert calls["launch"].get("show_error") is False and calls["launch"]["server_name"] == "127.0.0.1"
    assert calls["queue"] == {"default_concurrency_limit": space_app.CONCURRENCY_LIMIT,
                              "max_size": space_app.MAX_QUEUE_SIZE}  # fmt: skip
    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
