"""The readers on the real corpora (../shared/data/raw), in their original formats and the Hub's parquet
layout, with counts from SOURCES.md, hand-checked staggering, and what bad input reports."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from egail.data import ED_EMOTIONS, read_dailydialog, read_empatheticdialogues, stagger


@pytest.fixture(scope="module")
def ed_csv(raw_data) -> Path:
    return raw_data / "empatheticdialogues" / "reconstructed" / "ed_valid.csv"


@pytest.fixture(scope="module")
def dd_dir(raw_data) -> Path:
    return raw_data / "dailydialog" / "original"


@pytest.fixture(scope="module")
def ed(ed_csv):
    return read_empatheticdialogues(ed_csv)


@pytest.fixture(scope="module")
def dd_train(dd_dir):
    return read_dailydialog(dd_dir / "train")


@pytest.fixture(scope="module")
def dd_valid(dd_dir):
    return read_dailydialog(dd_dir / "validation" / "dialogues_validation.txt")


# --------------------------------------------------------------------------- counts


def test_ed_validation_counts(ed, ed_csv):
    assert len(ed) == 2_770
    assert sum(len(c.utterances) for c in ed) == 12_078
    assert {c.emotion for c in ed} == set(ED_EMOTIONS)
    assert ed.skipped == []
    # Turns, counted independently from the CSV: floor(utterances / 2) per conversation.
    with open(ed_csv, encoding="utf-8", newline="") as f:
        per_conversation: dict[str, int] = {}
        for row in csv.DictReader(f):
            per_conversation[row["conv_id"]] = per_conversation.get(row["conv_id"], 0) + 1
    expected_turns = sum(n // 2 for n in per_conversation.values())
    assert sum(len(stagger(c)) for c in ed) == expected_turns == 5_738


def raw_dialogues(path: Path) -> list[list[str]]:
    return [line.split("__eou__")[:-1] for line in path.read_text(encoding="utf-8").splitlines()]


def test_dailydialog_counts(dd_train, dd_valid, dd_dir):
    assert (len(dd_train), sum(len(c.utterances) for c in dd_train)) == (11_118, 87_171)
    assert (len(dd_valid), sum(len(c.utterances) for c in dd_valid)) == (1_000, 8_069)
    for result, split in ((dd_train, "train"), (dd_valid, "validation")):
        dialogues = raw_dialogues(dd_dir / split / f"dialogues_{split}.txt")
        assert sum(len(stagger(c)) for c in result) == sum(len(d) // 2 for d in dialogues)
    assert dd_valid.skipped == []


def test_dailydialog_label_mismatch_is_reported_and_the_text_kept(dd_train, dd_dir):
    assert [str(s) for s in dd_train.skipped] == [
        f"{dd_dir / 'train' / 'dialogues_emotion_train.txt'}:7852: emotion labels do not match the utterances; "
        "emotions of this dialogue left null (11 labels for 12 utterances)"
    ]
    flawed = next(c for c in dd_train if c.line == 7852)
    assert flawed.utterances[0] == "Sam, can we stop at this bicycle shop?"
    assert len(flawed.utterances) == 12 and flawed.utterance_emotions == [None] * 12


# --------------------------------------------------------------------------- staggering, checked by hand

SITUATION_3_6 = (
    "Today,as i was leaving for work in the morning,i had a tire burst in the middle of a busy road. "
    "That scared the hell out of me!"
)


def test_ed_staggering_by_hand(ed):
    conversation = next(c for c in ed if c.conv_id == "hit:3_conv:6")  # 5 utterances: the 5th is unanswered
    common = {"conv_id": "hit:3_conv:6", "emotion": "terrified", "situation": SITUATION_3_6,
              "source": "empatheticdialogues"}  # fmt: skip
    assert stagger(conversation) == [
        {**common, "turn": 1, "history": [], "prompt": SITUATION_3_6, "response": "Are you fine now?"},
        {
            **common,
            "turn": 2,
            "history": [SITUATION_3_6, "Are you fine now?"],
            "prompt": "Yeah,i'm doing alright now, but with minor injuries.",
            "response": "Cool :) Is your car damaged a lot?",
        },  # fmt: skip
    ]


def test_dailydialog_staggering_by_hand(dd_valid):
    by_line = {c.line: c for c in dd_valid}
    common = {"conv_id": "dailydialog:dialogues_validation.txt:74", "situation": None, "source": "dailydialog"}
    # Line 74: "Jack , let ’ s go ! __eou__ ..." with emotions 3 0 3 0 (fear, none, fear, none).
    assert stagger(by_line[74]) == [
        {**common, "turn": 1, "history": [], "prompt": "Jack, let's go!",
         "response": "Oh, you are out of breath! What happened?", "emotion": "fear"},
        {**common, "turn": 2, "history": ["Jack, let's go!", "Oh, you are out of breath! What happened?"],
         "prompt": "Some people are wildly shooting on the next street. We must leave here as soon as possible!",
         "response": "Take it easy. They will get caught.", "emotion": "fear"},
    ]  # fmt: skip
    # Line 89, emotions 0 4 0 0 0 0 0 0 0 0 0 4: a row takes its prompt's label, so the replies' happiness
    # does not show, and every row is null.
    rows = stagger(by_line[89])
    assert len(rows) == 6 and {r["emotion"] for r in rows} == {None}
    assert rows[2] == {
        "conv_id": "dailydialog:dialogues_validation.txt:89", "turn": 3,
        "history": ["I want to rent this apartment.", "I'm glad to hear that.", "How much are you asking?",
                    "You will have to pay $1050 every month."],
        "prompt": "I can't afford that.", "response": "What can you afford?",
        "emotion": None, "situation": None, "source": "dailydialog",
    }  # fmt: skip


# --------------------------------------------------------------------------- the Hub's parquet layouts


def test_a_folder_skips_files_in_other_layouts(raw_data, ed):
    folder = raw_data / "empatheticdialogues"  # reconstructed/ed_valid.csv, and source/ files in other layouts
    result = read_empatheticdialogues(folder)
    assert [c.conv_id for c in result] == [c.conv_id for c in ed]
    assert sorted((Path(s.path).name, s.reason) for s in result.skipped) == [
        ("chashaoan_conv_valid.csv", "not in the corpus's layout; file skipped"),
        ("chashaoan_fixed_valid.csv", "not in the corpus's layout; file skipped"),
    ]
    assert "missing columns ['context']" in result.skipped[-1].detail
    with pytest.raises(ValueError, match="chashaoan_fixed_valid.csv:1: missing columns"):
        read_empatheticdialogues(folder / "source" / "chashaoan_fixed_valid.csv")


def test_ed_parquet_layout_reads_like_the_csv(ed, ed_csv, tmp_path):
    with open(ed_csv, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    table = pa.table(
        {
            "conv_id": [r["conv_id"] for r in rows],
            "utterance_idx": pa.array([int(r["utterance_idx"]) for r in rows], pa.int32()),
            "context": [r["context"] for r in rows],
            "prompt": [r["prompt"] for r in rows],
            "speaker_idx": pa.array([int(r["speaker_idx"]) for r in rows], pa.int32()),
            "utterance": [r["utterance"] for r in rows],
            "selfeval": [""] * len(rows),
            "tags": [""] * len(rows),
        }
    )
    (tmp_path / "data").mkdir()
    pq.write_table(table, tmp_path / "data" / "validation-00000-of-00001.parquet")
    from_parquet = read_empatheticdialogues(tmp_path)  # a folder in the Hub's layout
    assert [(c.conv_id, c.utterances, c.emotion, c.situation) for c in from_parquet] == [
        (c.conv_id, c.utterances, c.emotion, c.situation) for c in ed
    ]


def test_dailydialog_parquet_layout_reads_like_the_text_files(dd_valid, dd_dir, tmp_path):
    folder = dd_dir / "validation"
    dialogues = raw_dialogues(folder / "dialogues_validation.txt")
    labels = [[int(x) for x in line.split()] for name in ("act", "emotion")
              for line in (folder / f"dialogues_{name}_validation.txt").read_text().splitlines()]  # fmt: skip
    acts, emotions = labels[: len(dialogues)], labels[len(dialogues) :]
    table = pa.table({"dialog": [[u.strip() + " " for u in d] for d in dialogues], "act": acts, "emotion": emotions})
    path = tmp_path / "validation-00000-of-00001.parquet"
    pq.write_table(table, path)
    from_parquet = read_dailydialog(path)
    assert [(c.utterances, c.utterance_emotions) for c in from_parquet] == [
        (c.utterances, c.utterance_emotions) for c in dd_valid
    ]
    assert from_parquet[0].conv_id == "dailydialog:validation-00000-of-00001.parquet:1"


# --------------------------------------------------------------------------- bad input


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.csv: no such file"):
        read_empatheticdialogues(tmp_path / "nowhere.csv")
    (tmp_path / "dialogues_train.txt").write_text("Hi . __eou__ Hello . __eou__\n")
    with pytest.raises(FileNotFoundError, match="dialogues_emotion_train.txt: missing"):
        read_dailydialog(tmp_path / "dialogues_train.txt")
    (tmp_path / "dialogues_emotion_train.txt").write_text("0 0\n")
    with pytest.raises(FileNotFoundError, match="no DailyDialog"):
        read_dailydialog(tmp_path / "dialogues_emotion_train.txt")


def test_wrong_columns_are_named(tmp_path):
    path = tmp_path / "ed.csv"
    path.write_text("conv_id,utterance_idx,prompt,utterance\nhit:1,1,p,u\n")
    with pytest.raises(ValueError, match=r"ed\.csv:1: missing columns \['context'\]"):
        read_empatheticdialogues(path)
    pq.write_table(pa.table({"dialog": [["a"]], "acts": [[1]]}), tmp_path / "dd.parquet")
    with pytest.raises(ValueError, match=r"dd\.parquet: missing columns \['emotion'\] for the DailyDialog layout"):
        read_dailydialog(tmp_path / "dd.parquet")
    with pytest.raises(ValueError, match=r"dd\.parquet: missing columns .* for the EmpatheticDialogues layout"):
        read_empatheticdialogues(tmp_path / "dd.parquet")


def test_bad_lines_are_skipped_with_file_and_line(tmp_path):
    text = tmp_path / "dialogues_train.txt"
    text.write_bytes(
        b"Hi . __eou__ Hello . __eou__\n"
        b"Caf\xe9 ? __eou__ Yes . __eou__\n"  # Latin-1, not UTF-8
        b"One . __eou__ Two . __eou__ Three . __eou__\n"
    )
    (tmp_path / "dialogues_emotion_train.txt").write_text("0 4\n0 0\n1 2\n3 3\n")
    result = read_dailydialog(tmp_path)
    assert [c.utterances for c in result] == [["Hi.", "Hello."], ["One.", "Two.", "Three."]]
    assert [str(s) for s in result.skipped] == [
        f"{text}:2: bytes that are not valid UTF-8; line skipped",
        f"{tmp_path / 'dialogues_emotion_train.txt'}:3: emotion labels do not match the utterances; "
        "emotions of this dialogue left null (2 labels for 3 utterances)",
        f"{tmp_path / 'dialogues_emotion_train.txt'}:4: label line without a dialogue; ignored "
        "(dialogues_train.txt ends earlier)",
    ]
    with pytest.raises(ValueError, match=r"dialogues_train\.txt:2: bytes that are not valid UTF-8"):
        read_dailydialog(tmp_path, strict=True)


def test_ed_original_unquoted_format_with_stray_quotes(tmp_path):
    # The original release: 8 columns, commas as _comma_, no CSV quoting (a field may start with a quote).
    path = tmp_path / "valid.csv"
    path.write_bytes(
        b"conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"
        b'hit:1_conv:2,1,proud,My son "won"_comma_ finally,17,"Won" he did_comma_ at last!,5|5|5_2|2|5,\n'
        b'hit:1_conv:2,2,proud,My son "won"_comma_ finally,23,Congratulations!,5|5|5_2|2|5,\n'
        b'hit:1_conv:2,3,proud,My son "won"_comma_ finally,17,Thanks \xff,5|5|5_2|2|5,\n'
        b'hit:1_conv:2,x,proud,My son "won"_comma_ finally,23,Bye,5|5|5_2|2|5,\n'
    )
    result = read_empatheticdialogues(path)
    (conversation,) = result
    assert conversation.utterances == ['"Won" he did, at last!', "Congratulations!"]
    assert conversation.situation == 'My son "won", finally'
    assert [(s.line, s.reason) for s in result.skipped] == [
        (4, "bytes that are not valid UTF-8; line skipped"),
        (5, "utterance_idx is not an integer; row skipped"),
    ]
