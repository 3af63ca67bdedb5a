"""recipes/compare.py: stages reused only when finished with the same command, half-written ones redone or resumed,
and (slow) the whole study end to end on tiny models."""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest

from egail.evaluation.report import CORPUS_FIELDS
from tests.helpers import load_recipe


@pytest.fixture(scope="module")
def compare():
    return load_recipe("compare")


def _stage(compare, tmp_path, runs: list, resumable: bool = False, argv=("--x", "1")):
    def run(argv):
        runs.append(list(argv))
        (tmp_path / "stage").mkdir(exist_ok=True)
        (tmp_path / "stage" / "out.txt").write_text("done")

    return compare.Stage("toy", "recipes/toy.py", list(argv), tmp_path / "stage", run, resumable)


def test_a_finished_stage_is_reused_only_with_the_same_command(compare, tmp_path):
    runs: list = []
    first = compare.run_stage(_stage(compare, tmp_path, runs), reuse=True)
    assert runs == [["--x", "1"]] and first["command"] == ["python", "recipes/toy.py", "--x", "1"]
    assert json.loads((tmp_path / "stage" / compare.STAGE_FILE).read_text())["cpu_s"] == first["cpu_s"]
    assert compare.run_stage(_stage(compare, tmp_path, runs), reuse=True) == first  # reused: not run again
    assert len(runs) == 1
    compare.run_stage(_stage(compare, tmp_path, runs, argv=("--x", "2")), reuse=True)  # another command: redone
    assert runs[-1] == ["--x", "2"]
    compare.run_stage(_stage(compare, tmp_path, runs, argv=("--x", "2")), reuse=False)  # no --reuse: redone
    assert len(runs) == 3


def test_a_stage_records_paths_inside_the_checkout_relative_to_it(compare, tmp_path):
    """A study's stage.json files are committed: a clone in another folder must find the same commands."""
    config = compare.RECIPES / "configs" / "sft.yaml"
    record = compare.run_stage(_stage(compare, tmp_path, [], argv=("--config", str(config))), reuse=True)
    assert record["command"] == ["python", "recipes/toy.py", "--config", "recipes/configs/sft.yaml"]


def test_a_half_written_stage_is_redone_from_scratch(compare, tmp_path):
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "leftover.txt").write_text("from a killed run")
    runs: list = []
    compare.run_stage(_stage(compare, tmp_path, runs), reuse=True)
    assert runs == [["--x", "1"]] and not (tmp_path / "stage" / "leftover.txt").exists()


def test_a_half_written_training_stage_resumes_from_its_last_complete_checkpoint(compare, tmp_path):
    checkpoint = tmp_path / "stage" / "checkpoint-25"
    checkpoint.mkdir(parents=True)
    for name in ("trainer_state.json", "gail_state.json"):
        (checkpoint / name).write_text("{}")
    (checkpoint / compare.SPENT_FILE).write_text(json.dumps({"cpu_s": 100.0, "wall_s": 120.0}))
    (tmp_path / "stage" / "checkpoint-50").mkdir()  # torn: no gail_state.json, no trainer_state.json
    runs: list = []
    stage = _stage(compare, tmp_path, runs, resumable=True, argv=("--max_cpu_seconds", "250"))
    record = compare.run_stage(stage, reuse=True)
    # the CPU budget left is the stage's minus what it took to reach the checkpoint
    assert runs == [["--max_cpu_seconds", "150.0", "--resume_from_checkpoint", str(checkpoint)]]
    assert record["resumed"] and record["cpu_s"] >= 100.0  # the interrupted part's CPU time counts
    assert record["command"] == ["python", "recipes/toy.py", "--max_cpu_seconds", "250"]


def test_each_checkpoint_records_the_time_spent_to_reach_it(compare, tmp_path, monkeypatch):
    """A kill leaves no chance to save the time spent; each checkpoint carries it instead."""

    def train(argv):
        for step in (25, 50):
            checkpoint = tmp_path / "stage" / f"checkpoint-{step}"
            checkpoint.mkdir(parents=True)
            for name in ("trainer_state.json", "gail_state.json"):
                (checkpoint / name).write_text("{}")
            sum(i * i for i in range(200_000))  # some CPU time
            time.sleep(0.3)
        raise KeyboardInterrupt  # killed after the second checkpoint

    monkeypatch.setattr(compare, "CHECKPOINT_POLL_S", 0.05)
    stage = compare.Stage("toy", "recipes/toy.py", [], tmp_path / "stage", train, resumable=True)
    with pytest.raises(KeyboardInterrupt):
        compare.run_stage(stage, reuse=True)
    assert not (tmp_path / "stage" / compare.STAGE_FILE).exists()
    first, second = (compare.spent_until(tmp_path / "stage" / f"checkpoint-{n}") for n in (25, 50))
    assert 0 < first["cpu_s"] < second["cpu_s"] and first["wall_s"] < second["wall_s"]


def test_a_study_folder_from_another_version_is_refused(compare, tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"egail": "0.0.9"}))
    with pytest.raises(ValueError, match="written by egail 0.0.9"):
        compare.check_study_folder(tmp_path)


def test_the_equal_compute_control_resumes_sft_with_empathygail_cpu_time(compare, tmp_path):
    args = compare.parse_args(["--source", "embedded", "--study", str(tmp_path / "s")])
    stages = {s.name: s for s in compare.build_stages(args, tmp_path, {"empathygail": {"cpu_s": 1234.5}})}
    argv = stages["sft-equal-compute"].argv
    assert argv[argv.index("--max_cpu_seconds") + 1] == "1234.5"
    assert argv[argv.index("--resume_from_checkpoint") + 1].endswith("sft/checkpoint-100")
    sft, gail = stages["sft"].argv, stages["empathygail"].argv
    for flag in ("--history_max_turns", "--max_prompt_length"):  # SFT and GAIL see the same states
        assert sft[sft.index(flag) + 1] == gail[gail.index(flag) + 1]
    assert gail[gail.index("--model_name_or_path") + 1] == str(tmp_path / "sft")


def test_an_ablation_is_a_gail_run_from_sft_with_its_flags_last(compare, tmp_path):
    spec = "empathygail-d4-lr1e-4:discriminator_updates_per_generation=4,learning_rate=1e-4"
    args = compare.parse_args(["--source", "embedded", "--study", str(tmp_path / "s"), "--ablation", spec])
    assert compare.stage_names(args)[-2:] == ("empathygail-d4-lr1e-4", "evaluation")
    stages = {s.name: s for s in compare.build_stages(args, tmp_path, {})}
    ablation = stages["empathygail-d4-lr1e-4"]
    base = compare.gail_argv(args, "empathygail", tmp_path / "data", tmp_path / "sft", ablation.folder)
    assert base[:2] == stages["empathygail"].argv[:2]  # the variant's YAML
    assert ablation.argv == [*base, "--discriminator_updates_per_generation", "4", "--learning_rate", "1e-4"]
    assert ablation.folder == tmp_path / "empathygail-d4-lr1e-4" and ablation.resumable
    assert "empathygail-d4-lr1e-4" in compare.trained_models(args, tmp_path, {"empathygail-d4-lr1e-4": {}})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ablation", "gail-x:learning_rate=1e-4"], "use a variant"),
        (["--ablation", "empathygail-x"], "give the settings it changes"),
        (["--ablation", "empathygail-x:lr=1e-4"], "'lr=1e-4' is not FIELD=VALUE"),
        (["--ablation", "empathygail-x:learning_rate"], "'learning_rate' is not FIELD=VALUE"),
        (["--ablation", "empathygail-x:beta=0", "--ablation", "empathygail-x:beta=1"], "names must differ"),
        (["--skip", "sft"], "--skip sft: only textgail, spin can be skipped"),
    ],
)
def test_a_bad_ablation_or_skip_is_a_one_line_error(compare, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit):
        compare.parse_args(["--source", "embedded", "--study", str(tmp_path), *argv])
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_study_end_to_end_on_tiny_models(compare, tmp_path, tiny_lm_path, tiny_encoder_path):
    argv = [
        "--source", "embedded", "--model", tiny_lm_path, "--study", str(tmp_path / "study"),
        "--work-dir", str(tmp_path / "work"), "--sft-steps", "2", "--gail-steps", "2",
        "--discriminator-pretrain-steps", "1", "--discriminator-encoder", tiny_encoder_path, "--spin-samples", "8",
        "--spin-steps", "1", "--eval-samples", "12", "--min-bucket-rows", "1", "--max-new-tokens", "6",
        "--ablation", "empathygail-lr:learning_rate=1e-4",
    ]  # fmt: skip
    # the key comparison first: textgail, spin and the ablation left out, the evaluation covers the models so far
    part = compare.main([*argv, "--skip", "textgail", "--skip", "spin", "--skip", "empathygail-lr"])
    run = json.loads((part / "run.json").read_text())
    assert list(run["stages"]) == ["data", "sft", "empathygail", "sft-equal-compute"]
    assert list(run["evaluation"]["models"]) == ["base", "sft", "sft-equal-compute", "empathygail"]
    assert "Not run yet (`--skip`): textgail, spin, empathygail-lr" in (part / "run.md").read_text()
    assert json.loads((part / "study.json").read_text())["baseline"] == "sft-equal-compute"
    kept = part / compare.EVALUATIONS
    evaluated_at = {name: (kept / f"{name}.json").stat().st_mtime_ns for name in run["evaluation"]["models"]}
    for name in evaluated_at:  # the study keeps the models' responses and figures, never the corpus text
        assert not set(CORPUS_FIELDS) & set(json.loads((kept / f"{name}.json").read_text())["report"]["rows"][0])

    study = compare.main([*argv, "--reuse"])  # the rest: only the new models are trained and evaluated
    run = json.loads((study / "run.json").read_text())
    trained = ["data", "sft", "empathygail", "sft-equal-compute", "textgail", "spin", "empathygail-lr"]
    assert list(run["stages"]) == trained
    assert set(run["evaluation"]["models"]) == {"base", *trained[1:]}
    assert {name: (kept / f"{name}.json").stat().st_mtime_ns for name in evaluated_at} == evaluated_at
    figures = json.loads((study / "results.json").read_text())
    assert set(figures["results"]) == set(run["evaluation"]["models"])
    assert "examples" not in figures  # they quote the corpora, which the study folder does not redistribute
    for name in ("results.json", "table.md", "study.json", "study.md", "run.md", "curves-empathygail.png",
                 "curves-empathygail-lr.png"):  # fmt: skip
        assert (study / name).is_file(), name
    adapters = {p.name for p in (study / "adapters").iterdir()}
    assert adapters == {"sft", "sft-equal-compute", "textgail", "empathygail", "spin", "empathygail-lr"}
    scored = json.loads((study / "study.json").read_text())
    assert "realism_auc" in json.dumps(scored)
    # the work dir's evaluation and data gone (a fresh clone): the study's evaluations come back, none is redone
    shutil.rmtree(tmp_path / "work" / "evaluation")
    shutil.rmtree(tmp_path / "work" / "data")
    evaluated_at = {name: (kept / f"{name}.json").stat().st_mtime_ns for name in run["evaluation"]["models"]}
    scored_before = (study / "study.md").read_text()
    again = compare.main([*argv, "--reuse"])
    assert {name: (kept / f"{name}.json").stat().st_mtime_ns for name in evaluated_at} == evaluated_at
    assert (again / "study.md").read_text() == scored_before
    rerun_record = json.loads((again / "run.json").read_text())["evaluation"]
    assert rerun_record["models"] == run["evaluation"]["models"]  # each model's CPU seconds from when it ran
    run = json.loads((again / "run.json").read_text())
    assert (tmp_path / "work" / "evaluation" / "examples.md").is_file()  # the text read again from the data
    # --reuse: nothing trains again
    rerun = compare.main([*argv, "--reuse", "--until", "empathygail-lr"])  # the last training stage
    assert json.loads((rerun / "run.json").read_text())["evaluation"] == run["evaluation"]  # kept, not dropped
    assert json.loads((rerun / "run.json").read_text())["stages"] == run["stages"]
    budget = run["stages"]["empathygail"]["cpu_s"]  # the commands of a run that stops early carry real budgets too
    assert f"--max_cpu_seconds {budget} " in (rerun / "run.md").read_text()


def test_a_finished_stage_is_archived_in_the_study_and_restored_in_a_fresh_work_dir(compare, tmp_path):
    from egail.models import SMOLLM2, resolve_model_path

    runs: list = []
    stage = _stage(compare, tmp_path / "work", runs)

    def train(argv):
        stage.folder.mkdir(parents=True, exist_ok=True)
        (stage.folder / "checkpoint-2").mkdir()
        for folder in (stage.folder, stage.folder / "checkpoint-2"):
            config = {"base_model_name_or_path": resolve_model_path(SMOLLM2), "r": 8}  # a cache path
            (folder / "adapter_config.json").write_text(json.dumps(config))
            (folder / "adapter_model.safetensors").write_bytes(b"0" * 1024)

    stage.run = train
    compare.run_stage(stage, reuse=True)
    compare.archive_stage(stage, tmp_path / "study", keep_checkpoint="checkpoint-2")
    archived = tmp_path / "study" / "adapters" / "toy"
    for config_file in (archived / "adapter_config.json", archived / "checkpoint-2" / "adapter_config.json"):
        assert json.loads(config_file.read_text())["base_model_name_or_path"] == SMOLLM2  # portable
    assert (archived / compare.STAGE_FILE).is_file()

    fresh = _stage(compare, tmp_path / "fresh", runs)
    compare.restore_stage(fresh, tmp_path / "study")
    assert compare.run_stage(fresh, reuse=True)["command"] == stage.command  # reused, not run
    assert runs == [] and (fresh.folder / "checkpoint-2" / "adapter_model.safetensors").is_file()


def test_a_kept_evaluation_whose_rows_changed_is_a_clear_error_naming_its_file(compare, tmp_path):
    """The study's evaluation of a model is read back against the data; other text there is refused, not mixed."""
    from egail.evaluation import EvaluationInputError, EvaluationSettings
    from egail.evaluation.runner import load_rows

    settings = EvaluationSettings(split="test", max_samples=4, emotion_classifier=None)
    rows, _ = load_rows("embedded", settings)
    evaluated = {"model": "m", "trained": None, "data": "embedded", "settings": settings.to_dict()}
    kept_rows = [
        {"row": r.index, "responses": {"m": {"0": "Oh no."}}, "nll": {}, "fingerprint": "0" * 16} for r in rows
    ]
    archive = tmp_path / "study" / compare.EVALUATIONS / "m.json"
    archive.parent.mkdir(parents=True)
    archive.write_text(
        json.dumps(
            {"evaluated": evaluated, "cpu_s": 1.0, "report": {"settings": settings.to_dict(), "rows": kept_rows}}
        )
    )
    with pytest.raises(
        EvaluationInputError,
        match=rf"{re.escape(str(archive))}: row \d+ of the dataset is not the text that was evaluated.*Delete it",
    ):
        compare.evaluate_once("m", "m", None, "embedded", settings, archive, reuse=True)
