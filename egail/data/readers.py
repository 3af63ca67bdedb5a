"""Readers for each corpus, in its original distribution format and in the Hub's parquet layout.

Every reader returns a :class:`ReadResult`. A problem with a whole file (missing, wrong columns) raises
``FileNotFoundError`` / ``ValueError`` naming the file; a problem with one line (bytes that are not UTF-8,
a label line that does not match its dialogue, malformed JSON) is logged as a :class:`Skip` naming the file
and line, and reading goes on. With ``strict=True`` the first such problem raises ``ValueError`` instead.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from egail.data.conversation import (
    CHAT_SOURCE,
    DD_EMOTIONS,
    DD_SOURCE,
    ED_EMOTIONS,
    ED_SOURCE,
    EMBEDDED_SOURCE,
    Conversation,
    ReadResult,
    SkipLog,
    alternate,
    clean,
    normalise_dd,
    normalise_ed,
)
from egail.schema import ONELINERS_SOURCE

#: The EmpatheticDialogues columns this reader uses (speaker_idx, selfeval and tags may be present too).
ED_COLUMNS = ("conv_id", "utterance_idx", "context", "prompt", "utterance")
#: The columns of the Hub's ``daily_dialog`` parquet layout that this reader uses (``act`` is not needed).
DD_PARQUET_COLUMNS = ("dialog", "emotion")


class LayoutError(ValueError):
    """A file whose columns are not the corpus's: an error for a file named on its own, a skip in a folder."""


_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" turns undecodable bytes into
_NOT_UTF8_REASON = "bytes that are not valid UTF-8; line skipped"
_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON's "\ud800" escapes decode to these; arrow cannot store them
_SURROGATE_REASON = "text that is not valid Unicode (a lone surrogate); line skipped"


def _files(path: str | Path, patterns: tuple[str, ...], what: str) -> list[Path]:
    """The file itself, or the matching files anywhere under a folder (sorted, so builds are repeatable)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder ({what})")
    found = sorted({p for pattern in patterns for p in path.rglob(pattern) if p.is_file()})
    if not found:
        raise FileNotFoundError(f"{path}: no {what} files ({', '.join(patterns)}) in this folder")
    return found


def _lines(path: Path, progress: bool) -> Iterator[tuple[int, str]]:
    """1-based numbered lines, without line ends; undecodable bytes kept as surrogates for the caller."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        for number, line in enumerate(tqdm(f, desc=path.name, unit=" lines", disable=not progress), start=1):
            yield number, line.rstrip("\r\n")


def _parquet_rows(path: Path, required: tuple[str, ...], what: str) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for files that are not parquet
        raise ValueError(f"{path}: not a readable parquet file ({error})") from error
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise LayoutError(f"{path}: missing columns {missing} for the {what} layout (found {table.column_names})")
    return table.select(list(required)).to_pylist()


# --------------------------------------------------------------------------- EmpatheticDialogues


def read_empatheticdialogues(path: str | Path, *, strict: bool = False, progress: bool = False) -> ReadResult:
    """EmpatheticDialogues: its CSV files (or a folder of them), or the Hub's parquet files.

    Speakers alternate by ``utterance_idx`` (odd: the speaker who wrote the situation, even: the listener);
    ``speaker_idx`` is not needed, it holds worker ids in the original release. ``context`` is the
    conversation's emotion and ``prompt`` its situation. Both the original unquoted files (commas written
    ``_comma_``, split on ``,`` like ED's own loader) and properly quoted CSV are read, one row per line.
    In a folder, files with other columns are skipped (and logged); a file named on its own must fit.
    """
    log = SkipLog(strict)
    result = ReadResult(skipped=log.records)
    for file in _files(path, ("*.csv", "*.parquet"), "EmpatheticDialogues .csv/.parquet"):
        try:
            if file.suffix == ".parquet":
                rows = list(enumerate(_parquet_rows(file, ED_COLUMNS, "EmpatheticDialogues"), 1))
            else:
                rows = list(_ed_csv_rows(file, log, progress))
        except LayoutError as error:
            _skip_file(path, file, error, log)
            continue
        result.conversations.extend(_ed_conversations(file, rows, log))
    return result


def _skip_file(path: str | Path, file: Path, error: LayoutError, log: SkipLog) -> None:
    """A folder may hold other files (ED's release has per-conversation CSVs beside the utterance ones)."""
    if Path(path).is_file():
        raise error
    detail = str(error).removeprefix(f"{file}:1: ").removeprefix(f"{file}: ")
    log.add(str(file), None, "not in the corpus's layout; file skipped", detail)


def _ed_csv_rows(file: Path, log: SkipLog, progress: bool) -> Iterator[tuple[int, dict[str, str]]]:
    lines = _lines(file, progress)
    header_line = next(lines, None)
    if header_line is None:
        raise ValueError(f"{file}:1: empty file, expected an EmpatheticDialogues CSV header")
    try:
        header = next(csv.reader([header_line[1]]))
    except csv.Error:  # e.g. a field over csv's size limit: not an ED header, reported as missing columns below
        header = header_line[1].split(",")
    missing = [c for c in ED_COLUMNS if c not in header]
    if missing:
        raise LayoutError(f"{file}:1: missing columns {missing} (header has {header}; needs {list(ED_COLUMNS)})")
    index = {name: header.index(name) for name in ED_COLUMNS}
    for number, line in _readable(lines, file, log):
        try:
            fields = next(csv.reader([line], strict=True))
        except csv.Error:  # a quote inside an unquoted original line: split on commas, as ED's own loader does
            fields = line.split(",")
        if len(fields) < len(header):
            log.add(str(file), number, "too few fields; row skipped", f"{len(fields)}, the header has {len(header)}")
            continue
        yield number, {name: fields[i] for name, i in index.items()}


def _ed_conversations(file: Path, rows: list[tuple[int, dict[str, Any]]], log: SkipLog) -> list[Conversation]:
    grouped: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    for number, row in rows:
        try:
            idx = int(row["utterance_idx"])
        except (TypeError, ValueError):
            log.add(str(file), number, "utterance_idx is not an integer; row skipped", repr(row["utterance_idx"]))
            continue
        grouped.setdefault(str(row["conv_id"]).strip(), []).append((idx, number, row))

    conversations = []
    for conv_id, group in grouped.items():
        group.sort(key=lambda item: item[0])
        first_line = min(number for _, number, _ in group)
        parts, seen = [], set()
        for idx, number, row in group:
            if idx in seen:
                log.add(str(file), number, "utterance_idx repeated; row skipped", f"{conv_id} utterance_idx {idx}")
                continue
            seen.add(idx)
            parts.append(((idx - 1) % 2, normalise_ed(str(row["utterance"] or "")), None, number))
        utterances, _ = alternate(parts, log, str(file))
        first = group[0][2]
        emotion = str(first["context"] or "").strip().lower()
        if emotion not in ED_EMOTIONS:
            log.add(str(file), first_line, "emotion is not an ED label; left null", f"{conv_id}: {emotion!r}")
        conversations.append(
            Conversation(
                conv_id=conv_id,
                utterances=utterances,
                source=ED_SOURCE,
                emotion=emotion if emotion in ED_EMOTIONS else None,
                situation=normalise_ed(str(first["prompt"] or "")) or None,
                path=str(file),
                line=first_line,
            )
        )
    return conversations


# --------------------------------------------------------------------------- DailyDialog


def read_dailydialog(path: str | Path, *, strict: bool = False, progress: bool = False) -> ReadResult:
    """DailyDialog: ``dialogues_<split>.txt`` with ``dialogues_emotion_<split>.txt`` beside it (a file, or a
    folder holding them), or the Hub's parquet files (``dialog``/``act``/``emotion`` columns).

    Speakers alternate, speaker A first. Each utterance keeps its emotion label (0 "none" becomes null);
    a dialogue whose label line does not match its utterances keeps its text with null emotions, logged.
    Dialogue acts are not part of the trajectories and are not read.
    """
    log = SkipLog(strict)
    result = ReadResult(skipped=log.records)
    files = _files(path, ("dialogues_*.txt", "*.parquet"), "DailyDialog dialogues_*.txt/.parquet")
    files = [f for f in files if not f.name.startswith(("dialogues_act", "dialogues_emotion"))]
    if not files:
        raise FileNotFoundError(f"{path}: no DailyDialog dialogues_<split>.txt or .parquet files")
    for file in files:
        if file.suffix == ".parquet":
            try:
                rows = _parquet_rows(file, DD_PARQUET_COLUMNS, "DailyDialog")
            except LayoutError as error:
                _skip_file(path, file, error, log)
                continue
            for row_number, row in enumerate(rows, 1):
                where = (str(file), row_number)
                conversation = _dd_conversation(file, row_number, row["dialog"] or [], row["emotion"], where, log)
                if conversation is not None:
                    result.conversations.append(conversation)
        else:
            result.conversations.extend(_dd_text_file(file, log, progress))
    return result


def _dd_text_file(file: Path, log: SkipLog, progress: bool) -> Iterator[Conversation]:
    emotion_file = file.with_name(file.name.replace("dialogues_", "dialogues_emotion_", 1))
    if not emotion_file.is_file():
        raise FileNotFoundError(f"{emotion_file}: missing; DailyDialog's {file.name} needs its emotion file")
    label_lines = dict(_lines(emotion_file, progress=False))
    numbers = set()
    for number, line in _lines(file, progress):
        numbers.add(number)
        if _NOT_UTF8.search(line):
            log.add(str(file), number, _NOT_UTF8_REASON)
            continue
        if not line.strip():
            log.add(str(file), number, "empty dialogue line skipped")
            continue
        segments = line.split("__eou__")
        if not segments[-1].strip():  # every utterance ends with __eou__, so the last piece is empty
            segments.pop()
        labels = label_lines.get(number)
        raw_labels = labels.split() if labels is not None else None
        conversation = _dd_conversation(file, number, segments, raw_labels, (str(emotion_file), number), log)
        if conversation is not None:
            yield conversation
    for number in sorted(set(label_lines) - numbers):
        if label_lines[number].strip():
            log.add(str(emotion_file), number, "label line without a dialogue; ignored", f"{file.name} ends earlier")


def _dd_conversation(
    file: Path,
    number: int,
    segments: list[str],
    raw_labels: list[Any] | None,
    label_where: tuple[str, int],
    log: SkipLog,
) -> Conversation | None:
    labels = _dd_labels(raw_labels, len(segments), label_where, log)
    parts = [(i % 2, normalise_dd(str(text or "")), labels[i], number) for i, text in enumerate(segments)]
    utterances, utterance_emotions = alternate(parts, log, str(file))
    if not utterances:
        log.add(str(file), number, "dialogue has no utterance; skipped")
        return None
    return Conversation(
        conv_id=f"{DD_SOURCE}:{file.name}:{number}",
        utterances=utterances,
        source=DD_SOURCE,
        utterance_emotions=utterance_emotions,
        path=str(file),
        line=number,
    )


def _dd_labels(raw: list[Any] | None, count: int, where: tuple[str, int], log: SkipLog) -> list[str | None]:
    """Emotion names for ``count`` utterances; all null (and logged) when the label line does not fit."""
    unknown: list[str | None] = [None] * count
    if raw is None:
        log.add(*where, "no emotion label line; emotions left null", f"dialogue of {count} utterances")
        return unknown
    if len(raw) != count:
        log.add(
            *where,
            "emotion labels do not match the utterances; emotions of this dialogue left null",
            f"{len(raw)} labels for {count} utterances",
        )
        return unknown
    labels: list[str | None] = []
    for value in raw:
        try:
            label = DD_EMOTIONS[int(value)] if 0 <= int(value) < len(DD_EMOTIONS) else None
        except (TypeError, ValueError):
            label = None
        if label is None:
            log.add(*where, "emotion label is not one of 0..6; emotions of this dialogue left null", repr(value))
            return unknown
        labels.append(None if label == "none" else label)
    return labels


# --------------------------------------------------------------------------- one-liners and chat logs


def _json_lines(file: Path, log: SkipLog, progress: bool) -> Iterator[tuple[int, Any]]:
    for number, line in _text_lines(file, log, progress):
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            log.add(str(file), number, "not valid JSON; line skipped", f"{error.msg} at column {error.colno}")
            continue
        except RecursionError:
            log.add(str(file), number, "JSON nested too deeply; line skipped")
            continue
        if "\\u" in line and _SURROGATE.search(json.dumps(item, ensure_ascii=False)):
            log.add(str(file), number, _SURROGATE_REASON)
            continue
        yield number, item


def read_oneliners(
    path: str | Path, *, strict: bool = False, progress: bool = False, source: str = ONELINERS_SOURCE
) -> ReadResult:
    """One uplifting text per line (the paper's tweets): plain text, or JSONL of strings or ``{"text": ...}``.

    Each becomes a one-utterance conversation that staggers into one row with prompt = response.
    """
    log = SkipLog(strict)
    result = ReadResult(skipped=log.records)
    for file in _files(path, ("*.txt", "*.jsonl"), "one-liner .txt/.jsonl"):
        if file.suffix in (".jsonl", ".json"):
            items: Iterable[tuple[int, Any]] = _json_lines(file, log, progress)
        else:
            items = _text_lines(file, log, progress)
        for number, item in items:
            text = item.get("text") if isinstance(item, dict) else item
            if not isinstance(text, str):
                log.add(str(file), number, 'not a string or {"text": string}; line skipped')
                continue
            text = clean(text)
            if not text:
                log.add(str(file), number, "empty one-liner skipped")
                continue
            conv_id = f"{source}:{file.name}:{number}"
            result.conversations.append(Conversation(conv_id, [text], source, path=str(file), line=number))
    return result


def _text_lines(file: Path, log: SkipLog, progress: bool) -> Iterator[tuple[int, str]]:
    return _readable(_lines(file, progress), file, log)


def _readable(lines: Iterator[tuple[int, str]], file: Path, log: SkipLog) -> Iterator[tuple[int, str]]:
    """The numbered lines worth parsing: blank lines dropped, lines that are not UTF-8 logged and dropped."""
    for number, line in lines:
        if _NOT_UTF8.search(line):
            log.add(str(file), number, _NOT_UTF8_REASON)
        elif line.strip():
            yield number, line


_CHAT_SPEAKERS = {"user": 0, "assistant": 1}


def read_chat_jsonl(path: str | Path, *, strict: bool = False, progress: bool = False) -> ReadResult:
    """Generic chat logs: per line a list of ``{"role", "content"}`` messages, or ``{"messages": [...]}``
    (an ``"id"`` there becomes the conv_id).

    A turn is a user message and the assistant reply after it. System messages are dropped (and counted):
    a trajectory is what the two speakers said, and egail adds its own system prompt when it renders one.
    Consecutive messages of one role are joined; other roles (tool, function) are dropped and counted.
    """
    log = SkipLog(strict)
    result = ReadResult(skipped=log.records)
    for file in _files(path, ("*.jsonl",), "chat .jsonl"):
        for number, item in _json_lines(file, log, progress):
            messages = item.get("messages") if isinstance(item, dict) else item
            conv_id = item.get("id") if isinstance(item, dict) else None
            parts = _chat_parts(messages, file, number, log)
            if parts is None:
                continue
            utterances, _ = alternate(parts, log, str(file))
            result.conversations.append(
                Conversation(
                    conv_id=str(conv_id) if conv_id is not None else f"{CHAT_SOURCE}:{file.name}:{number}",
                    utterances=utterances,
                    source=CHAT_SOURCE,
                    path=str(file),
                    line=number,
                )
            )
    return result


def _chat_parts(messages: Any, file: Path, number: int, log: SkipLog) -> list | None:
    if not isinstance(messages, list):
        log.add(str(file), number, 'not a list of messages or {"messages": [...]}; line skipped')
        return None
    parts = []
    for i, message in enumerate(messages, start=1):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):  # fmt: skip
            log.add(str(file), number, 'a message is not {"role": str, "content": str}; line skipped', f"message {i}")
            return None
        role = message["role"]
        if role not in _CHAT_SPEAKERS:
            if role == "system":
                log.add(str(file), number, "system message dropped")
            else:
                log.add(str(file), number, "message of a role other than user/assistant/system dropped", role)
            continue
        parts.append((_CHAT_SPEAKERS[role], message["content"].strip(), None, number))
    return parts


# --------------------------------------------------------------------------- the embedded dataset


def read_embedded_conversations(path: str | Path, *, strict: bool = False, progress: bool = False) -> ReadResult:
    """The team-written conversations shipped with egail: JSONL of ``{"conv_id", "emotion", "situation",
    "utterances"}``, utterances alternating speaker/listener, speaker first."""
    log = SkipLog(strict)
    result = ReadResult(skipped=log.records)
    for file in _files(path, ("*.jsonl",), "embedded conversations .jsonl"):
        for number, item in _json_lines(file, log, progress):
            problem = _embedded_problem(item)
            if problem:
                log.add(str(file), number, "invalid embedded conversation; line skipped", problem)
                continue
            parts = [(i % 2, clean(text), None, number) for i, text in enumerate(item["utterances"])]
            utterances, _ = alternate(parts, log, str(file))
            result.conversations.append(
                Conversation(
                    conv_id=item["conv_id"],
                    utterances=utterances,
                    source=EMBEDDED_SOURCE,
                    emotion=item["emotion"],
                    situation=clean(item.get("situation") or "") or None,
                    path=str(file),
                    line=number,
                )
            )
    return result


def _embedded_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "expected a JSON object"
    if not isinstance(item.get("conv_id"), str) or not item["conv_id"]:
        return '"conv_id" must be a non-empty string'
    if item.get("emotion") not in ED_EMOTIONS:
        return f'"emotion" {item.get("emotion")!r} is not one of the 32 EmpatheticDialogues labels'
    if not isinstance(item.get("situation", ""), (str, type(None))):
        return '"situation" must be a string'
    utterances = item.get("utterances")
    if not (isinstance(utterances, list) and all(isinstance(u, str) for u in utterances)):
        return '"utterances" must be a list of strings'
    return None
