"""The GAIL discriminator: how expert-like is a response to a dialogue state?

An encoder (any Hugging Face encoder; by default the embedded all-MiniLM-L6-v2) reads the pair
(state, response), where the state is the history and the prompt; a small MLP head (LayerNorm, two
hidden layers of 100 tanh units: the paper's Table 1 and section 4.2) turns the mean-pooled encoding into
one logit z. D = sigmoid(z) is the probability that the response came from the expert. It is trained with
the GAN/GAIL log-loss (the paper's Eq. 6, with expert = real), and its score is the policy's reward.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

#: The discriminator's folder beside a saved policy (run folders, checkpoints, Hub repos).
DISCRIMINATOR_DIR = "discriminator"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
STATE_SEPARATOR = "\n"

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "gelu": nn.GELU}


@dataclass
class DiscriminatorConfig:
    """Everything needed to rebuild a `Discriminator` (saved as its config.json)."""

    encoder: str = "minilm-l6"
    hidden_sizes: list[int] = field(default_factory=lambda: [100, 100])
    activation: str = "tanh"
    layer_norm_eps: float = 1e-5
    freeze_encoder: bool = False
    max_length: int = 256
    encoder_config: dict | None = None  # filled on save, so loading needs no access to the original encoder

    @classmethod
    def from_gail_config(cls, args) -> DiscriminatorConfig:
        return cls(
            encoder=args.discriminator_encoder,
            hidden_sizes=list(args.discriminator_hidden_sizes),
            activation=args.discriminator_activation,
            layer_norm_eps=args.discriminator_layer_norm_eps,
            freeze_encoder=args.discriminator_freeze_encoder,
            max_length=args.discriminator_max_length,
        )


def state_text(history: list[str], prompt: str) -> str:
    """The state as the encoder reads it: utterances oldest first, one per line."""
    return STATE_SEPARATOR.join([*history, prompt])


class Discriminator(nn.Module):
    """Encoder + MLP head scoring (history, prompt, response) as a logit; expert = 1, generated = 0."""

    def __init__(self, config: DiscriminatorConfig | None = None, encoder: nn.Module | None = None, tokenizer=None):
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        from egail.models import resolve_model_path

        self.config = config or DiscriminatorConfig()
        if self.config.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.config.activation!r}")
        if encoder is None:
            path = resolve_model_path(self.config.encoder)
            encoder = AutoModel.from_pretrained(path, use_safetensors=True, trust_remote_code=False)
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.tokenizer.truncation_side = "left"  # keep the most recent history when a state is too long
        self.config.encoder_config = encoder.config.to_dict()

        width = encoder.config.hidden_size
        layers: list[nn.Module] = [nn.LayerNorm(width, eps=self.config.layer_norm_eps)]
        for hidden in self.config.hidden_sizes:
            layers += [nn.Linear(width, hidden), _ACTIVATIONS[self.config.activation]()]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.head = nn.Sequential(*layers)
        self.set_encoder_frozen(self.config.freeze_encoder)

    def set_encoder_frozen(self, frozen: bool) -> None:
        self.config.freeze_encoder = frozen
        self.encoder.requires_grad_(not frozen)

    @property
    def device(self) -> torch.device:
        return next(self.head.parameters()).device

    def tokenize(self, histories: list[list[str]], prompts: list[str], responses: list[str]) -> dict:
        """Encoder inputs for a batch: (state, response) pairs; the state is truncated, from the left.

        A response longer than half of ``max_length`` (a long expert utterance) keeps its first half, so the
        state always has room and the tokenizer never fails to truncate.
        """
        states = [state_text(h, p) for h, p in zip(histories, prompts, strict=True)]
        limit = self.config.max_length // 2
        response_ids = self.tokenizer(list(responses), add_special_tokens=False)["input_ids"]
        responses = [
            text if len(ids) <= limit else self.tokenizer.decode(ids[:limit])
            for text, ids in zip(responses, response_ids, strict=True)
        ]
        return self.tokenizer(
            states,
            responses,
            padding=True,
            truncation="only_first",
            max_length=self.config.max_length,
            return_tensors="pt",
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **encoder_kwargs) -> torch.Tensor:
        """Logits z, shape (batch,)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_encoder):
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, **encoder_kwargs
            ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return self.head(pooled.to(self.head[0].weight.dtype)).squeeze(-1)

    def logits(self, histories: list[list[str]], prompts: list[str], responses: list[str]) -> torch.Tensor:
        batch = self.tokenize(histories, prompts, responses).to(self.device)
        return self(**batch)

    @torch.no_grad()
    def predict_logits(
        self, histories: list[list[str]], prompts: list[str], responses: list[str], batch_size: int = 64
    ) -> torch.Tensor:
        """Logits z in eval mode, in batches, without gradients (scoring; the update uses `logits`)."""
        was_training = self.training
        self.eval()
        chunks = [
            self.logits(histories[i : i + batch_size], prompts[i : i + batch_size], responses[i : i + batch_size])
            for i in range(0, len(responses), batch_size)
        ]
        self.train(was_training)
        return torch.cat(chunks) if chunks else torch.empty(0)

    def score(
        self, histories: list[list[str]], prompts: list[str], responses: list[str], batch_size: int = 64
    ) -> torch.Tensor:
        """D in (0, 1) for each response, in batches, without gradients."""
        return torch.sigmoid(self.predict_logits(histories, prompts, responses, batch_size))

    @staticmethod
    def loss(expert_logits: torch.Tensor, generated_logits: torch.Tensor) -> torch.Tensor:
        """Eq. 6 as a loss: -E_expert[log D] - E_generated[log(1 - D)], each side averaged so both weigh equally."""
        expert = F.binary_cross_entropy_with_logits(expert_logits, torch.ones_like(expert_logits))
        generated = F.binary_cross_entropy_with_logits(generated_logits, torch.zeros_like(generated_logits))
        return expert + generated

    def save_pretrained(self, save_directory: str | Path) -> None:
        """A self-contained folder: config.json (with the encoder's config), model.safetensors, tokenizer."""
        from safetensors.torch import save_file

        directory = Path(save_directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_NAME).write_text(json.dumps(asdict(self.config), indent=2, sort_keys=True))
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "egail": "discriminator"})
        self.tokenizer.save_pretrained(directory)

    @classmethod
    def from_pretrained(cls, path_or_repo: str | Path, subfolder: str | None = None) -> Discriminator:
        """Load a folder written by `save_pretrained`, locally or from a Hub repository (optionally a subfolder)."""
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        directory = Path(path_or_repo) / (subfolder or "")
        if not directory.is_dir():
            from huggingface_hub import snapshot_download

            pattern = f"{subfolder}/*" if subfolder else None
            root = snapshot_download(str(path_or_repo), allow_patterns=pattern)
            directory = Path(root) / (subfolder or "")
        config_file = directory / CONFIG_NAME
        if not config_file.is_file():
            raise FileNotFoundError(f"{config_file} not found: not a folder written by Discriminator.save_pretrained")
        config = DiscriminatorConfig(**json.loads(config_file.read_text()))
        encoder_config = dict(config.encoder_config or {})
        model_type = encoder_config.pop("model_type")
        encoder = AutoModel.from_config(AutoConfig.for_model(model_type, **encoder_config))
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False)
        discriminator = cls(config, encoder=encoder, tokenizer=tokenizer)
        discriminator.load_state_dict(load_file(str(directory / WEIGHTS_NAME)))
        return discriminator


@dataclass(frozen=True)
class LossStep:
    """What one discriminator step saw: its loss and logits, and whether the optimizer stepped."""

    loss: torch.Tensor
    expert_logits: torch.Tensor
    generated_logits: torch.Tensor
    stepped: bool


def log_loss_step(
    discriminator: Discriminator,
    optimizer: torch.optim.Optimizer,
    histories: list[list[str]],
    prompts: list[str],
    expert: list[str],
    generated: list[str],
    should_step: Callable[[torch.Tensor], bool] = lambda loss: bool(torch.isfinite(loss)),
    reduce_gradients: Callable[[], None] = lambda: None,
) -> LossStep:
    """One Eq. 6 step on pairs ``(state_i, expert_i)`` vs ``(state_i, generated_i)``: one forward over both sides.

    ``should_step(loss)`` decides whether to step (GAILTrainer: only if the loss is finite on every process) and
    ``reduce_gradients`` runs between backward and the step (GAILTrainer: the all-reduce over processes). The
    trainer and ``benchmarks/bench_discriminator.py`` both call this, so the benchmark times the trainer's step.
    """
    n = len(expert)
    discriminator.train()
    logits = discriminator.logits(histories * 2, prompts * 2, [*expert, *generated]).float()
    loss = Discriminator.loss(logits[:n], logits[n:])
    optimizer.zero_grad(set_to_none=True)
    stepped = should_step(loss)
    if stepped:
        loss.backward()
        reduce_gradients()
        optimizer.step()
    return LossStep(loss.detach(), logits[:n].detach(), logits[n:].detach(), stepped)


def reward_from_logits(logits: torch.Tensor, form: str) -> torch.Tensor:
    """The policy's reward from D = sigmoid(z), computed on logits for numerical stability.

    - ``log_d``: log D, always <= 0: punishes responses D finds unlike the expert's (the "non-saturating" GAN
      generator objective, and EmpathyGAIL's choice here).
    - ``neg_log_one_minus_d``: -log(1 - D), always >= 0: rewards expert-like ones. This is GAIL's original form:
      Ho & Ermon (2016) train D to score the *policy* high and give the policy the cost log D_policy, which with
      expert = 1, as here, is log(1 - D). TextGAIL uses it.
    - ``logit``: log D - log(1 - D) = z, the AIRL form, unbounded on both sides.
    """
    if form == "log_d":
        return F.logsigmoid(logits)
    if form == "neg_log_one_minus_d":
        return F.softplus(logits)
    if form == "logit":
        return logits
    raise ValueError(f"unknown reward form {form!r}")


def binary_accuracy(logits: torch.Tensor, expert: bool) -> float:
    """Share of logits on the right side of 0 (D > 0.5 for expert, D < 0.5 for generated)."""
    if logits.numel() == 0:
        return math.nan
    correct = logits > 0 if expert else logits < 0
    return correct.float().mean().item()
