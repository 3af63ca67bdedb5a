"""Render the tables of benchmarks/results/*.json into README.md, between the results markers.

python benchmarks/report.py          # rewrite the results section of benchmarks/README.md
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
ORDER = ["step", "discriminator", "memory", "memory-no-checkpointing", "generation", "smoke"]


def describe(document: dict) -> str:
    env = document["environment"]
    machine = env.get("gpu") or f"{env['cpu']}, {env['torch_threads']} torch thread(s)"
    settings = document["settings"]
    weights = "random weights" if settings.get("assets") or document.get("weights") == "random" else "embedded weights"
    checkpointing = ""
    if "gradient_checkpointing" in settings:
        checkpointing = f"gradient checkpointing {'on' if settings['gradient_checkpointing'] else 'off'}, "
    return (
        f"{env['date'][:10]}, {machine}, torch {env['torch']}, transformers {env['transformers']}, "
        f"trl {env['trl']}, {weights}, {checkpointing}commit {env.get('git_commit', '?')}"
    )


def section(path: Path) -> str:
    document = json.loads(path.read_text())
    lines = [f"#### `{path.name}`", "", describe(document)]
    if "note" in document:
        lines += ["", f"> {document['note']}"]
    for title, table in document["tables"].items():
        lines += ["", f"*{title}*", "", table]
    return "\n".join(lines)


def render() -> str:
    parts = []
    for device in ("cpu", "gpu"):
        for name in ORDER:
            path = HERE / "results" / f"{device}-{name}.json"
            if path.is_file():
                parts.append(section(path))
    return "\n\n".join(parts)


def main() -> None:
    readme = HERE / "README.md"
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{readme} has no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    readme.write_text(f"{head}{BEGIN}\n{render()}\n{END}{tail}")
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
