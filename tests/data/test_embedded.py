"""The dataset shipped inside egail: the offline default for the quickstart and the tests."""

from __future__ import annotations

from collections import Counter

from egail.data import (
    ED_EMOTIONS,
    EMBEDDED_DIR,
    build_dataset,
    load_trajectories,
    read_embedded_conversations,
    read_oneliners,
)

CONVERSATIONS = EMBEDDED_DIR / "conversations.jsonl"
ONELINERS = EMBEDDED_DIR / "oneliners.txt"
LICENSE = EMBEDDED_DIR / "LICENSE"


def test_shipped_files_are_present_and_packaged():
    """The quickstart and the tests run on these files: losing one must fail here, not skip elsewhere."""
    import tomllib

    missing = [p.name for p in (CONVERSATIONS, ONELINERS, LICENSE) if not p.is_file()]
    assert missing == [], f"missing in {EMBEDDED_DIR}: {missing}"
    root = EMBEDDED_DIR.parents[1]  # the egail package
    pyproject = tomllib.loads((root.parent / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["egail"]
    for path in (CONVERSATIONS, ONELINERS, LICENSE):
        assert any(path.relative_to(root).match(pattern) for pattern in patterns), path


def test_conversations_cover_the_32_emotions():
    result = read_embedded_conversations(CONVERSATIONS, strict=True)
    assert len(result) >= 150
    assert all(len(c.utterances) >= 4 for c in result), "every conversation is multi-turn (2+ turns)"
    per_emotion = Counter(c.emotion for c in result)
    assert set(per_emotion) == set(ED_EMOTIONS), f"missing: {sorted(set(ED_EMOTIONS) - set(per_emotion))}"
    assert all(c.situation for c in result)
    assert len({c.conv_id for c in result}) == len(result)


def test_oneliners_and_license():
    oneliners = read_oneliners(ONELINERS, strict=True)
    assert len(oneliners) >= 50
    assert len({c.utterances[0] for c in oneliners}) == len(oneliners), "no repeated one-liner"
    license_text = LICENSE.read_text(encoding="utf-8")
    assert "CC BY 4.0" in license_text or "Attribution 4.0" in license_text


def test_load_trajectories_embedded_is_split_by_conversation():
    built = build_dataset(["embedded"], progress=False, strict=True)
    assert built.skipped == [], [str(s) for s in built.skipped]
    dataset = load_trajectories("embedded")
    assert list(dataset) == ["train", "test", "validation"]
    assert dataset["train"].to_list() == built.dataset["train"].to_list()
    members = {name: set(split["conv_id"]) for name, split in dataset.items()}
    assert not (members["train"] & members["test"] or members["train"] & members["validation"]
                or members["test"] & members["validation"])  # fmt: skip
    sources = Counter(s for split in dataset.values() for s in split["source"])
    assert set(sources) == {"embedded", "oneliners"}
    assert sources["oneliners"] == len(read_oneliners(ONELINERS))
    conversations = read_embedded_conversations(CONVERSATIONS)
    assert sources["embedded"] == sum(len(c.utterances) // 2 for c in conversations)
    for name, ratio in (("train", 0.7), ("test", 0.2), ("validation", 0.1)):
        share = len(
            {c for c, s in zip(dataset[name]["conv_id"], dataset[name]["source"], strict=True) if s == "embedded"}
        )
        assert abs(share - ratio * len(conversations)) <= 1
    assert load_trajectories("embedded", seed=1)["train"]["conv_id"] != dataset["train"]["conv_id"]
