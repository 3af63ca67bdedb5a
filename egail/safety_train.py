"""Train the crisis guard's classifier: ``python -m egail.safety_train``.

Reads ``egail/safety_data/guard_messages.jsonl`` and ``guard_replies.jsonl`` and fits two softmax regressions
on frozen MiniLM embeddings beside word n-gram tf-idf: the message head (``none`` and the warning signs) and the
reply head (``safe``, ``unsafe``). Thresholds come from 5-fold out-of-fold scores over the **train and dev**
splits together: the message threshold where the whole guard (rules OR classifier OR context) has the highest
recall at precision >= ``--min-precision``, the reply threshold likewise for the output screen. The heads are
then fitted on all of train and dev, and the weights written as JSON next to the data. The test splits are
never read here. Everything is deterministic: a fixed split seed, seeded folds and augmentation,
zero-initialised full-batch L-BFGS in float64 on one thread.
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
    EMBEDDING_DIM,
    NONE,
    REPLY_CLASSES,
    SIGNS,
    CrisisClassifier,
    CrisisGuard,
    NgramFeatures,
    SentenceEncoder,
    around_match,
    classifier_input,
    context_fires,
    context_window,
    load_guard_messages,
    load_guard_replies,
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


def message_target(row: dict[str, Any]) -> int:
    """A message row's class index for the message head: ``none`` or its warning sign."""
    return CLASSES.index(NONE if row["label"] == 0 else row["category"])


def training_examples(
    rows: Sequence[dict[str, Any]], target=message_target, seed: int = SPLIT_SEED
) -> tuple[list[str], list[int]]:
    """Texts and class indices (``target`` of each row): each row as written, typed casually, and with a typo
    (seeded per row)."""
    texts, targets = [], []
    for row in rows:
        text = training_text(row)
        rng = random.Random(f"{seed}:{text}")
        for variant in dict.fromkeys((text, _casual(text), _typo(text, rng))):
            texts.append(variant)
            targets.append(target(row))
    return texts, targets


def fit_softmax(features: Any, targets: Sequence[int], n_classes: int, l2: float) -> tuple[Any, Any]:
    """Multinomial logistic regression, L2 on the weights, by full-batch L-BFGS: deterministic."""
    import torch

    x = torch.as_tensor(features, dtype=torch.float64)
    y = torch.as_tensor(list(targets), dtype=torch.long)
    weight = torch.zeros((n_classes, x.shape[1]), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
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


def held_out_scores(guard: CrisisGuard, classifier: CrisisClassifier, rows: Sequence[dict[str, Any]]) -> list[dict]:
    """Per held-out row: the rules' verdict and the classifier's scores on the message, window and earlier turns."""
    out = []
    for row in rows:
        previous = list(row.get("context") or [])[-(CONTEXT_TURNS - 1) :]
        groups = [classifier_input(row["text"])]
        if previous:
            groups += [[context_window([*previous, row["text"]])], [context_window(previous)]]
        ruled = guard.check_rules(row["text"])
        if ruled.flagged:
            groups.append([around_match(normalize(row["text"]), ruled.matched or "")])
        scored = [score for score, _, _ in classifier.score_groups(groups)]
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
    """The threshold (0.005 grid) and rule veto with the highest recall on ``scored`` at precision >= ``min_precision``.

    Recall first, as the guard must, but not at any price: below the precision floor the chat would answer
    ordinary sadness with helplines. Ties go to the higher threshold and the lower veto. Returns threshold,
    veto, precision, recall.
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
        raise ValueError(f"no threshold reaches precision {min_precision}")
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


def reply_rows() -> list[dict[str, Any]]:
    """The labelled replies, and as safe replies the embedded dialogues' listener turns and situations."""
    ordinary = [
        {**row, "category": "ordinary"} for row in load_embedded_turns() if row["category"] == "embedded_other"
    ]
    return [*load_guard_replies(), *ordinary]


def reply_target(row: dict[str, Any]) -> int:
    return REPLY_CLASSES.index("unsafe" if row["label"] == 1 else "safe")


def pick_reply_threshold(
    scored: Sequence[tuple[bool, float, int]], min_precision: float
) -> tuple[float, float, float, float]:
    """The reply threshold (0.005 grid) and rule veto with the highest recall of the output screen (output rules OR
    the reply head; a rule hit stands when the head scores it at least the veto) at precision >= ``min_precision``;
    ties go to the higher threshold and the lower veto. ``scored`` holds (output rule fired, unsafe score, label)
    per reply. Returns threshold, veto, precision, recall."""
    labels = [label for _, _, label in scored]
    best: tuple[float, float, float, float] | None = None
    for step in range(199, 0, -1):
        threshold = step / 200
        for veto in (v for v in RULE_VETOES if v < threshold):
            flags = [score >= veto if rule else score >= threshold for rule, score, _ in scored]
            precision, recall = precision_recall(flags, labels)
            if precision >= min_precision and (best is None or recall > best[3]):
                best = (threshold, veto, precision, recall)
    if best is None:
        raise ValueError(f"no reply threshold reaches precision {min_precision}")
    return best


def rounded(array: Any) -> list:
    """Weights to 5 decimals: far below what moves a decision, and the JSON file a third of the size."""
    import numpy as np

    return np.round(array, 5).tolist()


class MemoEncoder:
    """The sentence encoder with a memo: cross-validation scores the same texts under several folds' heads."""

    def __init__(self, encoder: SentenceEncoder):
        self.encoder, self.name, self._memo = encoder, encoder.name, {}

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        import numpy as np

        new = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if new:
            self._memo.update(zip(new, self.encoder.encode(new, batch_size), strict=True))
        return np.stack([self._memo[t] for t in texts]) if texts else np.zeros((0, EMBEDDING_DIM))


def assign_folds(rows: Sequence[dict[str, Any]], folds: int, seed: int = SPLIT_SEED) -> list[int]:
    """Each row's cross-validation fold, stratified by category and by single- or multi-turn."""
    strata: dict[tuple[str, bool], list[int]] = defaultdict(list)
    for index, row in enumerate(rows):
        strata[(row["category"], bool(row.get("context")))].append(index)
    assigned = [0] * len(rows)
    rng = random.Random(f"folds:{seed}")
    for key in sorted(strata):
        indices = strata[key]
        rng.shuffle(indices)
        for position, index in enumerate(indices):
            assigned[index] = position % folds
    return assigned


def train(
    output: Path,
    l2: float,
    reply_l2: float,
    min_precision: float,
    floor_ratio: float,
    ngram_scale: float,
    min_df: int,
    folds: int,
) -> dict[str, Any]:
    """Fit both heads on train + dev, with thresholds chosen on their ``folds``-fold out-of-fold scores.

    A dev split of a few hundred rows chose thresholds that did not hold on test (first fit: dev precision 0.90,
    test 0.88); out-of-fold scores over train + dev choose them on four times as many rows, and the heads then
    learn from all of them. The vocabulary is built once, from all of train + dev.
    """
    import numpy as np
    import torch

    torch.set_num_threads(1)
    messages, replies = load_guard_messages(), load_guard_replies()
    for name, labelled in (("guard_messages.jsonl", messages), ("guard_replies.jsonl", replies)):
        if [row["split"] for row in labelled] != assign_splits(labelled):
            raise ValueError(f"{name}'s splits are not the seeded ones: rerun assign_splits")
    pool = [r for r in [*messages, *load_embedded_turns()] if r["split"] in ("train", "dev")]
    reply_pool = [r for r in reply_rows() if r["split"] in ("train", "dev")]
    message_fold, reply_fold = assign_folds(pool, folds), assign_folds(reply_pool, folds)
    texts, _ = training_examples(pool)
    reply_texts, _ = training_examples(reply_pool, reply_target)
    ngrams = NgramFeatures.fit([*texts, *reply_texts], min_df, ngram_scale)
    encoder = MemoEncoder(SentenceEncoder())
    rules = CrisisGuard(classifier=False)

    def fit(message_rows: Sequence[dict], reply_train: Sequence[dict]) -> CrisisClassifier:
        weights: dict[str, Any] = {"encoder": encoder.name, "classes": CLASSES, "ngrams": ngrams.to_json()}
        for head, rows, target, n_classes, penalty in (
            ("message", message_rows, message_target, len(CLASSES), l2),
            ("reply", reply_train, reply_target, len(REPLY_CLASSES), reply_l2),
        ):
            batch, targets = training_examples(rows, target)
            features = np.hstack([encoder.encode(batch), ngrams.transform(batch)])
            weight, bias = fit_softmax(features, targets, n_classes, penalty)
            if head == "message":
                weights.update(weight=rounded(weight), bias=rounded(bias), threshold=0.5, context_floor=0.25,
                               rule_veto=0.0)  # fmt: skip
            else:
                weights["reply"] = {
                    "weight": rounded(weight),
                    "bias": rounded(bias),
                    "threshold": 0.5,
                    "rule_veto": 0.0,
                }
        return CrisisClassifier(weights, encoder)

    scored: list[dict] = []
    reply_scored: list[tuple[bool, float, int]] = []
    for k in range(folds):  # out-of-fold scores of every pooled row
        held = [r for r, f in zip(pool, message_fold, strict=True) if f == k]
        held_replies = [r for r, f in zip(reply_pool, reply_fold, strict=True) if f == k]
        classifier = fit(
            [r for r, f in zip(pool, message_fold, strict=True) if f != k],
            [r for r, f in zip(reply_pool, reply_fold, strict=True) if f != k],
        )
        scored += held_out_scores(rules, classifier, held)
        reply_scored += [
            (rules.check_output_rules(r["text"]).flagged, classifier.score_reply(r["text"])[0], r["label"])
            for r in held_replies
        ]
    threshold, veto, precision, recall = pick_threshold(scored, min_precision, floor_ratio)
    reply_threshold, reply_veto, reply_precision, reply_recall = pick_reply_threshold(reply_scored, min_precision)
    final = fit(pool, reply_pool)
    weights = {
        "encoder": encoder.name,
        "classes": CLASSES,
        "ngrams": ngrams.to_json(),
        "weight": rounded(final.message.weight),
        "bias": rounded(final.message.bias),
        "threshold": threshold,
        "context_floor": round(threshold * floor_ratio, 6),
        "rule_veto": veto,
        "reply": {
            "weight": rounded(final.reply.weight),
            "bias": rounded(final.reply.bias),
            "threshold": reply_threshold,
            "rule_veto": reply_veto,
        },  # fmt: skip
        "training": {
            "command": "python -m egail.safety_train",
            "rows": len(pool),
            "examples": len(texts),
            "replies": len(reply_pool),
            "ngrams": len(ngrams.vocabulary),
            "ngram_scale": ngram_scale,
            "min_df": min_df,
            "l2": l2,
            "reply_l2": reply_l2,
            "folds": folds,
            "min_precision": min_precision,
            "out_of_fold_precision": round(precision, 4),
            "out_of_fold_recall": round(recall, 4),
            "out_of_fold_reply_precision": round(reply_precision, 4),
            "out_of_fold_reply_recall": round(reply_recall, 4),
            "split_seed": SPLIT_SEED,
        },
    }
    output.write_text(json.dumps(weights) + "\n", encoding="utf-8")
    return weights


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).parent / "safety_data" / CLASSIFIER_WEIGHTS
    parser.add_argument("--output", type=Path, default=default)
    parser.add_argument("--l2", type=float, default=3e-5, help="L2 penalty on the message head's weights")
    parser.add_argument("--reply-l2", type=float, default=1e-4, help="L2 penalty on the reply head's (less data)")
    parser.add_argument("--ngram-scale", type=float, default=1.5, help="weight of the n-gram view (0: embeddings)")
    parser.add_argument("--min-df", type=int, default=2, help="training texts an n-gram must occur in")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds that choose the thresholds")
    parser.add_argument("--min-precision", type=float, default=0.9, help="precision the thresholds must keep")
    parser.add_argument("--floor-ratio", type=float, default=0.5, help="context floor as a share of the threshold")
    args = parser.parse_args(argv)
    weights = train(
        args.output,
        args.l2,
        args.reply_l2,
        args.min_precision,
        args.floor_ratio,
        args.ngram_scale,
        args.min_df,
        args.folds,
    )
    summary = {key: weights[key] for key in ("threshold", "context_floor", "rule_veto")}
    print(json.dumps({**summary, "reply_threshold": weights["reply"]["threshold"], **weights["training"]}, indent=2))


if __name__ == "__main__":
    main()
