"""Write the embedded models' configs and tokenizers, without weights, for `--assets DIR`.

A machine that lacks egail's embedded-model packages (the GPU machine: nothing can be downloaded there, and
the weights are too large to carry) runs the benchmarks on random weights of the same architectures,
with the same tokenizers, from this folder.

    python benchmarks/export_assets.py DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import common


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    from egail.models import resolve_model_path

    target = Path(sys.argv[1])
    for name in (common.SMOLLM2_ASSET, common.MINILM_ASSET):
        source = resolve_model_path(name)
        AutoConfig.from_pretrained(source).save_pretrained(target / name)
        AutoTokenizer.from_pretrained(source).save_pretrained(target / name)
        if name == common.SMOLLM2_ASSET:
            GenerationConfig.from_pretrained(source).save_pretrained(target / name)
    print(f"wrote {target}: {sorted(str(p.relative_to(target)) for p in target.rglob('*') if p.is_file())}")


if __name__ == "__main__":
    main()
