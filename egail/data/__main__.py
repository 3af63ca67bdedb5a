"""``python -m egail.data build --source KIND:PATH ... --out DIR [--push-to-hub REPO_ID] [--private]``."""

from __future__ import annotations

import argparse
import sys

from egail.data.build import SOURCE_KINDS, build_dataset
from egail.data.splits import DEFAULT_SPLITS, parse_splits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m egail.data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build expert trajectories from dialogue corpora")
    build.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="KIND:PATH",
        help=f"a corpus to read, KIND one of {', '.join(SOURCE_KINDS)} ('embedded' needs no path); repeatable",
    )
    build.add_argument("--out", required=True, help="folder for the DatasetDict (save_to_disk) and README.md")
    build.add_argument(
        "--splits",
        type=parse_splits,
        default=DEFAULT_SPLITS,
        metavar="NAME=RATIO,...",
        help="split proportions, by conversation (default: train=0.7,test=0.2,validation=0.1, as in the paper)",
    )
    build.add_argument("--seed", type=int, default=0, help="seed of the split assignment (default: 0)")
    build.add_argument("--strict", action="store_true", help="stop at the first bad line instead of skipping it")
    build.add_argument("--push-to-hub", metavar="REPO_ID", help="also push data and card to this Hub dataset repo")
    build.add_argument("--private", action="store_true", help="create the Hub repo as private")
    build.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    try:
        result = build_dataset(
            args.source, splits=args.splits, seed=args.seed, strict=args.strict, progress=not args.no_progress
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = result.save(args.out)
    if args.push_to_hub:
        result.push_to_hub(args.push_to_hub, private=args.private)
    print(result.summary())
    print(f"\nsaved to {out}" + (f"; pushed to {args.push_to_hub}" if args.push_to_hub else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
