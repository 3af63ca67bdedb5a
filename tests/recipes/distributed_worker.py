"""Run by torchrun in tests/recipes/test_multiprocess.py: the real train recipe, then a per-rank fingerprint.

``NAN_DISCRIMINATOR_RANK=R`` makes rank R's discriminator return NaN logits, as a numerical fault on one rank.
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.helpers import load_recipe  # noqa: E402


def fingerprint(module: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().round(6).tobytes())
    return digest.hexdigest()


def poison_discriminator() -> None:
    from egail.discriminator import Discriminator

    forward = Discriminator.forward
    Discriminator.forward = lambda self, *args, **kwargs: forward(self, *args, **kwargs) * float("nan")


def initial_discriminator(args) -> torch.nn.Module:
    """The discriminator a run with these arguments starts from (one seed gives one discriminator)."""
    from transformers import set_seed

    from egail.discriminator import Discriminator, DiscriminatorConfig

    set_seed(args.seed)
    return Discriminator(DiscriminatorConfig.from_gail_config(args))


if __name__ == "__main__":
    report_dir, argv = Path(sys.argv[1]), sys.argv[2:]
    if os.environ.get("NAN_DISCRIMINATOR_RANK") == os.environ["RANK"]:
        poison_discriminator()
    trainer = load_recipe("train").main(argv)
    rank = trainer.accelerator.process_index
    report = {
        "rank": rank,
        "world_size": trainer.accelerator.num_processes,
        "backend": str(torch.distributed.get_backend()) if torch.distributed.is_initialized() else None,
        "global_step": trainer.state.global_step,
        "policy": fingerprint(trainer.accelerator.unwrap_model(trainer.model)),
        "discriminator": fingerprint(trainer.discriminator),
        "discriminator_at_start": fingerprint(initial_discriminator(trainer.args)),
        "demo_ratio": trainer.current_demo_ratio(),
    }
    (report_dir / f"rank{rank}.json").write_text(json.dumps(report))
