"""Training curves of a GAIL run as one PNG beside the model: is the adversarial game healthy?

A healthy run shows D(expert) above D(generated) with the gap closing slowly, a sample reward that rises, sampled
replies whose length approaches the experts' (both cut at ``max_completion_length``), a KL to the starting policy
that grows slowly (logged by TRL when ``beta > 0``), and the demo ratio decaying as scheduled. A discriminator at 100% accuracy from the start (the policy gets no useful
signal) or at 50% forever (it learns nothing) is visible at a glance.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import TrainerCallback

PANELS = (
    ("Sample reward", ("reward", "rewards/discriminator_reward/mean", "rewards/sentiment_history_reward/mean")),
    ("Discriminator score", ("discriminator/d_expert", "discriminator/d_generated")),
    ("Response length (tokens)", ("completions/mean_length", "expert/mean_length")),
    ("KL to the start", ("kl",)),
    ("Losses", ("loss", "discriminator/loss")),
    ("Human demos", ("demo/ratio", "demo/share")),
)


def plot_training_curves(log_history: list[dict], path: str | Path) -> Path | None:
    """Write the curves logged in ``log_history`` (a Trainer's ``state.log_history``) to ``path``.

    Returns the path, or None when nothing was logged (e.g. a run shorter than ``logging_steps``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logs = [entry for entry in log_history if "step" in entry]
    if not any(key in entry for entry in logs for _, keys in PANELS for key in keys):
        return None
    figure, axes = plt.subplots(3, 2, figsize=(11, 10), constrained_layout=True)
    for axis, (title, keys) in zip(axes.flat, PANELS, strict=True):
        for key in keys:
            points = [(e["step"], e[key]) for e in logs if isinstance(e.get(key), int | float)]
            if points:
                steps, values = zip(*points, strict=True)
                axis.plot(steps, values, marker="." if len(points) < 30 else None, label=key)
        axis.set_title(title)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if axis.lines:
            axis.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


class TrainingCurvesCallback(TrainerCallback):
    """Saves ``training_curves.png`` and the figures behind it (``log_history.json``) in the output folder when
    training ends (main process only)."""

    def __init__(self, filename: str = "training_curves.png"):
        self.filename = filename
        self.path: Path | None = None

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            output = Path(args.output_dir)
            output.mkdir(parents=True, exist_ok=True)
            (output / "log_history.json").write_text(json.dumps(state.log_history, indent=1))
            self.path = plot_training_curves(state.log_history, output / self.filename)
