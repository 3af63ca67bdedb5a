"""Shared pieces of the benchmarks: models, expert data, trainers stepped by hand, timers, tables, JSON.

The benchmarks drive `GAILTrainer` and `trl.GRPOTrainer` one optimizer step at a time, as `Trainer.train`
does (activation checkpointing, `training_step`, gradient clipping, optimizer and scheduler step), so
several trainers can run alternately in one process and every step can be timed on its own.

Models. ``smollm2-135m`` and the discriminator encoder ``minilm-l6`` are egail's embedded models; the
other policies are built from their published sizes with random weights (cost and memory do not depend on
the weights). All policies use SmolLM2's tokenizer and chat template, so prompts are identical across
models. ``--assets DIR`` reads configs and tokenizers from ``DIR/smollm2-135m-instruct`` and
``DIR/minilm-l6`` instead of the embedded packages (``export_assets.py`` writes them; the GPU machine gets
them this way) and then every model has random weights.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import statistics
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

import torch  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parents[1]
SMOLLM2_ASSET = "smollm2-135m-instruct"
MINILM_ASSET = "minilm-l6"
GIB = 1024**3

#: Policies by name: how to change SmolLM2-135M's config into each (sizes from the published configs).
POLICIES: dict[str, dict[str, Any]] = {
    "smollm2-135m": {"family": "llama"},
    "smollm2-360m": {
        "family": "llama",
        "hidden_size": 960,
        "num_hidden_layers": 32,
        "num_attention_heads": 15,
        "num_key_value_heads": 5,
        "intermediate_size": 2560,
        "head_dim": 64,
    },
    "gpt2": {"family": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12},
    "gpt2-medium": {"family": "gpt2", "n_embd": 1024, "n_layer": 24, "n_head": 16},
}
LORA_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}


# ---------------------------------------------------------------------------------------------- CLI
def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="Fewer sizes and repeats: a smoke run in about a minute.")
    parser.add_argument(
        "--assets", default=None, help="Folder with configs + tokenizers (export_assets.py); random weights."
    )
    parser.add_argument("--output", default=None, help="JSON path (default: benchmarks/results/<device>-<name>.json).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's). On a shared machine 1 avoids oversubscription.",
    )
    parser.add_argument(
        "--max-prompt-length",
        type=int,
        default=512,
        help="Policy tokens kept of a state (GAILConfig.max_prompt_length; the oldest history is cut).",
    )
    return parser


def quiet() -> None:
    """No progress bars or advisory warnings in benchmark output."""
    import warnings

    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    warnings.filterwarnings("ignore")


def setup(args: argparse.Namespace) -> None:
    """Check the device, set CPU threads, silence progress bars."""
    quiet()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no CUDA device.")
    if args.threads:
        torch.set_num_threads(args.threads)


# ------------------------------------------------------------------------------------------- models
def asset_path(name: str, assets: str | None) -> str:
    if assets:
        path = Path(assets) / name
        if not path.is_dir():
            raise SystemExit(f"{path} not found: write it with `python benchmarks/export_assets.py {assets}`.")
        return str(path)
    from egail.models import resolve_model_path

    return resolve_model_path(name)


def load_policy_tokenizer(assets: str | None):
    from egail.models import load_tokenizer

    return load_tokenizer(asset_path(SMOLLM2_ASSET, assets))


def build_policy(name: str, assets: str | None, tokenizer, pretrained: bool = True):
    """A policy by benchmark name; only the embedded ``smollm2-135m`` can have real weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    if name not in POLICIES:
        raise SystemExit(f"unknown policy {name!r}; choose from {sorted(POLICIES)}")
    spec = dict(POLICIES[name])
    family = spec.pop("family")
    path = asset_path(SMOLLM2_ASSET, assets)
    if name == "smollm2-135m" and pretrained and assets is None:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    torch.manual_seed(0)
    if family == "llama":
        config = AutoConfig.from_pretrained(path)
        for key, value in spec.items():
            setattr(config, key, value)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    else:
        config = GPT2Config(
            vocab_size=50257,  # GPT-2's; SmolLM2's 49152 token ids all fit
            n_positions=1024,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **spec,
        )
        model = GPT2LMHeadModel(config)
    model.config._name_or_path = name
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def lora_config(policy: str):
    from peft import LoraConfig

    return LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.0,
        target_modules=LORA_TARGETS[POLICIES[policy]["family"]],
        task_type="CAUSAL_LM",
    )


def build_discriminator(assets: str | None, freeze_encoder: bool, max_length: int = 256, pretrained: bool = True):
    """egail's default discriminator (MiniLM-L6 + MLP head); random encoder weights with ``--assets``."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from egail.discriminator import Discriminator, DiscriminatorConfig

    path = asset_path(MINILM_ASSET, assets)
    config = DiscriminatorConfig(encoder=path, freeze_encoder=freeze_encoder, max_length=max_length)
    if pretrained and assets is None:
        return Discriminator(config)
    torch.manual_seed(0)
    encoder = AutoModel.from_config(AutoConfig.from_pretrained(path))
    return Discriminator(config, encoder=encoder, tokenizer=AutoTokenizer.from_pretrained(path))


# --------------------------------------------------------------------------------------------- data
@functools.cache
def expert_rows() -> list[dict]:
    """Expert trajectories of the embedded dataset (train split): real dialogue lengths."""
    from egail.data import load_trajectories

    split = load_trajectories("embedded")["train"]
    return [{k: row[k] for k in ("history", "prompt", "response")} for row in split]


def expert_dataset(n: int | None = None):
    from datasets import Dataset

    rows = expert_rows()
    return Dataset.from_list(rows if n is None else rows[:n])


def lexical_reward(completions: list, **kwargs) -> list[float]:
    """The plain-GRPO baseline's reward: distinct-word ratio, cheap and fixed (no model)."""
    from egail.rollout import completion_text

    scores = []
    for completion in completions:
        words = completion_text(completion).split()
        scores.append(len(set(words)) / len(words) if words else 0.0)
    return scores


# ----------------------------------------------------------------------------------------- trainers
def common_fields(args: argparse.Namespace, output_dir: str, **overrides) -> dict[str, Any]:
    """GRPOConfig fields shared by the GAIL and plain-GRPO trainers of one comparison."""
    fields = dict(
        output_dir=output_dir,
        max_steps=10_000,
        per_device_train_batch_size=args.minibatch,
        generation_batch_size=args.batch,
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        generation_kwargs={"min_new_tokens": args.max_completion_length} if args.fixed_length else None,
        num_iterations=1,
        beta=0.0,
        learning_rate=1e-6,
        gradient_checkpointing=False,
        bf16=args.device == "cuda",
        use_cpu=args.device == "cpu",
        logging_steps=10_000,
        save_strategy="no",
        report_to=[],
        seed=args.seed,
        disable_tqdm=True,
    )
    fields.update(overrides)
    return fields


class Stepper:
    """Runs a Trainer one optimizer step at a time, as `Trainer._run_epoch` would (no logging or saving)."""

    def __init__(self, trainer, max_steps: int = 10_000):
        from transformers import TrainerState

        self.trainer = trainer
        if trainer.args.activation_checkpointing:  # `Trainer.train` turns it on, not `__init__`
            kwargs = dict(trainer.args.activation_checkpointing_kwargs or {})
            every_n_layers, offload = kwargs.pop("every_n_layers", 1), kwargs.pop("offload", False)
            trainer.model.activation_checkpointing_enable(
                activation_checkpointing_kwargs=kwargs or None, every_n_layers=every_n_layers, offload=offload
            )
        trainer.state = TrainerState()
        trainer.state.max_steps = max_steps
        dataloader = trainer.get_train_dataloader()
        self.model, dataloader = trainer._prepare_for_training(max_steps, dataloader, None)
        trainer.current_gradient_accumulation_steps = trainer.args.gradient_accumulation_steps
        trainer.is_in_train = True
        self._dataloader = dataloader
        self._batches = self._cycle()

    def _cycle(self) -> Iterator:
        while True:
            yield from self._dataloader

    def step(self) -> float:
        """One optimizer step; returns its loss."""
        trainer, model = self.trainer, self.model
        loss = None
        for _ in range(trainer.args.gradient_accumulation_steps):
            trainer.accelerator.gradient_state._set_sync_gradients(True)
            loss = trainer.training_step(model, next(self._batches), None)
        if trainer.args.max_grad_norm > 0:
            trainer._clip_grad_norm(model)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        model.zero_grad()
        trainer.state.global_step += 1
        return float(loss)


# ------------------------------------------------------------------------------------------- timing
def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def clock(device: str) -> float:
    synchronize(device)
    return time.perf_counter()


class SectionTimer:
    """Accumulates wall and process CPU time per named section; `wrap` times a callable (sections may nest).

    With one CPU thread, CPU time is the work done, unaffected by other processes competing for the cores;
    wall time is what a user waits for (and the only meaningful one when a GPU does the work).
    """

    def __init__(self, device: str):
        self.device = device
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def section(self, name: str):
        start, start_cpu = clock(self.device), time.process_time()
        try:
            yield
        finally:
            self.wall[name] += clock(self.device) - start
            self.cpu[name] += time.process_time() - start_cpu

    def wrap(self, name: str | Callable[..., str], function: Callable) -> Callable:
        @functools.wraps(function)
        def timed(*args, **kwargs):
            with self.section(name() if callable(name) else name):
                return function(*args, **kwargs)

        return timed

    def take(self) -> dict[str, dict[str, float]]:
        taken = {"wall": dict(self.wall), "cpu": dict(self.cpu)}
        self.wall, self.cpu = defaultdict(float), defaultdict(float)
        return taken


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ------------------------------------------------------------------------------------------ memory
def rss_bytes() -> int:
    """Resident set size now (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size since the last `reset_peak_rss` (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM not in /proc/self/status")


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux clear_refs 5), so the next peak is one step's own."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


# --------------------------------------------------------------------------------------- reporting
def environment(device: str) -> dict[str, Any]:
    import transformers
    import trl

    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "device": device,
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / GIB, 1)
    with contextlib.suppress(Exception):
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def markdown_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])

    def fmt(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return "" if value is None else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_results(name: str, args: argparse.Namespace, payload: dict[str, Any], tables: dict[str, str]) -> Path:
    """Write ``<device>-<name>.json`` (settings, environment, results, tables) and print the tables."""
    path = Path(args.output) if args.output else RESULTS_DIR / f"{args.device}-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": name,
        "settings": {k: v for k, v in vars(args).items() if k != "output"},
        "environment": environment(args.device),
        **payload,
        "tables": tables,
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    for title, table in tables.items():
        print(f"\n### {title}\n\n{table}")
    print(f"\nwrote {path}")
    return path
