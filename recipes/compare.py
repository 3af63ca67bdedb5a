#!/usr/bin/env python
"""The GAIL-vs-MLE study on one base model: every trained model a LoRA adapter, all evaluated alike.

    python recipes/compare.py --study results/gail-vs-mle-cpu --work-dir outputs/study \
        --source ed:../shared/data/raw/empatheticdialogues/reconstructed/ed_valid.csv \
        --source dd:../shared/data/raw/dailydialog/original/train --reuse [--until STAGE]

Stages, in order (each a recipe command, run in this process and timed in CPU seconds):

1. ``data``: the expert trajectories, split by conversation (``test`` is held back for the evaluation);
2. ``sft``: MLE (TRL ``SFTTrainer``) of a LoRA adapter on the base model; it ends with a checkpoint;
3. ``empathygail``: GAIL from the SFT adapter with the EmpathyGAIL YAML config;
4. ``sft-equal-compute``: the SFT run resumed and trained on for as many CPU seconds as ``empathygail`` took
   (the fair control: does GAIL beat simply training longer?);
5. ``textgail``: GAIL from the SFT adapter with the TextGAIL YAML config, the same budget as ``empathygail``;
6. ``spin``: one SPIN iteration (TRL ``DPOTrainer``: expert response chosen, the SFT model's sample rejected);
7. each ``--ablation``: a GAIL run from the SFT adapter that changes some of a variant's settings, e.g.
   ``--ablation empathygail-strong-d:discriminator_updates_per_generation=4,learning_rate=1e-4`` (its folder and
   model are named ``empathygail-strong-d``; the flags it sets come after the variant's and win);
8. ``evaluation``: every model on the same test rows (``egail.evaluation``), then bootstrap intervals and the
   realism probe (``egail.evaluation.study``), and the GAIL learning curves. Each model is evaluated once and
   kept in the study without corpus text (``--study``/evaluations/<model>.json); a rerun, on a fresh clone too,
   evaluates only models trained since.

``--skip STAGE`` leaves a training stage (textgail, spin or an ablation) out of this run: the evaluation then covers
the models that are trained, so the key comparison can be read before the rest of the study has run.

A stage's folder gets ``stage.json`` last, when the stage has finished; each trained adapter (with its
``stage.json``, curves, and for SFT the checkpoint the control resumes) is archived in ``--study``/adapters, from
which a later session on a fresh clone restores it. ``--reuse`` skips a stage whose
``stage.json`` records the same command; a folder without it is half-written and is never trusted: a training stage
resumes from its last complete checkpoint, anything else is redone. Corpus text stays in ``--work-dir``: the
corpora's licenses forbid redistributing it with the results.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from egail import __version__
from egail.cli import run_cli

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent
STAGE_FILE = "stage.json"
GAIL_VARIANTS = ("textgail", "empathygail")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
ARCHIVED = ("sft", *GAIL_VARIANTS, "sft-equal-compute", "spin")  # and every ablation
MAX_ADAPTER_MB = 10.5
TRAINING_STAGES = ("data", "sft", "empathygail", "sft-equal-compute", "textgail", "spin")  # key pair first
SKIPPABLE = ("textgail", "spin")  # the stages nothing else builds on; ablations too
ABLATION_NAME = re.compile(rf"({'|'.join(GAIL_VARIANTS)})-[a-z0-9][a-z0-9.-]*")
EVALUATIONS = "evaluations"  # study/evaluations/<model>.json: each model's evaluation, without corpus text
#: Prompt tokens of a state in every stage (SFT, GAIL, SPIN): history beyond it is cut oldest-first (fit_state).
MAX_PROMPT_LENGTH = 256


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--source", action="append", required=True, help="kind:path, as in `python -m egail.data build`")
    add("--study", required=True, help="results folder: tables, plots, JSON, run.md, adapters/")
    add("--work-dir", default="outputs/study", help="data and training folders (not committed)")
    add("--model", default="smollm2-135m-instruct", help="base model (embedded name, folder or Hub id)")
    add("--seed", type=int, default=0, help="training and data-split seed")
    add("--lora-r", type=int, default=8, help="LoRA rank (all linear layers): r=8 in fp32 is ~9.8 MB on SmolLM2-135M")
    add("--sft-steps", type=int, default=100)
    add("--sft-learning-rate", type=float, default=2e-4)
    add("--gail-steps", type=int, default=120, help="optimizer steps of each GAIL run (~25 s each on 2 idle cores)")
    add("--gail-learning-rate", type=float, default=3e-5)
    add("--discriminator-pretrain-steps", type=int, default=10, help="~38 s each on 2 idle cores")
    add("--spin-samples", type=int, default=800, help="states of the SPIN iteration")
    add("--spin-steps", type=int, default=100)
    add("--eval-samples", type=int, default=600, help="test rows evaluated (each bucket must get >= 100)")
    add("--eval-seeds", type=int, nargs="+", default=[0])
    add("--min-bucket-rows", type=int, default=100, help="fewest evaluated rows a 1 / 2 / 3+ turn bucket may have")
    add("--discriminator-encoder", default="minilm-l6", help="encoder of the GAIL discriminators")
    add("--max-new-tokens", type=int, default=48)
    add("--reuse", action="store_true", help="skip stages whose stage.json records the same command")
    add("--until", help="stop after this stage (the study can run in parts)")
    add("--ablation", action="append", default=[], type=ablation_spec, metavar="NAME:FIELD=VALUE[,FIELD=VALUE...]",
        help="an extra GAIL run from the SFT adapter, evaluated with the rest: NAME is a variant, a dash and a "
             "label (empathygail-strong-d), the fields are GAILConfig fields it changes (repeatable)")  # fmt: skip
    add("--skip", action="append", default=[], metavar="STAGE",
        help=f"leave this training stage out of this run ({', '.join(SKIPPABLE)} or an ablation's name; repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    names = [Ablation.parse(spec).name for spec in args.ablation]
    if len(set(names)) != len(names):
        parser.error(f"--ablation names must differ, got {', '.join(names)}")
    unknown = [name for name in args.skip if name not in (*SKIPPABLE, *names)]
    if unknown:
        parser.error(f"--skip {unknown[0]}: only {', '.join((*SKIPPABLE, *names))} can be skipped")
    return args


@dataclass(frozen=True)
class Ablation:
    """A GAIL run that changes some settings of a variant's (``empathygail-strong-d:learning_rate=1e-4,...``)."""

    name: str
    variant: str
    overrides: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, spec: str) -> Ablation:
        import dataclasses

        from egail import GAILConfig

        name, colon, settings = spec.partition(":")
        match = ABLATION_NAME.fullmatch(name)
        if not match:
            raise ValueError(f"ablation name {name!r}: use a variant ({', '.join(GAIL_VARIANTS)}), a dash and a "
                             f"label of lower-case letters, digits, dots or dashes, e.g. empathygail-strong-d")  # fmt: skip
        pairs = [part.partition("=") for part in settings.split(",")] if colon and settings else []
        if not pairs:
            raise ValueError(f"ablation {name}: give the settings it changes, e.g. {name}:learning_rate=1e-4")
        fields = {f.name for f in dataclasses.fields(GAILConfig)}
        for key, equals, value in pairs:
            if key not in fields or not equals or not value:
                raise ValueError(
                    f"ablation {name}: {key + equals + value!r} is not FIELD=VALUE with a GAILConfig field"
                )
        return cls(name, match.group(1), tuple((key, value) for key, _, value in pairs))

    @property
    def flags(self) -> list[str]:
        return [part for key, value in self.overrides for part in (f"--{key}", value)]


def ablation_spec(spec: str) -> str:
    """``--ablation``'s argparse type: the spec, checked (run.json records it as given)."""
    try:
        Ablation.parse(spec)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return spec


def stage_names(args: argparse.Namespace) -> tuple[str, ...]:
    """Every stage of this study, in the order they run."""
    return (*TRAINING_STAGES, *(Ablation.parse(spec).name for spec in args.ablation), "evaluation")


@dataclass
class Stage:
    """One step of the study: the recipe command it runs (as a shell would), and where it writes."""

    name: str
    script: str  # "recipes/sft.py", or "-m egail.data" ...
    argv: list[str]
    folder: Path
    run: Callable[[list[str]], object]
    resumable: bool = False  # a training stage: a half-written folder resumes from its last complete checkpoint

    @property
    def command(self) -> list[str]:
        """The command as recorded and compared: paths inside this checkout relative to it, so a study folder
        restored in a clone elsewhere still matches its stages."""
        return [arg.replace(f"{REPO}/", "") for arg in ("python", *self.script.split(), *self.argv)]


def _recipe(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"egail_recipe_{name}", RECIPES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def write_whole(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all (a temporary file renamed over it): a run killed mid-write leaves no
    half-written record for ``--reuse`` to trust."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)


def finished(stage: Stage) -> dict | None:
    """The stage's record when it finished with this very command, else None."""
    record_file = stage.folder / STAGE_FILE
    if not record_file.is_file():
        return None
    record = json.loads(record_file.read_text())
    return record if record.get("command") == stage.command else None


def run_stage(stage: Stage, reuse: bool) -> dict:
    """Run ``stage`` (or reuse it) and return its record: command, CPU and wall seconds, versions."""
    from transformers.trainer_utils import get_last_checkpoint

    from egail.checkpointing import latest_complete_checkpoint

    done = finished(stage) if reuse else None
    if done is not None:
        print(f"[study] {stage.name}: reused ({done['cpu_s']:.0f} CPU s when it ran)", flush=True)
        return done
    argv = list(stage.argv)
    earlier = {}
    if stage.folder.exists():
        checkpoint = None
        if stage.resumable and reuse:
            checkpoint = latest_complete_checkpoint(stage.folder) or get_last_checkpoint(str(stage.folder))
        if checkpoint and (Path(checkpoint) / "trainer_state.json").is_file():
            print(f"[study] {stage.name}: half-written; resuming from {checkpoint}", flush=True)
            argv += ["--resume_from_checkpoint", checkpoint]
            earlier = spent_until(Path(checkpoint))
            if "--max_cpu_seconds" in argv:  # a CPU budget covers the whole stage, the interrupted parts included
                at = argv.index("--max_cpu_seconds") + 1
                argv[at] = str(max(1.0, float(argv[at]) - earlier.get("cpu_s", 0.0)))
        else:
            print(f"[study] {stage.name}: {'redoing' if (stage.folder / STAGE_FILE).exists() else 'half-written;'} "
                  f"starting over", flush=True)  # fmt: skip
            shutil.rmtree(stage.folder)
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    with CheckpointTimes(stage.folder, earlier, started_cpu, started_wall) if stage.resumable else nullcontext():
        stage.run(argv)
    record = {
        "command": stage.command,
        "cpu_s": round(earlier.get("cpu_s", 0.0) + time.process_time() - started_cpu, 1),
        "wall_s": round(earlier.get("wall_s", 0.0) + time.perf_counter() - started_wall, 1),
        "resumed": bool(earlier),
        "egail": __version__,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    stage.folder.mkdir(parents=True, exist_ok=True)
    write_whole(stage.folder / STAGE_FILE, json.dumps(record, indent=2))  # last
    print(f"[study] {stage.name}: {record['cpu_s']:.0f} CPU s, {record['wall_s']:.0f} s wall", flush=True)
    return record


SPENT_FILE = "stage_spent.json"
CHECKPOINT_POLL_S = 5.0


def spent_until(checkpoint: Path) -> dict:
    """CPU and wall seconds the stage had spent when ``checkpoint`` was written (empty if not recorded)."""
    path = checkpoint / SPENT_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


class CheckpointTimes:
    """While a training stage runs, writes into each new complete checkpoint the stage's CPU and wall seconds so far.

    A session's end kills the process without warning, so the time an interrupted part spent cannot be saved at
    its end; a checkpoint carries the time it took to reach it instead, and a resumed stage starts its count from
    there (the work after the last checkpoint is redone, and only counted when it is). Polls every few seconds,
    in a thread of this process: ``time.process_time`` counts every thread, so the figure is the process's.
    """

    def __init__(self, folder: Path, earlier: dict, started_cpu: float, started_wall: float):
        import threading

        self.folder, self.earlier, self.poll_s = folder, earlier, CHECKPOINT_POLL_S
        self.started_cpu, self.started_wall = started_cpu, started_wall
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="checkpoint-times", daemon=True)

    def _watch(self) -> None:
        from egail.checkpointing import latest_complete_checkpoint

        while not self._stop.wait(self.poll_s):
            checkpoint = latest_complete_checkpoint(self.folder) if self.folder.exists() else None
            if checkpoint is not None and not (Path(checkpoint) / SPENT_FILE).exists():
                spent = {"cpu_s": self.earlier.get("cpu_s", 0.0) + time.process_time() - self.started_cpu,
                         "wall_s": self.earlier.get("wall_s", 0.0) + time.perf_counter() - self.started_wall}  # fmt: skip
                try:
                    (Path(checkpoint) / SPENT_FILE).write_text(json.dumps(spent))
                except OSError:  # the trainer rotated the checkpoint away meanwhile: the next one gets it
                    pass

    def __enter__(self) -> CheckpointTimes:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()


def archive_stage(stage: Stage, study: Path, keep_checkpoint: str | None = None) -> None:
    """Copy what later stages and readers need of a finished training stage into ``study/adapters/<stage>/``:
    the adapter (its base named portably: the embedded name, not this machine's cache path), ``stage.json``,
    the curves and log, and ``keep_checkpoint`` (the SFT checkpoint the equal-compute control resumes). So the
    study can go on from a fresh clone; the discriminators (about 90 MB each) stay in the work dir."""
    from egail.models import SMOLLM2, resolve_model_path

    out = study / "adapters" / stage.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in (*ADAPTER_FILES, STAGE_FILE, "training_curves.png", "log_history.json"):
        if (stage.folder / name).is_file():
            shutil.copy(stage.folder / name, out / name)
    if keep_checkpoint:  # what resuming reads; not training_args.bin (a pickle of this machine's paths) or tokenizer
        shutil.copytree(stage.folder / keep_checkpoint, out / keep_checkpoint, ignore=shutil.ignore_patterns(
            "training_args.bin", "README.md", "tokenizer*", "chat_template.jinja"))  # fmt: skip
    for config_file in out.rglob(ADAPTER_FILES[0]):
        config = json.loads(config_file.read_text())
        if str(config.get("base_model_name_or_path")) in (SMOLLM2, resolve_model_path(SMOLLM2)):
            config["base_model_name_or_path"] = SMOLLM2
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True))
    size = (out / ADAPTER_FILES[1]).stat().st_size / 2**20
    if size > MAX_ADAPTER_MB:
        raise ValueError(f"{stage.name}: adapter is {size:.1f} MB, over {MAX_ADAPTER_MB} MB; lower --lora-r")


def restore_stage(stage: Stage, study: Path) -> None:
    """A stage finished in an earlier session (archived in the study, not in this work dir) is put back."""
    archived = study / "adapters" / stage.name
    if not stage.folder.exists() and (archived / STAGE_FILE).is_file():
        shutil.copytree(archived, stage.folder)
        print(f"[study] {stage.name}: restored from {archived}", flush=True)


def check_study_folder(study: Path) -> None:
    """A study folder written by another egail version is not mixed with this one's results."""
    run_file = study / "run.json"
    if run_file.is_file():
        written_by = json.loads(run_file.read_text()).get("egail")
        if written_by is not None and written_by.split(".")[:2] != __version__.split(".")[:2]:
            raise ValueError(
                f"{study} was written by egail {written_by}, this is {__version__}: use a new --study folder "
                f"(and --work-dir), or reproduce it with egail {written_by}."
            )


def sft_argv(args: argparse.Namespace, data: Path, output_dir: Path, max_steps: int) -> list[str]:
    """SFT of an all-linear LoRA adapter at a constant learning rate (so a resumed run simply trains on)."""
    return [
        "--config", str(RECIPES / "configs" / "sft.yaml"), "--model_name_or_path", args.model,
        "--dataset_name", str(data), "--output_dir", str(output_dir), "--max_steps", str(max_steps),
        "--per_device_train_batch_size", "8", "--learning_rate", str(args.sft_learning_rate),
        "--lr_scheduler_type", "constant_with_warmup", "--warmup_steps", "10", "--history_max_turns", "2",
        "--max_prompt_length", str(MAX_PROMPT_LENGTH), "--max_length", "320", "--use_peft", "true", "--lora_r", str(args.lora_r), "--lora_alpha", str(2 * args.lora_r),
        "--lora_dropout", "0.05", "--lora_target_modules", "all-linear", "--gradient_checkpointing", "false",
        "--use_cpu", "true", "--bf16", "false", "--report_to", "none",
    ]  # fmt: skip


def gail_argv(args: argparse.Namespace, variant: str, data: Path, start: Path, output_dir: Path) -> list[str]:
    """GAIL from the SFT adapter with a variant's YAML; what the CPU budget sets is the same for both variants (and
    an ablation's flags, appended after these, override them: the last of a repeated flag wins)."""
    return [
        "--config", str(RECIPES / "configs" / f"{variant}.yaml"), "--model_name_or_path", str(start),
        "--dataset_name", str(data), "--output_dir", str(output_dir), "--max_steps", str(args.gail_steps),
        "--learning_rate", str(args.gail_learning_rate), "--lr_scheduler_type", "constant", "--warmup_steps", "0",
        "--num_generations", "4", "--generation_batch_size", "32", "--per_device_train_batch_size", "8",
        "--max_completion_length", str(args.max_new_tokens), "--temperature", "1.0", "--top_p", "1.0",
        "--history_max_turns", "2", "--max_prompt_length", str(MAX_PROMPT_LENGTH),
        "--discriminator_pretrain_steps", str(args.discriminator_pretrain_steps),
        "--discriminator_encoder", args.discriminator_encoder,
        "--demo_warmup_steps", str(args.gail_steps // 4), "--gradient_checkpointing", "false",
        "--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--logging_steps", "5",
        "--save_strategy", "steps", "--save_steps", "25", "--save_total_limit", "1", "--seed", str(args.seed),
    ]  # fmt: skip


def build_stages(args: argparse.Namespace, work: Path, records: dict[str, dict]) -> list[Stage]:
    """The study's stages; ``records`` (filled as stages finish) supplies the equal-compute budget."""
    from egail.data import build_dataset

    data, sft, equal, spin = work / "data", work / "sft", work / "sft-equal-compute", work / "spin"
    sources = [part for source in args.source for part in ("--source", source)]
    sft_run = ["--save_strategy", "steps", "--save_steps", str(args.sft_steps), "--logging_steps", "5"]
    stages = [
        Stage("data", "-m egail.data build", [*sources, "--out", str(data), "--seed", str(args.seed)], data,
              lambda argv: build_dataset(args.source, seed=args.seed).save(data)),
        Stage("sft", "recipes/sft.py", [*sft_argv(args, data, sft, args.sft_steps), *sft_run, "--seed", str(args.seed)],
              sft, lambda argv: _recipe("sft").main(argv), resumable=True),
    ]  # fmt: skip
    stages += [
        Stage(variant, "recipes/train.py", gail_argv(args, variant, data, sft, work / variant), work / variant,
              lambda argv: _recipe("train").main(argv), resumable=True)
        for variant in GAIL_VARIANTS
    ]  # fmt: skip
    budget = records.get("empathygail", {}).get("cpu_s", 0)  # known once empathygail has run
    stages.append(Stage("sft-equal-compute", "recipes/sft.py", [
        *sft_argv(args, data, equal, 1_000_000), "--max_cpu_seconds", str(budget),
        "--resume_from_checkpoint", str(sft / f"checkpoint-{args.sft_steps}"), "--save_strategy", "steps",
        "--save_steps", "50", "--save_total_limit", "1", "--logging_steps", "5", "--seed", str(args.seed),
    ], equal, lambda argv: _recipe("sft").main(argv), resumable=True))  # fmt: skip
    stages.append(Stage("spin", "recipes/spin.py", [
        "--config", str(RECIPES / "configs" / "spin.yaml"), "--model_name_or_path", str(sft),
        "--base_model", args.model, "--dataset_name", str(data), "--output_dir", str(spin),
        "--max_train_samples", str(args.spin_samples), "--max_steps", str(args.spin_steps),
        "--max_new_tokens", str(args.max_new_tokens), "--temperature", "1.0", "--top_p", "1.0",
        "--history_max_turns", "2", "--max_prompt_length", str(MAX_PROMPT_LENGTH), "--max_length", "320",
        "--seed", str(args.seed),
    ], spin, lambda argv: _recipe("spin").main(argv)))  # fmt: skip
    for ablation in map(Ablation.parse, args.ablation):
        folder = work / ablation.name
        stages.append(Stage(ablation.name, "recipes/train.py",
                            [*gail_argv(args, ablation.variant, data, sft, folder), *ablation.flags], folder,
                            lambda argv: _recipe("train").main(argv), resumable=True))  # fmt: skip
    return stages


def trained_models(args: argparse.Namespace, work: Path, records: dict[str, dict]) -> dict[str, str]:
    """The models to evaluate: the base and every trained model whose stage has run (in the study's order)."""
    models = {"base": args.model, "sft": str(work / "sft"), "sft-equal-compute": str(work / "sft-equal-compute"),
              **{v: str(work / v) for v in GAIL_VARIANTS}, "spin": str(work / "spin"),
              **{a.name: str(work / a.name) for a in map(Ablation.parse, args.ablation)}}  # fmt: skip
    return {name: path for name, path in models.items() if name == "base" or name in records}


def evaluate_once(name: str, path: str, trained: str | None, data: Path, settings, archive: Path, reuse: bool):
    """``name``'s evaluation report and the CPU seconds it took. It is kept in the study as ``archive`` without
    corpus text (the models' responses and every figure; the corpora's licenses forbid redistributing them), and
    reused when the same model (its stage's finish time) was evaluated on the same data with the same settings:
    its states and references are then read again from ``data``, so a fresh clone evaluates only new models."""
    from egail.evaluation import EvaluationInputError, evaluate_models
    from egail.evaluation.runner import restore_corpus_text

    evaluated = {"model": path, "trained": trained, "data": str(data), "settings": settings.to_dict()}
    if reuse and archive.is_file():
        kept = json.loads(archive.read_text())
        if kept["evaluated"] == evaluated:
            print(f"[study] evaluation of {name}: reused ({kept['cpu_s']:.0f} CPU s when it ran)", flush=True)
            try:
                return restore_corpus_text(kept["report"], str(data), settings), kept["cpu_s"]
            except EvaluationInputError as error:
                raise EvaluationInputError(f"{archive}: {error} Delete it to evaluate {name} again.") from error
    print(f"[study] evaluation of {name}", flush=True)
    started_cpu = time.process_time()
    report = evaluate_models({name: path}, str(data), settings)
    cpu_s = round(time.process_time() - started_cpu, 1)
    archive.parent.mkdir(parents=True, exist_ok=True)
    kept = {"evaluated": evaluated, "cpu_s": cpu_s, "report": report.without_corpus_text()}
    write_whole(archive, json.dumps(kept, indent=1) + "\n")
    return report, cpu_s


def evaluate(args: argparse.Namespace, work: Path, study: Path, records: dict[str, dict]) -> dict:
    """Every trained model on the same test rows, then intervals, realism and curves; returns the stage's record."""
    from egail.evaluation import EvaluationReport, EvaluationSettings, GenerationSettings
    from egail.evaluation.study import score_study, write_study
    from egail.evaluation.trajectories import BUCKETS

    models = trained_models(args, work, records)
    discriminator = work / "empathygail" / "discriminator"  # ~90 MB: it stays in the work dir, never archived
    has_discriminator = (discriminator / "config.json").is_file()
    if not has_discriminator:
        print(f"[study] {discriminator} is not here (a fresh work dir): the models are evaluated without "
              f"discriminator scores", flush=True)  # fmt: skip
    settings = EvaluationSettings(
        split="test", max_samples=args.eval_samples, history_max_turns=2, seeds=tuple(args.eval_seeds),
        discriminator=str(discriminator) if has_discriminator else None,
        generation=GenerationSettings(max_new_tokens=args.max_new_tokens),
    )  # fmt: skip
    parts = {name: evaluate_once(name, path, records.get(name, {}).get("finished"), work / "data", settings,
                                 study / EVALUATIONS / f"{name}.json", args.reuse) for name, path in models.items()}  # fmt: skip
    started_cpu = time.process_time()  # the scoring below; each model's evaluation is counted in its part
    report = EvaluationReport.combine([part for part, _ in parts.values()])
    counts = {bucket: stat.n for bucket, stat in report.results["base"]["perplexity"].items()}
    if min(counts[b] for b in BUCKETS) < args.min_bucket_rows:
        raise ValueError(f"the evaluated rows per bucket are {counts}: each of 1 / 2 / 3+ turns needs "
                         f"{args.min_bucket_rows}; raise --eval-samples")  # fmt: skip
    report.write(work / "evaluation")
    for name in ("table.md", "perplexity.png", "bleu.png"):
        if (work / "evaluation" / name).is_file():
            shutil.copy(work / "evaluation" / name, study / name)
    figures = json.loads((work / "evaluation" / "results.json").read_text())
    figures.pop("examples", None)  # they quote the corpora (licenses): examples.md stays in the work dir
    (study / "results.json").write_text(json.dumps(figures, indent=2) + "\n")
    baseline = "sft-equal-compute" if "sft-equal-compute" in models else "sft"
    write_study(score_study(work / "evaluation", baseline=baseline), study)  # intervals, realism AUC
    gail_runs = (*GAIL_VARIANTS, *(Ablation.parse(spec).name for spec in args.ablation))
    for variant in (v for v in gail_runs if v in models):  # the learning evidence: D(expert) vs D(sample)...
        for name, target in (
            ("training_curves.png", f"curves-{variant}.png"),
            ("log_history.json", f"log-{variant}.json"),
        ):
            shutil.copy(work / variant / name, study / target)
    (study / "rows.json").write_text(json.dumps(counts, indent=2))
    evaluated = sum(cpu_s for _, cpu_s in parts.values())  # each model's once, in whichever run evaluated it
    return {"cpu_s": round(evaluated + time.process_time() - started_cpu, 1),
            "models": {name: cpu_s for name, (_, cpu_s) in parts.items()},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip


def write_run_md(
    args: argparse.Namespace, study: Path, stages: list[Stage], records: dict[str, dict], argv,
    evaluation: dict | None = None,
) -> None:  # fmt: skip
    import torch
    import transformers
    import trl

    if evaluation is None and (study / "run.json").is_file():  # a run that stops before evaluating keeps the last one
        evaluation = json.loads((study / "run.json").read_text()).get("evaluation")
    total = sum(r["cpu_s"] for r in records.values())
    lines = ["# How this study was made", "",
             f"egail {__version__}, TRL {trl.__version__}, transformers {transformers.__version__}, torch "
             f"{torch.__version__}, Python {platform.python_version()}, {platform.processor() or platform.machine()}.",
             "", f"CPU time of all stages: {total / 3600:.2f} h (process CPU seconds, all threads).", "",
             "| stage | CPU s | wall s | resumed | finished |", "|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {n} | {r['cpu_s']} | {r['wall_s']} | {r.get('resumed', False)} | {r['finished']} |"
              for n, r in records.items()]  # fmt: skip
    lines += [f"- **{n}**: {r['note']}" for n, r in records.items() if r.get("note")]
    if evaluation is not None:
        per_model = ", ".join(f"{name} {cpu_s:.0f}" for name, cpu_s in evaluation["models"].items())
        lines += ["", f"Evaluation: {evaluation['cpu_s']:.0f} CPU s in all (per model, CPU s: {per_model}), "
                      f"finished {evaluation['finished']}; not counted in the training total above."]  # fmt: skip
    skipped = [name for name in args.skip if name not in records]
    if skipped:
        lines += ["", f"Not run yet (`--skip`): {', '.join(skipped)}; the evaluation covers the models above."]
    lines += ["", "Each stage's command (compare.py runs them in one process):", "", "```bash"]
    lines += [shlex.join(s.command) for s in stages if s.name in records]
    lines += ["```", "", f"This study: `python recipes/compare.py {shlex.join(argv or sys.argv[1:])}`", ""]
    (study / "run.md").write_text("\n".join(lines))
    run = {"egail": __version__, "args": vars(args), "stages": records, "evaluation": evaluation}
    (study / "run.json").write_text(json.dumps(run, indent=2))


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    work, study = Path(args.work_dir), Path(args.study)
    check_study_folder(study)
    study.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    names = stage_names(args)
    if args.until is not None and args.until not in names:
        raise ValueError(f"--until must be one of {', '.join(names)}, got {args.until!r}")
    records: dict[str, dict] = {}
    for name in names[:-1]:
        if name in args.skip:
            print(f"[study] {name}: skipped in this run (--skip)", flush=True)
            continue
        stages = build_stages(args, work, records)  # with the budgets of the stages finished so far
        stage = next(s for s in stages if s.name == name)
        if args.reuse:
            restore_stage(stage, study)
        records[name] = run_stage(stage, args.reuse)
        if name in ARCHIVED or name not in TRAINING_STAGES:  # the ablations too
            archive_stage(stage, study, f"checkpoint-{args.sft_steps}" if name == "sft" else None)
        write_run_md(args, study, stages, records, argv)
        if name == args.until:
            return study
    evaluation = evaluate(args, work, study, records)
    write_run_md(args, study, build_stages(args, work, records), records, argv, evaluation)
    return study


if __name__ == "__main__":
    run_cli(main)
