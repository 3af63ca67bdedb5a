"""The dataset card (README.md with YAML metadata) and the build's summary table."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import yaml

from egail.data.stagger import STAGGERING_RULE

if TYPE_CHECKING:
    from egail.data.build import BuildResult

LICENSES = {
    "cc-by-nc-4.0": ("CC BY-NC 4.0", "https://creativecommons.org/licenses/by-nc/4.0/"),
    "cc-by-nc-sa-4.0": ("CC BY-NC-SA 4.0", "https://creativecommons.org/licenses/by-nc-sa/4.0/"),
    "cc-by-4.0": ("CC BY 4.0", "https://creativecommons.org/licenses/by/4.0/"),
    "unknown": ("not stated", "check the terms of this source before publishing"),
}

LICENSE_NOTES = {
    "cc-by-nc-4.0": "CC BY-NC 4.0 (EmpatheticDialogues): attribution, non-commercial use only.",
    "cc-by-nc-sa-4.0": "CC BY-NC-SA 4.0 (DailyDialog): attribution, non-commercial use only, and data derived "
    "from it must be shared under the same license.",
    "cc-by-4.0": "CC BY 4.0 (egail's embedded dataset): attribution.",
    "unknown": 'Sources marked "not stated" were supplied to the build without license information.',
}

SOURCE_DESCRIPTIONS = {
    "ed": ("EmpatheticDialogues (Rashkin et al., ACL 2019)", "extended|empathetic_dialogues"),
    "dd": ("DailyDialog (Li et al., IJCNLP 2017)", "extended|daily_dialog"),
    "oneliners": ("uplifting one-liners supplied to the build", "original"),
    "chat": ("chat logs supplied to the build", "original"),
    "embedded": ("egail's embedded dataset, written by the egail team", "original"),
}

# Kept by hand in step with egail.data.build.FEATURES, in the Hub's YAML form.
_FEATURES_YAML = [
    {"name": "conv_id", "dtype": "string"},
    {"name": "turn", "dtype": "int32"},
    {"name": "history", "list": "string"},
    {"name": "prompt", "dtype": "string"},
    {"name": "response", "dtype": "string"},
    {"name": "emotion", "dtype": "string"},
    {"name": "situation", "dtype": "string"},
    {"name": "source", "dtype": "string"},
]


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def metadata(result: BuildResult) -> dict:
    """The card's YAML: Hub fields (license, configs, dataset_info, ...) plus an ``egail`` build record."""
    licenses = sorted({source.license for source in result.sources})
    total = sum(len(split) for split in result.dataset.values())
    return {
        "pretty_name": "egail expert trajectories",
        "language": ["en"],
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "task_categories": ["text-generation"],
        "tags": ["empathy", "dialogue", "imitation-learning", "gail", "trl"],
        "size_categories": [_size_category(total)],
        "source_datasets": sorted({SOURCE_DESCRIPTIONS[s.kind][1] for s in result.sources}),
        "configs": [
            {
                "config_name": "default",
                "data_files": [{"split": name, "path": f"data/{name}-*"} for name in result.dataset],
            }
        ],
        "dataset_info": {
            "features": _FEATURES_YAML,
            "splits": [
                {"name": name, "num_bytes": split.data.nbytes, "num_examples": len(split)}
                for name, split in result.dataset.items()
            ],
        },
        "egail": {
            "staggering_rule": STAGGERING_RULE,
            "seed": result.seed,
            "split_ratios": result.splits,
            "sources": [
                {
                    "kind": s.kind,
                    "source": s.label,
                    "license": s.license,
                    "conversations_read": s.conversations,
                    "utterances_read": s.utterances,
                    "unanswered_last_utterances": s.unanswered,
                    "skipped": s.skipped,
                    "splits": s.splits,
                }
                for s in result.sources
            ],
            "skipped": len(result.skipped),
        },
    }


def dataset_card(result: BuildResult) -> str:
    meta = yaml.safe_dump(metadata(result), sort_keys=False, allow_unicode=True, width=1000)
    splits = list(result.dataset)
    lines = [
        f"---\n{meta}---",
        "",
        "# egail expert trajectories",
        "",
        "Expert trajectories for Generative Adversarial Imitation Learning of empathetic dialogue, built by "
        "`python -m egail.data build` following Muthukumar et al., *Generative Adversarial Imitation Learning "
        "for Empathy-based AI* (2021, arXiv:2105.13328). Each row is one turn of a conversation: the earlier "
        "utterances (`history`), the user's `prompt`, and the expert `response` that GAIL imitates.",
        "",
        "## Staggering rule",
        "",
        STAGGERING_RULE,
        "",
        "Text is normalised: EmpatheticDialogues' `_comma_` becomes `,`; DailyDialog's tokenisation (spaces "
        "around punctuation and `’`) is undone; whitespace is stripped and empty utterances are skipped. "
        "DailyDialog labels each utterance, and a row's `emotion` is the label of its *prompt* utterance "
        '(null for DailyDialog\'s "no emotion"); EmpatheticDialogues labels each conversation, and its '
        "`situation` is ED's `prompt` text.",
        "",
        "## Sources, licenses and counts",
        "",
        "Splits are by conversation (never by turn), "
        + ", ".join(f"{name} {ratio:g}" for name, ratio in result.splits.items())
        + f" of each source, ordered by a hash of the conv_id with seed {result.seed}. Exact duplicate "
        "conversations (DailyDialog's splits overlap) are kept once.",
        "",
        "| source | license | conversations read | " + " | ".join(f"{n} conv. / rows" for n in splits) + " |",
        "|---|---|---|" + "---|" * len(splits),
    ]
    for s in result.sources:
        name, link = LICENSES[s.license]
        cells = [f"{s.splits[n]['conversations']:,} / {s.splits[n]['rows']:,}" for n in splits]
        lines.append(
            f"| {SOURCE_DESCRIPTIONS[s.kind][0]} (`{s.label}`) | {name} ({link}) | {s.conversations:,} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "Every row keeps the license of its source; filter on the `source` column to use a part on its own "
        "terms. " + " ".join(LICENSE_NOTES[lic] for lic in sorted({s.license for s in result.sources})),
        "",
        "## Columns",
        "",
        "`conv_id` (str), `turn` (int, 1-based), `history` (list of str, alternating user/assistant, starting "
        "with the user), `prompt` (str), `response` (str), `emotion` (str or null), `situation` (str or null), "
        "`source` (str).",
        "",
        "## Skipped while building",
        "",
        f"{len(result.skipped):,} items were skipped; the build's `skipped.txt` names each file, line and reason.",
        *_skip_lines(result, 10),
        "",
        "## Citations",
        "",
        "- Rashkin, Smith, Li, Boureau. *Towards Empathetic Open-domain Conversation Models: a New Benchmark "
        "and Dataset*. ACL 2019.",
        "- Li, Su, Shen, Li, Cao, Niu. *DailyDialog: A Manually Labelled Multi-turn Dialogue Dataset*. IJCNLP 2017.",
        "- Muthukumar, Muthukumar, Muthirayan, Khargonekar. *Generative Adversarial Imitation Learning for "
        "Empathy-based AI*. arXiv:2105.13328, 2021.",
        "",
    ]
    return "\n".join(lines)


def _skip_lines(result: BuildResult, limit: int) -> list[str]:
    reasons = Counter(skip.reason for skip in result.skipped)
    return [f"- {count:,}: {reason}" for reason, count in reasons.most_common(limit)]


def summary_table(result: BuildResult, max_skips: int = 20) -> str:
    splits = list(result.dataset)
    header = ["source", "license", "read", "unanswered", "skipped", *[f"{n} conv/rows" for n in splits]]
    rows = [
        [
            s.label,
            s.license,
            f"{s.conversations:,}",
            f"{s.unanswered:,}",
            f"{s.skipped:,}",
            *[f"{s.splits[n]['conversations']:,}/{s.splits[n]['rows']:,}" for n in splits],
        ]
        for s in result.sources
    ]
    rows.append(["total", "", *[""] * 3, *[f"{len(result.dataset[n]):,} rows" for n in splits]])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    text = [
        "  ".join(
            cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=False))
        )
        for row in [header, *rows]
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    if result.skipped:
        text += ["", f"skipped {len(result.skipped):,}:"]
        text += [f"  {skip}" for skip in result.skipped[:max_skips]]
        if len(result.skipped) > max_skips:
            text.append(f"  ... and {len(result.skipped) - max_skips:,} more (all in skipped.txt)")
    return "\n".join(text)
