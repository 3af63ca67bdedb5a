"""From corpora to a ``DatasetDict`` of expert trajectories: read, drop duplicates, split, stagger, report."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable
from tqdm.auto import tqdm

from egail.data.conversation import Conversation, ReadResult, Skip
from egail.data.readers import (
    read_chat_jsonl,
    read_dailydialog,
    read_embedded_conversations,
    read_empatheticdialogues,
    read_oneliners,
)
from egail.data.splits import DEFAULT_SPLITS, check_splits, dedupe, split_conversations
from egail.data.stagger import stagger
from egail.schema import COLUMNS, ONELINERS_SOURCE

EMBEDDED_DIR = Path(__file__).resolve().parent / "embedded"
EMBEDDED_CONVERSATIONS = EMBEDDED_DIR / "conversations.jsonl"
EMBEDDED_ONELINERS = EMBEDDED_DIR / "oneliners.txt"

FEATURES = datasets.Features(
    {
        "conv_id": datasets.Value("string"),
        "turn": datasets.Value("int32"),
        "history": datasets.List(datasets.Value("string")),
        "prompt": datasets.Value("string"),
        "response": datasets.Value("string"),
        "emotion": datasets.Value("string"),
        "situation": datasets.Value("string"),
        "source": datasets.Value("string"),
    }
)


def _read_embedded(path: str | Path | None, *, strict: bool = False, progress: bool = False) -> ReadResult:
    """The dataset shipped in the package: the team's conversations plus its one-liners."""
    folder = Path(path) if path else EMBEDDED_DIR
    result = read_embedded_conversations(folder / EMBEDDED_CONVERSATIONS.name, strict=strict, progress=progress)
    result.extend(read_oneliners(folder / EMBEDDED_ONELINERS.name, strict=strict, progress=progress))
    return result


@dataclass(frozen=True)
class SourceKind:
    name: str
    reader: Callable[..., ReadResult]
    license: str
    needs_path: bool = True


#: ``--source KIND:PATH`` kinds. Licenses are the corpora's own; one-liners and chat logs come from the
#: user, whose terms egail cannot know ("unknown" on the card until they are checked).
SOURCE_KINDS: dict[str, SourceKind] = {
    "ed": SourceKind("ed", read_empatheticdialogues, "cc-by-nc-4.0"),
    "dd": SourceKind("dd", read_dailydialog, "cc-by-nc-sa-4.0"),
    "oneliners": SourceKind("oneliners", read_oneliners, "unknown"),
    "chat": SourceKind("chat", read_chat_jsonl, "unknown"),
    "embedded": SourceKind("embedded", _read_embedded, "cc-by-4.0", needs_path=False),
}
_ALIASES = {"empatheticdialogues": "ed", "dailydialog": "dd"}


def parse_source(spec: str | tuple[str, str | Path | None]) -> tuple[SourceKind, str | None]:
    """``"dd:PATH"`` (or ``("dd", PATH)``) -> the kind and path; ``"embedded"`` needs no path."""
    kind, path = spec if isinstance(spec, tuple) else (spec.split(":", 1) + [None])[:2]
    kind = _ALIASES.get(kind, kind)
    if kind not in SOURCE_KINDS:
        raise ValueError(f"source {spec!r}: unknown kind {kind!r}; use one of {sorted(SOURCE_KINDS)} as KIND:PATH")
    if SOURCE_KINDS[kind].needs_path and not path:
        raise ValueError(f"source {spec!r}: {kind} needs a path, as {kind}:PATH")
    return SOURCE_KINDS[kind], str(path) if path else None


@dataclass
class SourceReport:
    """What one ``--source`` gave: counts read, dropped, and per split; for the summary and the card."""

    kind: str
    path: str | None
    license: str
    conversations: int = 0
    utterances: int = 0
    unanswered: int = 0  # last utterances nobody answered: they make no turn
    skipped: int = 0
    splits: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}:{Path(self.path).name}" if self.path else self.kind


@dataclass
class BuildResult:
    dataset: datasets.DatasetDict
    sources: list[SourceReport]
    skipped: list[Skip]
    splits: dict[str, float]
    seed: int

    def card(self) -> str:
        from egail.data.card import dataset_card

        return dataset_card(self)

    def summary(self, max_skips: int = 20) -> str:
        from egail.data.card import summary_table

        return summary_table(self, max_skips=max_skips)

    def save(self, out_dir: str | Path) -> Path:
        """``save_to_disk`` the DatasetDict, with the card as README.md and every skip in skipped.txt."""
        out = Path(out_dir)
        self.dataset.save_to_disk(str(out))
        (out / "README.md").write_text(self.card(), encoding="utf-8")
        (out / "skipped.txt").write_text("".join(f"{skip}\n" for skip in self.skipped), encoding="utf-8")
        return out

    def push_to_hub(self, repo_id: str, *, private: bool = False, token: str | None = None) -> str:
        """Push the parquet shards with ``datasets``, then replace the card it writes with ours."""
        from huggingface_hub import HfApi

        self.dataset.push_to_hub(repo_id, private=private, token=token, commit_message="Upload expert trajectories")
        info = HfApi(token=token).upload_file(
            path_or_fileobj=self.card().encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            commit_message="Dataset card: sources, licenses, counts, staggering rule",
        )
        return str(info)


def build_dataset(
    sources: Sequence[str | tuple[str, str | Path | None]],
    *,
    splits: Mapping[str, float] = DEFAULT_SPLITS,
    seed: int = 0,
    strict: bool = False,
    progress: bool = True,
) -> BuildResult:
    """Read every source, drop duplicate conversations, split by conversation, stagger into rows.

    Line-level problems in the data are skipped and reported in the result (``strict=True`` raises on the
    first instead); conversations without a complete turn and duplicates are dropped by rule, and reported.
    """
    splits = check_splits(splits)
    if not sources:
        raise ValueError("no sources given; e.g. ed:PATH, dd:PATH, oneliners:PATH, chat:PATH or embedded")
    reports: list[SourceReport] = []
    skipped: list[Skip] = []
    conversations: list[Conversation] = []
    report_of: dict[int, SourceReport] = {}  # id(conversation) -> its source's report
    for spec in sources:
        kind, path = parse_source(spec)
        read = kind.reader(path, strict=strict, progress=progress)
        report = SourceReport(kind.name, path, kind.license, skipped=len(read.skipped))
        reports.append(report)
        skipped.extend(read.skipped)
        for conversation in read:
            report.conversations += 1
            report.utterances += len(conversation.utterances)
            if len(conversation.utterances) % 2 and conversation.source != ONELINERS_SOURCE:
                report.unanswered += 1
            if len(conversation.utterances) < 2 and conversation.source != ONELINERS_SOURCE:
                where = (conversation.path or kind.name, conversation.line)
                record = Skip(*where, "no complete turn; conversation dropped", conversation.conv_id)
                _drop(record, report, skipped)
                continue
            report_of[id(conversation)] = report
            conversations.append(conversation)

    conversations, dropped = dedupe(conversations)
    for conversation, record in dropped:
        _drop(record, report_of[id(conversation)], skipped)

    split_rows: dict[str, list[dict]] = {}
    for name, members in split_conversations(conversations, splits, seed).items():
        rows = split_rows[name] = []
        for report in reports:
            report.splits[name] = {"conversations": 0, "rows": 0}
        for conversation in tqdm(members, desc=f"staggering {name}", unit=" conv", disable=not progress):
            new_rows = stagger(conversation)
            counts = report_of[id(conversation)].splits[name]
            counts["conversations"] += 1
            counts["rows"] += len(new_rows)
            rows.extend(new_rows)
    dataset = datasets.DatasetDict({name: _dataset(rows) for name, rows in split_rows.items()})
    return BuildResult(dataset, reports, skipped, splits, seed)


def _dataset(rows: list[dict]) -> datasets.Dataset:
    """Rows to a Dataset through arrow directly: the values already have the feature types, and
    ``Dataset.from_list`` would spend seconds re-encoding DailyDialog's rows one by one."""
    table = pa.Table.from_pylist(rows, schema=FEATURES.arrow_schema)
    return datasets.Dataset(InMemoryTable(table), info=datasets.DatasetInfo(features=FEATURES.copy()))


def _drop(record: Skip, report: SourceReport, skipped: list[Skip]) -> None:
    report.skipped += 1
    skipped.append(record)


def load_trajectories(
    name_or_path: str | Path = "embedded", *, splits: Mapping[str, float] = DEFAULT_SPLITS, seed: int = 0
) -> datasets.DatasetDict:
    """Expert trajectories: ``"embedded"`` (built from the package's own data, split by ``splits``/``seed``),
    a folder written by ``save_to_disk`` (``python -m egail.data build --out``) or in the Hub's layout, or a
    Hub dataset id."""
    if str(name_or_path) == "embedded":
        return build_dataset(["embedded"], splits=splits, seed=seed, strict=True, progress=False).dataset
    path = Path(name_or_path)
    if (path / "dataset_dict.json").is_file():
        dataset = datasets.load_from_disk(str(path))
    else:
        dataset = datasets.load_dataset(str(name_or_path))
    if not isinstance(dataset, datasets.DatasetDict):
        raise ValueError(f"{name_or_path}: expected a DatasetDict with splits, got {type(dataset).__name__}")
    for name, split in dataset.items():
        missing = [c for c in COLUMNS if c not in split.column_names]
        if missing:
            raise ValueError(f"{name_or_path}: split {name!r} lacks the trajectory columns {missing}")
    return dataset
