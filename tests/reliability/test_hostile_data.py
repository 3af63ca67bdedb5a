"""Hostile data: random bytes, wrong types, empty strings, huge utterances and odd unicode.

Whatever a corpus file or a trajectory row holds, the builders and the trainer's input checks end in
clean records (with every skip reported) or in a clear ``ValueError``/``FileNotFoundError`` naming the
file or the row; never another exception from deep inside csv, json, pyarrow, tokenizers or torch.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from datasets import Dataset
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from egail.data import ED_EMOTIONS, build_dataset
from egail.data.conversation import Skip
from egail.formatting import build_messages

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Characters that break naive text handling: NUL, line and paragraph separators, BOM, zero-width and
#: direction marks, combining accents, astral emoji, the highest code point, escape codes, and the
#: corpora's own markers.
ODD = ["\x00", "\r", "\n", "\r\n", "\t", "\u2028", "\u2029", "\ufeff", "\u200b", "\u202e", "e\u0301", "😢",
       "\U0010ffff", "\x1b[31m", ",", '"', "'", "_comma_", "__eou__", "\\", " ", ""]  # fmt: skip

odd_text = st.lists(st.one_of(st.text(max_size=12), st.sampled_from(ODD)), max_size=8).map("".join)
#: Far longer than any real utterance (csv's 128 KiB field limit has its own test).
huge_text = st.builds(lambda piece, n: piece * n, st.text(min_size=1, max_size=4), st.integers(2_000, 8_000))
text = st.one_of(odd_text, odd_text, odd_text, huge_text)
#: Stands for a lone surrogate: `_json` turns it into the escape "\ud800", valid JSON but not valid Unicode.
LONE_SURROGATE = "<lone surrogate>"
json_junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text, st.just(LONE_SURROGATE),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)  # fmt: skip
random_bytes = st.binary(max_size=300)

ED_HEADER = "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags"


def ed_line(conv: int, idx: object, emotion: str, situation: str, utterance: str) -> str:
    return ",".join([f"hit:{conv}_conv:{conv}", str(idx), emotion, situation, "1", utterance, "", ""])


ed_lines = st.lists(
    st.builds(
        ed_line,
        st.integers(0, 3),
        st.one_of(st.integers(-1, 6), text),
        st.one_of(st.sampled_from(ED_EMOTIONS), text),
        text,
        text,
    ),
    max_size=8,
)


def _json(value: object) -> str:
    return json.dumps(value).replace(json.dumps(LONE_SURROGATE), '"\\ud800"')


def _write(path: Path, lines: list[str | bytes]) -> Path:
    """Lines joined with newlines; a ``bytes`` line goes in raw, so files hold invalid UTF-8 too."""
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else x.encode("utf-8", "surrogatepass") for x in lines))
    return path


def check_build(source: str, path: Path, strict: bool = False) -> None:
    """Building either gives well-typed rows, with every skip naming its file, or a clear error naming it."""
    try:
        result = build_dataset([f"{source}:{path}"], progress=False, strict=strict)
    except (ValueError, FileNotFoundError) as error:
        assert str(path) in str(error) or path.name in str(error), f"error does not name the file: {error}"
        return
    for skip in result.skipped:
        assert isinstance(skip, Skip) and skip.reason
        assert skip.path.startswith(str(path)) or skip.path.startswith(str(path.parent)), skip
        assert skip.line is None or skip.line >= 1
    assert sum(r.skipped for r in result.sources) == len(result.skipped)
    for split in result.dataset.values():
        for row in split:
            assert isinstance(row["conv_id"], str) and row["conv_id"]
            assert isinstance(row["turn"], int) and row["turn"] >= 1
            assert isinstance(row["history"], list) and all(isinstance(u, str) and u for u in row["history"])
            assert len(row["history"]) == 2 * (row["turn"] - 1)
            assert isinstance(row["prompt"], str) and row["prompt"].strip()
            assert isinstance(row["response"], str) and row["response"].strip()
            assert row["emotion"] is None or isinstance(row["emotion"], str)
            for value in (row["prompt"], row["response"], *row["history"]):
                value.encode("utf-8")  # valid Unicode: no lone surrogates made it through


# ------------------------------------------------------------------------------------------- builders
@SETTINGS
@given(body=st.lists(st.one_of(ed_lines.map("\n".join), random_bytes), max_size=4), header=st.booleans(),
       strict=st.booleans())  # fmt: skip
def test_empatheticdialogues_csv(body, header, strict):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / "train.csv", ([ED_HEADER] if header else []) + body)
        check_build("ed", path, strict)


@SETTINGS
@given(
    dialogues=st.lists(
        st.one_of(st.lists(text, max_size=6).map(lambda u: "__eou__".join(u) + "__eou__"), random_bytes), max_size=5
    ),  # fmt: skip
    labels=st.lists(
        st.one_of(st.lists(st.integers(-2, 9), max_size=6).map(lambda x: " ".join(map(str, x))), text, random_bytes),
        max_size=6,
    ),  # fmt: skip
    with_labels=st.booleans(),
)
def test_dailydialog_text(dialogues, labels, with_labels):
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder) / "dialogues_train.txt", dialogues)
        if with_labels:
            _write(Path(folder) / "dialogues_emotion_train.txt", labels)
        check_build("dd", path)


@SETTINGS
@given(lines=st.lists(st.one_of(text, random_bytes), max_size=8))
def test_oneliners_text(lines):
    with tempfile.TemporaryDirectory() as folder:
        check_build("oneliners", _write(Path(folder) / "lines.txt", lines))


@SETTINGS
@given(items=st.lists(st.one_of(json_junk.map(_json), st.fixed_dictionaries({"text": json_junk}).map(_json),
                                text, random_bytes), max_size=8))  # fmt: skip
def test_oneliners_jsonl(items):
    with tempfile.TemporaryDirectory() as folder:
        check_build("oneliners", _write(Path(folder) / "lines.jsonl", items))


message = st.fixed_dictionaries(
    {"role": st.one_of(st.sampled_from(["user", "assistant", "system", "tool"]), json_junk), "content": json_junk}
)
chat_line = st.one_of(
    st.lists(message, max_size=6).map(_json),
    st.fixed_dictionaries({"id": json_junk, "messages": st.lists(message, max_size=6)}).map(_json),
    json_junk.map(_json),
    random_bytes,
)


@SETTINGS
@given(lines=st.lists(chat_line, max_size=8))
def test_chat_jsonl(lines):
    with tempfile.TemporaryDirectory() as folder:
        check_build("chat", _write(Path(folder) / "chat.jsonl", lines))


@pytest.mark.parametrize(
    "escape", ["\\ud800", "\\udfff", "\\udc80 and more", "a\\ud83dz"], ids=["high", "low", "escape-range", "half-pair"]
)
@pytest.mark.parametrize("kind", ["oneliners", "chat"])
def test_json_escaped_lone_surrogates_are_skipped_not_crashed_on(tmp_path, kind, escape):
    """``"\\ud800"`` is valid JSON but not valid Unicode: pyarrow cannot store it, so the line is skipped."""
    good = '[{"role": "user", "content": "hi there"}, {"role": "assistant", "content": "hello!"}]'
    bad = good.replace("hi there", escape)
    lines = [good, bad] if kind == "chat" else ['"fine words"', f'"{escape}"']
    result = build_dataset([f"{kind}:{_write(tmp_path / 'x.jsonl', lines)}"], progress=False)
    assert sum(len(split) for split in result.dataset.values()) == 1
    assert [(s.line, s.reason) for s in result.skipped] == [
        (2, "text that is not valid Unicode (a lone surrogate); line skipped")
    ]


@pytest.mark.parametrize("where", ["header", "body"])
def test_csv_fields_over_the_csv_module_limit(tmp_path, where):
    """csv refuses fields over 128 KiB; an ED file with one is read (body) or refused by name (header)."""
    huge = "sad " * 40_000
    good = [ed_line(1, 1, "sad", "My cat died.", "I miss her."), ed_line(1, 2, "sad", "My cat died.", "So sorry.")]
    lines = [huge + ED_HEADER, *good] if where == "header" else [ED_HEADER, *good, ed_line(2, 1, "sad", "x", huge),
                                                                  ed_line(2, 2, "sad", "x", "That is long.")]  # fmt: skip
    path = _write(tmp_path / "train.csv", lines)
    if where == "header":
        with pytest.raises(ValueError, match="train.csv:1: missing columns"):
            build_dataset([f"ed:{path}"], progress=False)
        return
    rows = [row for split in build_dataset([f"ed:{path}"], progress=False).dataset.values() for row in split]
    assert sorted(len(row["prompt"]) for row in rows) == [len("I miss her."), len(huge.strip())]


def test_deeply_nested_json_is_skipped(tmp_path):
    path = _write(tmp_path / "chat.jsonl", ["[" * 100_000, '[{"role": "user", "content": "hi"}, '
                                            '{"role": "assistant", "content": "hello"}]'])  # fmt: skip
    result = build_dataset([f"chat:{path}"], progress=False)
    assert [(s.line, s.reason) for s in result.skipped] == [(1, "JSON nested too deeply; line skipped")]
    assert sum(len(split) for split in result.dataset.values()) == 1


# ----------------------------------------------------------------------------- trainer input checks
value = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(), text, st.just(""), st.just("   \n\t"),
    st.lists(st.integers(), max_size=2),
)  # fmt: skip
history = st.one_of(st.lists(text, max_size=4), st.lists(value, max_size=3), value)


@SETTINGS
@given(rows=st.lists(st.fixed_dictionaries({"history": history, "prompt": value, "response": value}),
                     min_size=1, max_size=3), drop=st.sampled_from([None, "history", "prompt", "response"]))  # fmt: skip
def test_validate_trajectories(rows, drop):
    from egail.schema import validate_trajectories

    if drop:
        rows = [{k: v for k, v in row.items() if k != drop} for row in rows]
    try:
        dataset = Dataset.from_list(rows)
    except Exception:  # noqa: BLE001 - arrow cannot hold these rows together; nothing reaches the trainer
        assume(False)
    try:
        validate_trajectories(dataset, "train_dataset")
    except ValueError as error:
        message = str(error)
        assert message.startswith("train_dataset")
        assert drop in message if drop else ("row " in message or "empty" in message)
        return
    for row in dataset:  # it passed: every row is a real trajectory
        assert isinstance(row["history"], list) and all(isinstance(u, str) for u in row["history"])
        assert isinstance(row["prompt"], str) and row["prompt"].strip()
        assert isinstance(row["response"], str) and row["response"].strip()


@pytest.mark.parametrize("data", [[{"history": [], "prompt": "hi", "response": "hello"}], {"prompt": ["hi"]}, "rows"])
def test_validate_trajectories_wants_a_dataset(data):
    from egail.schema import validate_trajectories

    with pytest.raises(TypeError, match="train_dataset must be a datasets.Dataset"):
        validate_trajectories(data, "train_dataset")


@pytest.fixture(scope="module")
def policy_tokenizer(tiny_lm_path):
    from egail.models import load_tokenizer

    return load_tokenizer(tiny_lm_path)


MAX_PROMPT = 64


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(st.one_of(odd_text, huge_text), max_size=6),
    prompt=st.one_of(odd_text, huge_text),
    response=st.one_of(odd_text, huge_text),
)
def test_prepare_dataset_fits_any_valid_text_into_max_prompt_length(policy_tokenizer, tmp_path, history, prompt,
                                                                    response):  # fmt: skip
    from egail import GAILConfig, GAILTrainer
    from egail.formatting import response_ids

    assume(prompt.strip() and response.strip())
    args = GAILConfig(
        output_dir=str(tmp_path), max_prompt_length=MAX_PROMPT, report_to=[], use_cpu=True, include_oneliners=True
    )
    dataset = Dataset.from_list([{"history": history, "prompt": prompt, "response": response}])
    state = GAILTrainer.prepare_dataset(dataset, policy_tokenizer, args, "train_dataset")[0]
    ids = policy_tokenizer.apply_chat_template(state["prompt"], tokenize=True, add_generation_prompt=True,
                                               return_dict=False)  # fmt: skip
    assert len(ids) <= MAX_PROMPT
    assert state["history"] == history[len(history) - len(state["history"]) :]  # oldest turns cut first
    if state["history"]:
        assert state["prompt_text"] == prompt  # the prompt is cut only once no history is left
    assert state["demo_ids"] == response_ids(policy_tokenizer, response)[: args.max_completion_length]


def test_prepare_dataset_cuts_the_oldest_history_then_the_start_of_the_prompt(policy_tokenizer, tmp_path):
    from egail import GAILConfig, GAILTrainer

    args = GAILConfig(output_dir=str(tmp_path), max_prompt_length=128, report_to=[], use_cpu=True)
    history = [f"utterance {i} " + "blah " * 3 for i in range(8)]
    long_prompt = " ".join(f"w{i}" for i in range(400)) + " how do I cope?"
    rows = [{"history": history, "prompt": "And now?", "response": "Tell me."},
            {"history": history, "prompt": long_prompt, "response": "Tell me."}]  # fmt: skip
    kept, cut = GAILTrainer.prepare_dataset(Dataset.from_list(rows), policy_tokenizer, args, "train_dataset")
    assert 0 < len(kept["history"]) < len(history) and kept["history"] == history[-len(kept["history"]) :]
    assert kept["prompt_text"] == "And now?"
    assert cut["history"] == [] and cut["prompt_text"].endswith("how do I cope?") and len(cut["prompt_text"]) < 400

    def n_tokens(messages: list[dict]) -> int:
        return len(policy_tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False))

    assert n_tokens(kept["prompt"]) <= 128 < n_tokens(build_messages(history[-len(kept["history"]) - 2 :], "And now?"))
    assert 128 - 8 < n_tokens(cut["prompt"]) <= 128  # as much of the prompt as fits


def test_prepare_dataset_with_no_room_for_a_prompt_is_a_clear_error(policy_tokenizer, tmp_path):
    from egail import GAILConfig, GAILTrainer

    args = GAILConfig(output_dir=str(tmp_path), max_prompt_length=5, report_to=[], use_cpu=True)
    rows = Dataset.from_list([{"history": [], "prompt": "A long enough prompt for five tokens", "response": "ok"}])
    with pytest.raises(ValueError, match="a budget of 5 tokens leaves no room for a prompt"):
        GAILTrainer.prepare_dataset(rows, policy_tokenizer, args, "train_dataset")


def test_discriminator_scores_huge_responses(tiny_encoder_path):
    """An expert response longer than ``discriminator_max_length`` tokens is cut, not a tokenizer crash."""
    from egail.discriminator import Discriminator, DiscriminatorConfig

    discriminator = Discriminator(DiscriminatorConfig(encoder=tiny_encoder_path, max_length=32))
    scores = discriminator.score([["hi", "hello"], []], ["how are you " * 50, "ok"], ["fine " * 5_000, "good"])
    assert scores.shape == (2,) and bool(((scores > 0) & (scores < 1)).all())
    batch = discriminator.tokenize([[]], ["a short state"], ["reply " * 100])
    assert batch["input_ids"].shape[1] <= 32
    assert "state" in discriminator.tokenizer.decode(batch["input_ids"][0])  # the state keeps its room
