"""What every reader returns: conversations in one shape, plus a record of what was skipped and why.

A :class:`Conversation` holds the utterances of two speakers, strictly alternating and starting with the
speaker whose utterances become prompts (ED's speaker, DailyDialog's speaker A, a chat's user). Readers
bring every corpus into that shape with :func:`alternate`, so that staggering is one simple rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

#: The 32 EmpatheticDialogues emotion labels (the values of ED's ``context`` column).
ED_EMOTIONS: tuple[str, ...] = (
    "afraid", "angry", "annoyed", "anticipating", "anxious", "apprehensive", "ashamed", "caring",
    "confident", "content", "devastated", "disappointed", "disgusted", "embarrassed", "excited", "faithful",
    "furious", "grateful", "guilty", "hopeful", "impressed", "jealous", "joyful", "lonely", "nostalgic",
    "prepared", "proud", "sad", "sentimental", "surprised", "terrified", "trusting",
)  # fmt: skip

#: DailyDialog's emotion ids 0..6; "none" (id 0) becomes a null emotion in the rows.
DD_EMOTIONS: tuple[str, ...] = ("none", "anger", "disgust", "fear", "happiness", "sadness", "surprise")

#: Source names written in the ``source`` column.
ED_SOURCE = "empatheticdialogues"
DD_SOURCE = "dailydialog"
# The one-liners' source name, egail.schema.ONELINERS_SOURCE, lives beside the row schema.
CHAT_SOURCE = "chat"
EMBEDDED_SOURCE = "embedded"


@dataclass(frozen=True)
class Skip:
    """Something a reader or the build left out: where (file, 1-based line or parquet row) and why.

    ``reason`` is a fixed phrase (what was wrong; what was done), so reports can count by it; ``detail``
    holds the particulars of this case.
    """

    path: str
    line: int | None
    reason: str
    detail: str = ""

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.reason}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Conversation:
    """Two speakers' utterances, alternating, first speaker first; optional labels per conversation/utterance."""

    conv_id: str
    utterances: list[str]
    source: str
    emotion: str | None = None
    situation: str | None = None
    #: One label per utterance (DailyDialog); when set, a row's emotion is its prompt utterance's label.
    utterance_emotions: list[str | None] | None = None
    path: str | None = None
    line: int | None = None


@dataclass
class ReadResult:
    """A reader's output: the conversations, and the skip records for the build's report.

    It iterates and sizes like its list of conversations, so ``list(read_dailydialog(p))`` works.
    """

    conversations: list[Conversation] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    def __iter__(self) -> Iterator[Conversation]:
        return iter(self.conversations)

    def __len__(self) -> int:
        return len(self.conversations)

    def __getitem__(self, index: int) -> Conversation:
        return self.conversations[index]

    def extend(self, other: ReadResult) -> None:
        self.conversations.extend(other.conversations)
        self.skipped.extend(other.skipped)


class SkipLog:
    """Collects skip records, or raises at the first one when ``strict`` (for data that must be clean)."""

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self.records: list[Skip] = []

    def add(self, path: str, line: int | None, reason: str, detail: str = "") -> None:
        record = Skip(str(path), line, reason, detail)
        if self.strict:
            raise ValueError(str(record))
        self.records.append(record)


def alternate(
    parts: Iterable[tuple[int, str, str | None, int | None]], log: SkipLog, path: str
) -> tuple[list[str], list[str | None]]:
    """Bring ``(speaker 0|1, text, label, line)`` parts into strictly alternating utterances, speaker 0 first.

    Empty utterances are skipped (and logged). Consecutive utterances of one speaker, which that leaves
    behind or which a chat log has, are joined with a space: they answer the same prompt, or are answered
    by the same reply, so this keeps every speaker's words in the right turn. A joined utterance keeps the
    first label it has. Utterances of speaker 1 before any of speaker 0 answer nothing and are dropped.
    """
    utterances: list[str] = []
    labels: list[str | None] = []
    speakers: list[int] = []
    for speaker, text, label, line in parts:
        if not text:
            log.add(path, line, "empty utterance skipped")
            continue
        if speakers and speakers[-1] == speaker:
            utterances[-1] = f"{utterances[-1]} {text}"
            labels[-1] = labels[-1] or label
            continue
        if not speakers and speaker == 1:
            log.add(path, line, "reply before any prompt dropped")
            continue
        utterances.append(text)
        labels.append(label)
        speakers.append(speaker)
    return utterances, labels


def clean(text: str) -> str:
    """Whitespace runs become one space, ends stripped (for corpora whose line breaks carry no meaning)."""
    return " ".join(text.split())


def normalise_ed(text: str) -> str:
    """EmpatheticDialogues writes commas as ``_comma_`` so its CSV needs no quoting."""
    return clean(text.replace("_comma_", ","))


# DailyDialog is tokenised: "I ’ m fine , thanks ." -> "I'm fine, thanks."
_DD_CONTRACTION = re.compile(r"(?<=\w) ?[’'] ?(?=(?:s|m|t|d|re|ve|ll)\b)", re.IGNORECASE)
_DD_BEFORE = re.compile(r" +(?=[,.?!;:%)\]”’…。]|\.\.)")
_DD_OPENERS = re.compile(r"[(\[“‘$£¥] ")
_DD_AFTER = re.compile(r"(?<=[(\[“‘$£¥]) +")
_DD_QUOTED = re.compile(r'" ([^"]*?) "')


def normalise_dd(text: str) -> str:
    """Undo DailyDialog's tokenisation: spaces before punctuation, after opening brackets and currency
    signs, inside straight quotes, and around the apostrophe (``’`` in contractions becomes ``'``)."""
    text = clean(text)
    if "'" in text or "’" in text:
        text = _DD_CONTRACTION.sub("'", text)
    text = _DD_BEFORE.sub("", text)
    if _DD_OPENERS.search(text):
        text = _DD_AFTER.sub("", text)
    return _DD_QUOTED.sub(r'"\1"', text) if '"' in text else text
