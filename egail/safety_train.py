"""Train the crisis guard's classifier: ``python -m egail.safety_train``.

Reads ``egail/safety_data/guard_messages.jsonl``, fits a softmax regression over ``none`` and the warning
signs on frozen MiniLM embeddings of the **train** split, picks the threshold on the **dev** split (where the
whole guard, rules OR classifier, has the highest recall at precision >= ``--min-precision``), and writes the
weights as JSON next to the data. The test split is never read here. Everything is deterministic: a fixed
split seed, seeded augmentation, zero-initialised full-batch L-BFGS in float64 on one thread.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from egail.safety import (
    CLASSIFIER_WEIGHTS,
    CONTEXT_TURNS,
    NONE,
    SIGNS,
    CrisisClassifier,
    CrisisGuard,
    SentenceEncoder,
    around_match,
    classifier_input,
    context_fires,
    context_window,
    load_guard_messages,
    normalize,
)

SPLIT_SEED = 14
SPLIT_FRACTIONS = {"train": 0.55, "dev": 0.15, "test": 0.30}
CLASSES = [NONE, *SIGNS]


def assign_splits(rows: Sequence[dict[str, Any]], seed: int = SPLIT_SEED) -> list[str]:
    """Each row's split, stratified by category and by single- or multi-turn, shuffled by ``seed``.

    Stratifying keeps every warning sign and every kind of hard negative in every split, so the per-category
    figures on the test split exist at all.
    """
    strata: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        strata[(row["category"], bool(row.get("context")))].append(index)
    splits = [""] * len(rows)
    rng = random.Random(seed)
    for key in sorted(strata):
        indices = strata[key]
        rng.shuffle(indices)
        n_test = round(SPLIT_FRACTIONS["test"] * len(indices))
        n_dev = round(SPLIT_FRACTIONS["dev"] * len(indices))
        for position, index in enumerate(indices):
            splits[index] = "test" if position < n_test else "dev" if position < n_test + n_dev else "train"
    return splits


def load_embedded_turns() -> list[dict[str, Any]]:
    """Ordinary negatives from egail's embedded dialogues (team-written, CC BY 4.0), with seeded splits.

    Everyday worries, small joys and sad news: what most of a chatbot's traffic looks like. Without them the
    classifier never sees an ordinary message that is not a hard negative, and flags chit-chat. Each user turn
    comes with the conversation's earlier user turns as context; the listener's turns, the situations and the
    one-liners are ordinary text too. One conversation's rows share a split, so no turn is tested with its own
    earlier turns trained on.
    """
    folder = resources.files("egail") / "data" / "embedded"
    conversations = [
        json.loads(line) for line in (folder / "conversations.jsonl").read_text("utf-8").splitlines() if line.strip()
    ]
    oneliners = [line.strip() for line in (folder / "oneliners.txt").read_text("utf-8").splitlines() if line.strip()]
    strata = [{"category": "embedded"} for _ in conversations] + [{"category": "oneliner"} for _ in oneliners]
    splits = assign_splits(strata)
    rows: list[dict[str, Any]] = []
    for conversation, split in zip(conversations, splits, strict=False):
        utterances = conversation["utterances"]
        user_turns = utterances[0::2]
        for i, text in enumerate(user_turns):
            rows.append(
                {"text": text, "label": 0, "category": "embedded_user", "context": user_turns[:i], "split": split}
            )
        for text in [conversation["situation"], *utterances[1::2]]:
            rows.append({"text": text, "label": 0, "category": "embedded_other", "split": split})
    for text, split in zip(oneliners, splits[len(conversations) :], strict=True):
        rows.append({"text": text, "label": 0, "category": "embedded_other", "split": split})
    return rows


def _casual(text: str) -> str:
    """Lower case, no punctuation but apostrophes dropped too: how many people type on a phone."""
    text = text.lower().replace("'", "").replace("\u2019", "")
    return " ".join(text.translate(str.maketrans("", "", string.punctuation)).split())


def _typo(text: str, rng: random.Random) -> str:
    """One adjacent-letter swap in one word of four letters or more, if there is one."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if re.fullmatch(r"[A-Za-z]{4,}", w)]
    if not candidates:
        return text
    i = rng.choice(candidates)
    j = rng.randrange(len(words[i]) - 1)
    word = words[i]
    words[i] = word[:j] + word[j + 1] + word[j] + word[j + 2 :]
    return " ".join(words)


def training_text(row: dict[str, Any]) -> str:
    """What the classifier reads for a row: the message, or the last user turns with it."""
    context = list(row.get("context") or [])
    if context:
        return context_window([*context[-(CONTEXT_TURNS - 1) :], row["text"]])
    return classifier_input(row["text"])[0]


def training_examples(rows: Sequence[dict[str, Any]], seed: int = SPLIT_SEED) -> tuple[list[str], list[int]]:
    """Texts and class indices: each row as written, typed casually, and with a typo (seeded per row)."""
    texts, targets = [], []
    for row in rows:
        target = CLASSES.index(NONE if row["label"] == 0 else row["category"])
        text = training_text(row)
        rng = random.Random(f"{seed}:{text}")
        for variant in dict.fromkeys((text, _casual(text), _typo(text, rng))):
            texts.append(variant)
            targets.append(target)
    return texts, targets


def fit_softmax(features: Any, targets: Sequence[int], l2: float) -> tuple[Any, Any]:
    """Multinomial logistic regression, L2 on the weights, by full-batch L-BFGS: deterministic."""
    import torch

    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(list(targets), dtype=torch.long)
    weight = torch.zeros((len(CLASSES), x.shape[1]), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(CLASSES), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weight.T + bias, y) + l2 * (weight**2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().numpy(), bias.detach().numpy()


def dev_scores(guard: CrisisGuard, classifier: CrisisClassifier, rows: Sequence[dict[str, Any]]) -> list[dict]:
    """Per dev row: the rules' verdict and the classifier's scores on the message, window and earlier turns."""
    out = []
    for row in rows:
        previous = list(row.get("context") or [])[-(CONTEXT_TURNS - 1) :]
        groups = [classifier_input(row["text"])]
        if previous:
            groups += [[context_window([*previous, row["text"]])], [context_window(previous)]]
        ruled = guard.check_rules(row["text"])
        if ruled.flagged:
            groups.append([around_match(normalize(row["text"]), ruled.matched or "")])
        scored = [score for score, _ in classifier.score_groups(groups)]
        around = scored.pop() if ruled.flagged else 0.0
        out.append({"label": row["label"], "rule": ruled.flagged, "around": around, "scores": scored})
    return out


def guard_flags(scored: dict, threshold: float, floor: float, veto: float) -> bool:
    """The guard's decision from precomputed scores, the same logic as ``CrisisGuard.check``."""
    scores = scored["scores"]
    if scored["rule"]:
        return scored["around"] >= veto
    if scores[0] >= threshold:
        return True
    return len(scores) == 3 and context_fires(scores[0], scores[1], scores[2], threshold, floor)


def precision_recall(flags: Sequence[bool], labels: Sequence[int]) -> tuple[float, float]:
    tp = sum(f and y == 1 for f, y in zip(flags, labels, strict=True))
    fp = sum(f and y == 0 for f, y in zip(flags, labels, strict=True))
    fn = sum((not f) and y == 1 for f, y in zip(flags, labels, strict=True))
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 1.0)


RULE_VETOES = (0.0, 0.01, 0.02, 0.05, 0.1)


def pick_threshold(
    scored: Sequence[dict], min_precision: float, floor_ratio: float
) -> tuple[float, float, float, float]:
    """The threshold (0.005 grid) and rule veto with the highest dev recall at dev precision >= ``min_precision``.

    Recall first, as the guard must, but not at any price: below the precision floor the chat would answer
    ordinary sadness with helplines. Ties go to the higher threshold and the lower veto. Returns threshold,
    veto, dev precision, dev recall.
    """
    labels = [s["label"] for s in scored]
    best: tuple[float, float, float, float] | None = None
    for step in range(199, 0, -1):
        threshold = step / 200
        for veto in (v for v in RULE_VETOES if v < threshold):
            flags = [guard_flags(s, threshold, threshold * floor_ratio, veto) for s in scored]
            precision, recall = precision_recall(flags, labels)
            if precision >= min_precision and (best is None or recall > best[3]):
                best = (threshold, veto, precision, recall)
    if best is None:
        raise ValueError(f"no threshold reaches dev precision {min_precision}")
    return best


def evaluate_guard(guard: CrisisGuard, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The whole guard's figures on ``rows``: overall, per warning sign, per kind of negative, with examples.

    Per sign: recall on that sign's messages, and precision of the flags the guard attributes to that sign
    (a flag is right when the message is any crisis: the reply is the same). Per kind of negative: the share
    flagged (false alarms). Misses and false alarms are kept, with why the guard decided as it did.
    """
    results = [guard.check(row["text"], row.get("context") or []) for row in rows]
    flags = [result.flagged for result in results]
    labels = [row["label"] for row in rows]
    precision, recall = precision_recall(flags, labels)
    per_sign: dict[str, dict[str, float]] = {}
    for sign in SIGNS:
        members = [f for f, row in zip(flags, rows, strict=True) if row["label"] == 1 and row["category"] == sign]
        attributed = [row["label"] for f, row, r in zip(flags, rows, results, strict=True) if f and r.sign == sign]
        per_sign[sign] = {
            "n": len(members),
            "recall": sum(members) / len(members) if members else 1.0,
            "flagged_as": len(attributed),
            "precision": sum(attributed) / len(attributed) if attributed else 1.0,
        }
    per_negative: dict[str, dict[str, float]] = {}
    for kind in sorted({row["category"] for row in rows if row["label"] == 0}):
        members = [f for f, row in zip(flags, rows, strict=True) if row["label"] == 0 and row["category"] == kind]
        per_negative[kind] = {"n": len(members), "false_alarm_rate": sum(members) / len(members)}
    misses = [(row, r) for f, row, r in zip(flags, rows, results, strict=True) if not f and row["label"] == 1]
    false_alarms = [(row, r) for f, row, r in zip(flags, rows, results, strict=True) if f and row["label"] == 0]
    sources = defaultdict(int)
    for f, r in zip(flags, results, strict=True):
        if f:
            sources[r.source] += 1
    return {
        "n": len(rows),
        "precision": precision,
        "recall": recall,
        "per_sign": per_sign,
        "per_negative": per_negative,
        "sources": dict(sources),
        "misses": misses,
        "false_alarms": false_alarms,
    }


def format_report(name: str, report: dict[str, Any], examples: int = 8) -> str:
    """A plain-text table of ``evaluate_guard``'s figures, for the test's printout and the README."""
    head = f"{name}: n={report['n']} precision={report['precision']:.3f} recall={report['recall']:.3f}"
    lines = [f"{head} (flags by source: {report['sources']})"]
    for sign, row in report["per_sign"].items():
        lines.append(
            f"  {sign:<15} n={row['n']:3d} recall={row['recall']:.3f} "
            f"precision={row['precision']:.3f} (flagged as {sign}: {row['flagged_as']})"
        )
    for kind, row in report["per_negative"].items():
        lines.append(f"  not crisis: {kind:<17} n={row['n']:3d} false alarms={row['false_alarm_rate']:.3f}")
    for title, cases in (("missed", report["misses"]), ("false alarm", report["false_alarms"])):
        for row, result in cases[:examples]:
            context = " | ".join(row.get("context") or [])
            shown = (f"[{context}] " if context else "") + row["text"]
            lines.append(f"  {title} ({row['category']}): {shown[:110]!r} -- {result.reason}")
    return "\n".join(lines)


def train(output: Path, l2: float, min_precision: float, floor_ratio: float) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    rows = load_guard_messages()
    if [row["split"] for row in rows] != assign_splits(rows):
        raise ValueError("guard_messages.jsonl's splits are not the seeded ones: rerun assign_splits")
    rows += load_embedded_turns()
    train_rows = [r for r in rows if r["split"] == "train"]
    dev_rows = [r for r in rows if r["split"] == "dev"]
    encoder = SentenceEncoder()
    texts, targets = training_examples(train_rows)
    weight, bias = fit_softmax(encoder.encode(texts), targets, l2)
    weights: dict[str, Any] = {
        "encoder": encoder.name,
        "classes": CLASSES,
        "weight": weight.tolist(),
        "bias": bias.tolist(),
        "threshold": 0.5,
        "context_floor": 0.5 * floor_ratio,
        "rule_veto": 0.0,
    }
    classifier = CrisisClassifier(weights, encoder)
    scored = dev_scores(CrisisGuard(classifier=False), classifier, dev_rows)
    threshold, veto, precision, recall = pick_threshold(scored, min_precision, floor_ratio)
    weights.update(threshold=threshold, context_floor=round(threshold * floor_ratio, 6), rule_veto=veto)
    weights["training"] = {
        "command": "python -m egail.safety_train",
        "train_rows": len(train_rows),
        "train_examples": len(texts),
        "l2": l2,
        "min_dev_precision": min_precision,
        "dev_rows": len(dev_rows),
        "dev_precision": round(precision, 4),
        "dev_recall": round(recall, 4),
        "split_seed": SPLIT_SEED,
    }
    output.write_text(json.dumps(weights) + "\n", encoding="utf-8")
    return weights


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).parent / "safety_data" / CLASSIFIER_WEIGHTS
    parser.add_argument("--output", type=Path, default=default)
    parser.add_argument("--l2", type=float, default=1e-4, help="L2 penalty on the weights")
    parser.add_argument("--min-precision", type=float, default=0.9, help="dev precision the threshold must keep")
    parser.add_argument("--floor-ratio", type=float, default=0.5, help="context floor as a share of the threshold")
    args = parser.parse_args(argv)
    weights = train(args.output, args.l2, args.min_precision, args.floor_ratio)
    summary = {key: weights[key] for key in ("threshold", "context_floor", "rule_veto")}
    print(json.dumps({**summary, **weights["training"]}, indent=2))


if __name__ == "__main__":
    main()
