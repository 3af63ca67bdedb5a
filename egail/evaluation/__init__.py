"""Evaluation of dialogue models: the paper's Table 2 (perplexity and BLEU by conversation length), done
with proper metrics, plus diversity, emotional attunement, sentiment agreement and discriminator scores.

    from egail.evaluation import EvaluationSettings, evaluate_models
    report = evaluate_models({"base": "smollm2-135m-instruct", "gail": "runs/gail"}, "embedded")
    report.write("results/")   # results.json, table.md, perplexity.png, bleu.png, examples.md
"""

from egail.evaluation.emotion import EmotionClassifier, default_emotion_classifier, train_emotion_classifier
from egail.evaluation.generation import generate_responses
from egail.evaluation.perplexity import ResponseNLL, perplexity, response_nlls
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
    "MetricInfo",
    "ResponseNLL",
    "Stat",
    "bleu",
    "bucket_of",
    "default_emotion_classifier",
    "distinct",
    "evaluate_models",
    "generate_responses",
    "mean_length",
    "perplexity",
    "response_nlls",
    "select_rows",
    "sentiment_agreement",
    "sentiment_class",
    "train_emotion_classifier",
]
