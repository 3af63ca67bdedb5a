"""distinct-n (Li et al., 2016) as an `evaluate` module that loads from this file, with no Hub access.

distinct-n = unique n-grams / total n-grams over all predictions together (a corpus figure, not a mean
of per-sentence ratios). Tokens are whitespace-separated words, as written; n-grams never cross from one
prediction into the next. With no n-grams at all the value is 0.
"""

import datasets
import evaluate

_DESCRIPTION = """Corpus distinct-n: the share of unique word n-grams among all n-grams of the predictions."""

_CITATION = """\
@inproceedings{li-etal-2016-diversity,
    title = "A Diversity-Promoting Objective Function for Neural Conversation Models",
    author = "Li, Jiwei and Galley, Michel and Brockett, Chris and Gao, Jianfeng and Dolan, Bill",
    booktitle = "Proceedings of NAACL-HLT",
    year = "2016",
    pages = "110--119",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of strings.
    orders: the n values to report (default (1, 2)).
Returns:
    distinct-1, distinct-2, ...: unique / total n-grams in [0, 1], plus the counts as unique-n, total-n.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class DistinctLocal(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, orders=(1, 2)):
        result = {}
        for n in orders:
            ngrams = [
                tuple(words[i : i + n])
                for words in (text.split() for text in predictions)
                for i in range(len(words) - n + 1)
            ]
            result[f"distinct-{n}"] = len(set(ngrams)) / len(ngrams) if ngrams else 0.0
            result[f"unique-{n}"] = len(set(ngrams))
            result[f"total-{n}"] = len(ngrams)
        return result
