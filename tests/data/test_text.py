"""Normalisation, the staggering rule, and the readers' line-level policies, on small hand-written inputs."""

from __future__ import annotations

import json

import pytest

from egail.data import (
    Conversation,
    normalise_dd,
    normalise_ed,
    read_chat_jsonl,
    read_embedded_conversations,
    read_oneliners,
    stagger,
)
from egail.data.conversation import SkipLog, alternate


def test_ed_commas_are_decoded_and_ends_stripped():
    assert normalise_ed(" Today_comma_as i was leaving_comma_ I fell.  ") == "Today,as i was leaving, I fell."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Good morning , sir . Is there a bank near here ?", "Good morning, sir. Is there a bank near here?"),
        ("I ’ m a defender . It ’ s fun . You don ’ t have to", "I'm a defender. It's fun. You don't have to"),
        ("Good.Let ' s go now .", "Good.Let's go now."),
        ('They ’ re singing " Happy Birthday " .', 'They\'re singing "Happy Birthday".'),
        ("I got $ 500 a week , 10 % more !", "I got $500 a week, 10% more!"),
        ("Did you join the Communist Party of China ( CPC ) ?", "Did you join the Communist Party of China (CPC)?"),
        ("Mmmm ... if I come in", "Mmmm... if I come in"),
        ("The class is from 10 am - 12 .", "The class is from 10 am - 12."),
        ("  It costs 6.5 dollars .  ", "It costs 6.5 dollars."),
    ],
)
def test_dailydialog_tokenisation_is_undone(raw, expected):
    assert normalise_dd(raw) == expected


def conversation(n: int, **kw) -> Conversation:
    return Conversation(kw.pop("conv_id", "c1"), [f"u{i}" for i in range(1, n + 1)], kw.pop("source", "chat"), **kw)


def test_stagger_pairs_turns_and_accumulates_history():
    rows = stagger(conversation(4, emotion="proud", situation="s"))
    assert rows == [
        {"conv_id": "c1", "turn": 1, "history": [], "prompt": "u1", "response": "u2",
         "emotion": "proud", "situation": "s", "source": "chat"},
        {"conv_id": "c1", "turn": 2, "history": ["u1", "u2"], "prompt": "u3", "response": "u4",
         "emotion": "proud", "situation": "s", "source": "chat"},
    ]  # fmt: skip


def test_stagger_drops_an_unanswered_last_utterance():
    assert [(r["prompt"], r["response"]) for r in stagger(conversation(5))] == [("u1", "u2"), ("u3", "u4")]
    assert stagger(conversation(1)) == []


def test_stagger_takes_the_prompt_utterances_label_when_utterances_are_labelled():
    labels = [None, "happiness", "fear", None, "anger", "sadness"]
    rows = stagger(conversation(6, utterance_emotions=labels))
    assert [r["emotion"] for r in rows] == [None, "fear", "anger"]


def test_a_oneliner_is_its_own_prompt_and_response():
    rows = stagger(Conversation("o:1", ["Be kind today."], "oneliners"))
    assert rows == [
        {"conv_id": "o:1", "turn": 1, "history": [], "prompt": "Be kind today.", "response": "Be kind today.",
         "emotion": None, "situation": None, "source": "oneliners"}
    ]  # fmt: skip
    with pytest.raises(ValueError, match="one utterance"):
        stagger(Conversation("o:2", ["a", "b"], "oneliners"))


def test_alternate_skips_empty_utterances_and_keeps_speakers_in_their_turns():
    log = SkipLog()
    parts = [(0, "I lost my job.", None, 1), (1, "", None, 2), (0, "And my car broke.", "sadness", 3),
             (1, "That is a lot at once.", None, 4)]  # fmt: skip
    utterances, labels = alternate(parts, log, "f.csv")
    assert utterances == ["I lost my job. And my car broke.", "That is a lot at once."]
    assert labels == ["sadness", None]
    assert [str(s) for s in log.records] == ["f.csv:2: empty utterance skipped"]


def test_alternate_drops_replies_before_any_prompt():
    log = SkipLog()
    utterances, _ = alternate([(1, "Hi, how can I help?", None, 1), (0, "I feel low.", None, 1)], log, "f")
    assert utterances == ["I feel low."]
    assert log.records[0].reason == "reply before any prompt dropped"


def test_strict_log_raises_with_file_and_line():
    with pytest.raises(ValueError, match=r"^f\.txt:7: empty one-liner skipped$"):
        SkipLog(strict=True).add("f.txt", 7, "empty one-liner skipped")


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_chat_jsonl_policy(tmp_path):
    path = write_lines(
        tmp_path / "chats.jsonl",
        [
            json.dumps(
                [
                    {"role": "system", "content": "Be nice."},
                    {"role": "user", "content": " I failed. "},
                    {"role": "user", "content": "Again."},
                    {"role": "assistant", "content": "I'm sorry."},
                    {"role": "tool", "content": "{}"},
                    {"role": "user", "content": "Thanks."},
                ]
            ),  # fmt: skip
            json.dumps(
                {
                    "id": "chat-7",
                    "messages": [
                        {"role": "assistant", "content": "Hello!"},
                        {"role": "user", "content": "Hi."},
                        {"role": "assistant", "content": "How are you?"},
                    ],
                }
            ),  # fmt: skip
            "",
            "{not json",
            json.dumps([{"role": "user"}]),
            json.dumps({"text": "no messages"}),
        ],
    )
    result = read_chat_jsonl(path)
    assert [(c.conv_id, c.utterances) for c in result] == [
        ("chat:chats.jsonl:1", ["I failed. Again.", "I'm sorry.", "Thanks."]),
        ("chat-7", ["Hi.", "How are you?"]),
    ]
    assert [(s.line, s.reason) for s in result.skipped] == [
        (1, "system message dropped"),
        (1, "message of a role other than user/assistant/system dropped"),
        (2, "reply before any prompt dropped"),
        (4, "not valid JSON; line skipped"),
        (5, 'a message is not {"role": str, "content": str}; line skipped'),
        (6, 'not a list of messages or {"messages": [...]}; line skipped'),
    ]
    assert [r["turn"] for c in result for r in stagger(c)] == [1, 1]


def test_oneliners_text_and_jsonl(tmp_path):
    write_lines(tmp_path / "a.txt", ["  Small steps   still count. ", "", "You matter."])
    write_lines(tmp_path / "b.jsonl", [json.dumps(x) for x in ("Rest is productive.", {"text": ""}, {"x": 1})])
    result = read_oneliners(tmp_path)
    assert [(c.conv_id, c.utterances) for c in result] == [
        ("oneliners:a.txt:1", ["Small steps still count."]),
        ("oneliners:a.txt:3", ["You matter."]),
        ("oneliners:b.jsonl:1", ["Rest is productive."]),
    ]
    assert [(s.line, s.reason) for s in result.skipped] == [
        (2, "empty one-liner skipped"),
        (3, 'not a string or {"text": string}; line skipped'),
    ]


def test_embedded_conversation_lines_are_validated(tmp_path):
    good = {"conv_id": "e1", "emotion": "proud", "situation": "s", "utterances": ["a", "b", "c", "d"]}
    path = write_lines(
        tmp_path / "conversations.jsonl",
        [
            json.dumps(good),
            json.dumps({**good, "conv_id": "e2", "emotion": "happy"}),
            json.dumps({**good, "conv_id": "e3", "utterances": "a b"}),
        ],  # fmt: skip
    )
    result = read_embedded_conversations(path)
    assert [c.conv_id for c in result] == ["e1"]
    assert [s.detail for s in result.skipped] == [
        "\"emotion\" 'happy' is not one of the 32 EmpatheticDialogues labels",
        '"utterances" must be a list of strings',
    ]
    with pytest.raises(ValueError, match="conversations.jsonl:2: invalid embedded conversation"):
        read_embedded_conversations(path, strict=True)
