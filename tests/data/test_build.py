"""Building the DatasetDict from the real corpora: counts, split invariants, duplicates, card, CLI."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import datasets
import pytest
import yaml

from egail.data import COLUMNS, STAGGERING_RULE, build_dataset, load_trajectories
from egail.data.__main__ import main


@pytest.fixture(scope="module")
def paths(raw_data) -> dict[str, Path]:
    return {
        "ed": raw_data / "empatheticdialogues" / "reconstructed" / "ed_valid.csv",
        "dd_train": raw_data / "dailydialog" / "original" / "train",
        "dd_valid": raw_data / "dailydialog" / "original" / "validation",
    }


@pytest.fixture(scope="module")
def built(paths):
    sources = [f"ed:{paths['ed']}", ("dd", paths["dd_train"]), ("dailydialog", paths["dd_valid"])]
    return build_dataset(sources, progress=False)


def raw_dd_lines(paths) -> dict[str, list[str]]:
    return {
        name: (paths[key] / name).read_text(encoding="utf-8").splitlines()
        for key, name in (("dd_train", "dialogues_train.txt"), ("dd_valid", "dialogues_validation.txt"))
    }


def test_rows_match_an_independent_count(built, paths):
    """Every DailyDialog conversation that was kept has floor(utterances/2) rows, counted from its raw line."""
    lines = raw_dd_lines(paths)
    rows_per_conv: dict[str, int] = defaultdict(int)
    for split in built.dataset.values():
        for conv_id in split["conv_id"]:
            rows_per_conv[conv_id] += 1
    for conv_id, rows in rows_per_conv.items():
        if conv_id.startswith("dailydialog:"):
            _, name, number = conv_id.split(":")
            assert rows == lines[name][int(number) - 1].count("__eou__") // 2, conv_id
    ed, dd_train, dd_valid = built.sources
    assert ed.conversations == 2_770 and ed.utterances == 12_078 and ed.skipped == 1  # one has no reply
    assert (dd_train.conversations, dd_train.utterances) == (11_118, 87_171)
    assert (dd_valid.conversations, dd_valid.utterances) == (1_000, 8_069)
    assert sum(len(split) for split in built.dataset.values()) == 5_738 + sum(
        n for conv_id, n in rows_per_conv.items() if conv_id.startswith("dailydialog:")
    )


def test_dailydialog_duplicates_are_kept_once(built, paths):
    lines = raw_dd_lines(paths)
    kept = {c for split in built.dataset.values() for c in set(split["conv_id"]) if c.startswith("dailydialog:")}
    kept_text = [lines[c.split(":")[1]][int(c.split(":")[2]) - 1] for c in kept]
    assert len(kept_text) == len(set(kept_text))  # no exact duplicate survives
    all_lines = lines["dialogues_train.txt"] + lines["dialogues_validation.txt"]
    exact_copies = len(all_lines) - len(set(all_lines))  # 569 in train, 5 in validation, 68 across
    duplicates = [s for s in built.skipped if s.reason == "duplicate conversation dropped"]
    # Normalisation also finds copies that differ only in tokenisation ("Won ’ t" / "Won't").
    assert exact_copies == 642 and 642 <= len(duplicates) < 700
    assert built.sources[1].skipped + built.sources[2].skipped == len(duplicates) + 1  # + line 7852's labels


def test_split_invariants(built):
    split_of: dict[str, str] = {}
    turns: dict[str, list[int]] = defaultdict(list)
    for name, split in built.dataset.items():
        assert split.column_names == list(COLUMNS)
        previous: dict[str, dict] = {}
        for row in split.to_list():
            assert split_of.setdefault(row["conv_id"], name) == name  # a conversation stays in one split
            turns[row["conv_id"]].append(row["turn"])
            assert len(row["history"]) == 2 * (row["turn"] - 1)
            if row["turn"] > 1:
                before = previous[row["conv_id"]]
                assert row["history"] == before["history"] + [before["prompt"], before["response"]]
            previous[row["conv_id"]] = row
            assert row["prompt"] and row["response"] and row["prompt"] == row["prompt"].strip()
    assert all(t == list(range(1, len(t) + 1)) for t in turns.values())
    for source in ("empatheticdialogues", "dailydialog"):  # 70/20/10 of each source, to the nearest one
        counts = {name: len({c for c, s in zip(split["conv_id"], split["source"], strict=True) if s == source})
                  for name, split in built.dataset.items()}  # fmt: skip
        total = sum(counts.values())
        for name, ratio in built.splits.items():
            assert abs(counts[name] - ratio * total) <= 1, (source, counts)


def test_seed_decides_the_split(paths):
    def members(seed):
        result = build_dataset([("ed", paths["ed"])], seed=seed, progress=False)
        return {name: set(split["conv_id"]) for name, split in result.dataset.items()}

    assert members(1) == members(1)
    assert members(1) != members(2)


def test_card(built):
    card = built.card()
    front, body = card.split("---\n")[1], card.split("---\n", 2)[2]
    meta = yaml.safe_load(front)
    assert meta["license"] == ["cc-by-nc-4.0", "cc-by-nc-sa-4.0"]
    assert meta["task_categories"] == ["text-generation"]
    assert meta["source_datasets"] == ["extended|daily_dialog", "extended|empathetic_dialogues"]
    splits = ("train", "test", "validation")
    assert meta["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}-*"} for s in splits]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {
        name: len(split) for name, split in built.dataset.items()
    }
    record = meta["egail"]
    assert record["staggering_rule"] == STAGGERING_RULE and record["split_ratios"] == {
        "train": 0.7, "test": 0.2, "validation": 0.1}  # fmt: skip
    assert [(s["kind"], s["license"], s["conversations_read"]) for s in record["sources"]] == [
        ("ed", "cc-by-nc-4.0", 2_770), ("dd", "cc-by-nc-sa-4.0", 11_118), ("dd", "cc-by-nc-sa-4.0", 1_000)]  # fmt: skip
    rows_in_card = sum(s["splits"][name]["rows"] for s in record["sources"] for name in s["splits"])
    assert rows_in_card == sum(len(split) for split in built.dataset.values())
    assert STAGGERING_RULE in body
    assert "CC BY-NC 4.0" in body and "CC BY-NC-SA 4.0" in body and "shared under the same license" in body
    assert f"{built.sources[0].splits['train']['rows']:,}" in body
    assert "duplicate conversation dropped" in body


def test_summary_table(built):
    summary = built.summary(max_skips=3)
    assert summary.splitlines()[0].split()[:5] == ["source", "license", "read", "unanswered", "skipped"]
    assert "ed:ed_valid.csv" in summary and "dd:train" in summary and "dd:validation" in summary
    assert f"{len(built.dataset['train']):,} rows" in summary
    assert "no complete turn; conversation dropped (hit:5771_conv:11543)" in summary
    assert f"... and {len(built.skipped) - 3:,} more" in summary


def test_cli_build_writes_a_dataset_and_card(paths, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["build", "--source", f"ed:{paths['ed']}", "--out", str(out), "--splits",
                 "train=0.8,validation=0.1,test=0.1", "--seed", "7", "--no-progress"])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "ed:ed_valid.csv" in printed and f"saved to {out}" in printed
    loaded = load_trajectories(out)
    assert isinstance(loaded, datasets.DatasetDict) and list(loaded) == ["train", "validation", "test"]
    assert sum(len(s) for s in loaded.values()) == 5_738
    assert yaml.safe_load((out / "README.md").read_text().split("---\n")[1])["egail"]["seed"] == 7
    assert (out / "skipped.txt").read_text().startswith(f"{paths['ed']}:5538: no complete turn")


def test_cli_reports_bad_sources(tmp_path, capsys):
    assert main(["build", "--source", f"dd:{tmp_path / 'missing'}", "--out", str(tmp_path / "o")]) == 2
    assert f"{tmp_path / 'missing'}: no such file or folder" in capsys.readouterr().err
    assert main(["build", "--source", "xx:foo", "--out", str(tmp_path / "o")]) == 2
    assert "unknown kind 'xx'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build", "--source", "embedded", "--out", str(tmp_path / "o"), "--splits", "train=oops"])
