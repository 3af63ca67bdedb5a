"""Evaluation of dialogue models: the paper's Table 2 (perplexity and BLEU by conversation length), done
with proper metrics, plus diversity, emotional attunement, sentiment agreement and discriminator scores.

    from egail.evaluation import EvaluationSettings, evaluate_models
    report = evaluate_models({"base": "smollm2-135m-instruct", "gail": "runs/gail"}, "embedded")
    report.write("results/")   # results.json, table.md, perplexity.png, bleu.png, examples.md

`python -m egail.evaluation.study results/` adds 95 % bootstrap intervals over rows, paired differences and
the realism probe's AUC (study.json, study.md); it is not imported here, so that ``-m`` runs it cleanly.
"""

from egail.evaluation.bootstrap import Interval, bootstrap_interval, paired_difference_interval
from egail.evaluation.emotion import EmotionClassifier, default_emotion_classifier, train_emotion_classifier
from egail.evaluation.generation import generate_responses
from egail.evaluation.perplexity import ResponseNLL, perplexity, response_nlls
from egail.evaluation.realism import RealismResult, realism_probe
from egail.evaluation.report import METRICS, EvaluationReport, MetricInfo, Stat
from egail.evaluation.runner import EvaluationSettings, evaluate_models
from egail.evaluation.text_metrics import bleu, distinct, mean_length, sentiment_agreement, sentiment_class
from egail.evaluation.trajectories import ALL, BUCKETS, EvaluationInputError, bucket_of, select_rows
from egail.generation import GenerationSettings

__all__ = [
    "ALL",
    "BUCKETS",
    "METRICS",
    "EmotionClassifier",
    "EvaluationInputError",
    "EvaluationReport",
    "EvaluationSettings",
    "GenerationSettings",
    "Interval",
    "MetricInfo",
    "RealismResult",
    "ResponseNLL",
    "Stat",
    "bleu",
    "bootstrap_interval",
    "bucket_of",
    "default_emotion_classifier",
    "distinct",
    "evaluate_models",
    "generate_responses",
    "mean_length",
    "paired_difference_interval",
    "perplexity",
    "realism_probe",
    "response_nlls",
    "select_rows",
    "sentiment_agreement",
    "sentiment_class",
    "train_emotion_classifier",
]
