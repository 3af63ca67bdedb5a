"""`GAILConfig`: TRL's `GRPOConfig` plus the discriminator, demo mixing and reward settings of GAIL."""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

REWARD_FORMS = ("log_d", "neg_log_one_minus_d", "logit")


@dataclass
class GAILConfig(GRPOConfig):
    r"""
    Configuration for [`GAILTrainer`]: everything in [`trl.GRPOConfig`] (PPO-clipped policy optimisation,
    generation, logging, checkpoints) plus the adversarial parts. Defaults follow Table 1 of Muthukumar et al.
    where it gives a value.

    Parameters that differ from `GRPOConfig`:
        per_device_train_batch_size (`int`, defaults to `8`): the PPO minibatch (Table 1).
        generation_batch_size (`int` or `None`, defaults to `128`): the PPO buffer (Table 1): completions sampled
            per rollout. Ignored when `steps_per_generation` is set.
        bf16 (`bool` or `None`, defaults to `None`): bf16 on a GPU that supports it, float32 elsewhere (bf16 on a
            CPU is slow and lossy).
        disable_dropout (`bool`, defaults to `True`): no dropout in the policy: samples, their old log-probs and the
            reference log-probs then come from one deterministic model.

    > Discriminator

        discriminator_encoder (`str`, defaults to `"minilm-l6"`): encoder of the discriminator: the embedded
            all-MiniLM-L6-v2, a local folder, or any Hugging Face encoder id.
        discriminator_hidden_sizes (`list[int]`, defaults to `[100, 100]`): hidden layers of the MLP head.
        discriminator_activation (`str`, defaults to `"tanh"`): activation between head layers.
        discriminator_layer_norm_eps (`float`, defaults to `1e-5`): epsilon of the head's input LayerNorm.
        discriminator_freeze_encoder (`bool`, defaults to `False`): train only the head (faster, weaker critic).
        discriminator_learning_rate (`float`, defaults to `1e-4`): AdamW learning rate.
        discriminator_weight_decay (`float`, defaults to `0.01`): AdamW weight decay.
        discriminator_pretrain_steps (`int`, defaults to `200`): discriminator-only updates on policy samples
            before the policy starts to move, so its first rewards are informative.
        discriminator_updates_per_generation (`int`, defaults to `1`): passes over each rollout batch.
        discriminator_batch_size (`int`, defaults to `32`): expert + generated pairs per discriminator minibatch.
        discriminator_max_length (`int`, defaults to `256`): encoder tokens per (state, response); the oldest
            history is cut first.

    > MLE warm-up

        sft_warmup_steps (`int`, defaults to `0`): supervised steps on the expert responses before D is pre-trained
            (TextGAIL warm-starts its generator from MLE). Each step is `per_device_train_batch_size` distinct
            states with their demo tokens; the loss is on the response only. `0` turns it off (start from an SFT
            model instead, e.g. `recipes/sft.py`).
        sft_warmup_learning_rate (`float`, defaults to `5e-5`): AdamW learning rate of the warm-up (its own
            optimizer, no schedule; the GAIL steps then use `learning_rate`).

    > Human-demo mixing

        demo_ratio_start (`float`, defaults to `0.3`): share of each rollout batch replaced by the expert response.
        demo_ratio_end (`float`, defaults to `0.0`): share at the last step.
        demo_warmup_steps (`int`, defaults to `100`): steps held at `demo_ratio_start` before the linear decay to
            `demo_ratio_end` at `max_steps`.
        demo_advantage (`float`, defaults to `1.0`): the advantage of every demo completion. Demos are kept out of
            GRPO's group baseline (their reward is `None`, so the samples of a group are compared only with each
            other) and pushed up with this constant instead, in the same units as a sample's group-normalised
            advantage: 1.0 makes a demo count like a sample one standard deviation above its group. TextGAIL gives
            demos a constant reward of 2.0 (above any sample's D score); `textgail.yaml` keeps that as an advantage
            of 2.0. At most `1 - 2 / num_generations` of a rollout can be demos (each group keeps two samples).
        include_oneliners (`bool`, defaults to `False`): keep one-liner rows (no history, prompt = response) in
            GAIL rollouts. Off by default: their expert "response" echoes the prompt, which teaches D that echoing
            is expert-like. SFT keeps them (`recipes/sft.py`).

    > Reward

        reward_form (`str`, defaults to `"log_d"`): transform of the discriminator's D into a reward: `"log_d"`
            (log D), `"neg_log_one_minus_d"` (-log(1 - D)) or `"logit"` (log D - log(1 - D)).
        sentiment_history_weight (`float`, defaults to `0.5`): weight of the sentiment-history reward
            ([`SentimentHistory`]); `0` turns it off.
        history_max_turns (`int` or `None`, defaults to `None`): earlier turns kept in a state (`None`: all).
        max_prompt_length (`int` or `None`, defaults to `512`): policy tokens kept of a state; the oldest are cut.
        system_prompt (`str` or `None`, defaults to `None`): system message of every state (`None`: the chat
            template's default).

    > Numerical safety

        max_nonfinite_steps (`int`, defaults to `10`): a step whose policy or discriminator loss is NaN or
            infinite skips its update with a warning; this many such steps in a row stop training with a clear
            error, leaving the last checkpoint (written before the fault) as it was.
    """

    _VALID_DICT_FIELDS = GRPOConfig._VALID_DICT_FIELDS

    per_device_train_batch_size: int = field(default=8, metadata={"help": "The PPO minibatch size (Table 1)."})
    generation_batch_size: int | None = field(
        default=128,
        metadata={
            "help": "The PPO buffer: completions per rollout (Table 1). Ignored when steps_per_generation is set."
        },
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bf16 mixed precision; `None` means on for a bf16-capable GPU, off elsewhere."},
    )
    max_completion_length: int | None = field(
        default=64, metadata={"help": "Maximum tokens of a generated response (dialogue replies are short)."}
    )
    disable_dropout: bool = field(
        default=True,
        metadata={"help": "Turn dropout off in the policy, so sampling and old/reference log-probs see one model."},
    )

    # Discriminator
    discriminator_encoder: str = field(
        default="minilm-l6",
        metadata={"help": "Encoder of the discriminator: 'minilm-l6' (embedded), a local folder, or a Hub id."},
    )
    discriminator_hidden_sizes: list[int] = field(
        default_factory=lambda: [100, 100], metadata={"help": "Hidden layer sizes of the discriminator's MLP head."}
    )
    discriminator_activation: str = field(
        default="tanh", metadata={"help": "Activation of the discriminator head: 'tanh', 'relu' or 'gelu'."}
    )
    discriminator_layer_norm_eps: float = field(
        default=1e-5, metadata={"help": "Epsilon of the LayerNorm on the discriminator head's input."}
    )
    discriminator_freeze_encoder: bool = field(
        default=False, metadata={"help": "Keep the discriminator encoder frozen and train only its head."}
    )
    discriminator_learning_rate: float = field(default=1e-4, metadata={"help": "AdamW lr of the discriminator."})
    discriminator_weight_decay: float = field(
        default=0.01, metadata={"help": "AdamW weight decay of the discriminator."}
    )
    discriminator_pretrain_steps: int = field(
        default=200, metadata={"help": "Discriminator-only updates before the policy trains."}
    )
    discriminator_updates_per_generation: int = field(
        default=1, metadata={"help": "Passes of discriminator updates over each rollout batch."}
    )
    discriminator_batch_size: int = field(
        default=32, metadata={"help": "Expert + generated examples per discriminator minibatch."}
    )
    discriminator_max_length: int = field(
        default=256, metadata={"help": "Encoder tokens per (history, prompt, response); oldest history cut first."}
    )

    # MLE warm-up
    sft_warmup_steps: int = field(
        default=0, metadata={"help": "Supervised steps on expert responses before D pre-training (0: none)."}
    )
    sft_warmup_learning_rate: float = field(default=5e-5, metadata={"help": "AdamW lr of the MLE warm-up."})

    # Human-demo mixing
    demo_ratio_start: float = field(
        default=0.3, metadata={"help": "Share of each rollout batch replaced by expert responses at the start."}
    )
    demo_ratio_end: float = field(default=0.0, metadata={"help": "Share of expert responses at the last step."})
    demo_warmup_steps: int = field(
        default=100, metadata={"help": "Steps at demo_ratio_start before the linear decay to demo_ratio_end."}
    )
    demo_advantage: float = field(
        default=1.0,
        metadata={
            "help": "Advantage of every demo completion, in group-normalised units (demos stay out of GRPO's "
            "group baseline). TextGAIL's constant 2.0 is textgail.yaml's value."
        },
    )
    include_oneliners: bool = field(
        default=False,
        metadata={
            "help": "Keep one-liners (prompt = response) in GAIL rollouts; off: they teach D that echoing "
            "the prompt is expert."
        },
    )

    # Reward
    reward_form: str = field(
        default="log_d",
        metadata={"help": "Reward from D: 'log_d', 'neg_log_one_minus_d' or 'logit'.", "choices": list(REWARD_FORMS)},
    )
    sentiment_history_weight: float = field(
        default=0.5, metadata={"help": "Weight of the sentiment-history reward; 0 turns it off."}
    )
    history_max_turns: int | None = field(
        default=None, metadata={"help": "Earlier turns kept in each state (None keeps all)."}
    )
    max_prompt_length: int | None = field(
        default=512, metadata={"help": "Policy tokens kept of a state (history + prompt); the oldest are cut."}
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "System message for every state (None: the chat template's default)."}
    )

    max_nonfinite_steps: int = field(
        default=10, metadata={"help": "Consecutive steps with a non-finite loss after which training stops."}
    )

    def __post_init__(self):
        for name in ("demo_ratio_start", "demo_ratio_end"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}.")
        if self.demo_warmup_steps < 0:
            raise ValueError(f"demo_warmup_steps must be >= 0, got {self.demo_warmup_steps}.")
        if self.reward_form not in REWARD_FORMS:
            raise ValueError(f"reward_form must be one of {REWARD_FORMS}, got {self.reward_form!r}.")
        if self.discriminator_activation not in ("tanh", "relu", "gelu"):
            raise ValueError(
                f"discriminator_activation must be tanh, relu or gelu, got {self.discriminator_activation!r}."
            )
        if self.sft_warmup_steps < 0:
            raise ValueError(f"sft_warmup_steps must be >= 0, got {self.sft_warmup_steps}.")
        if self.discriminator_pretrain_steps < 0 or self.discriminator_updates_per_generation < 0:
            raise ValueError("discriminator_pretrain_steps and discriminator_updates_per_generation must be >= 0.")
        if self.max_nonfinite_steps < 1:
            raise ValueError(f"max_nonfinite_steps must be >= 1, got {self.max_nonfinite_steps}.")
        if self.discriminator_batch_size < 1:
            raise ValueError(f"discriminator_batch_size must be >= 1, got {self.discriminator_batch_size}.")
        if self.num_generations and (self.demo_ratio_start > 0 or self.demo_ratio_end > 0):
            from egail.demos import max_demo_ratio

            limit = max_demo_ratio(self.num_generations)
            if max(self.demo_ratio_start, self.demo_ratio_end) > limit + 1e-9:
                raise ValueError(
                    f"with num_generations={self.num_generations} at most {limit:.2f} of a rollout can be demos (each "
                    f"group keeps 2 samples for its baseline); lower demo_ratio_start/end or raise num_generations."
                )
        if self.sentiment_history_weight < 0:
            raise ValueError(f"sentiment_history_weight must be >= 0, got {self.sentiment_history_weight}.")
        if isinstance(self.discriminator_hidden_sizes, str):  # from the command line: "100,100"
            self.discriminator_hidden_sizes = [int(x) for x in self.discriminator_hidden_sizes.split(",") if x]
        if self.steps_per_generation is not None and self.generation_batch_size == 128:
            self.generation_batch_size = None  # the paper's buffer default yields to an explicit steps_per_generation
        if self.bf16 is None:
            import torch

            self.bf16 = bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
        super().__post_init__()
