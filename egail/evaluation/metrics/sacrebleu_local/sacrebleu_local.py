"""sacreBLEU corpus BLEU as an `evaluate` module that loads from this file, with no Hub access.

``evaluate.load("sacrebleu")`` fetches its script from the Hub and fails offline; this module is the same
computation (``sacrebleu.metrics.BLEU(...).corpus_score``) kept next to egail, with one addition: the
n-gram order is a compute argument, so BLEU-2 (the order TextGAIL reports) is ``max_ngram_order=2``.
"""

import datasets
import evaluate
import sacrebleu

_DESCRIPTION = """Corpus-level BLEU (Papineni et al., 2002) computed by sacreBLEU (Post, 2018), 0-100."""

_CITATION = """\
@inproceedings{post-2018-call,
    title = "A Call for Clarity in Reporting {BLEU} Scores",
    author = "Post, Matt",
    booktitle = "Proceedings of the Third Conference on Machine Translation: Research Papers",
    year = "2018",
    pages = "186--191",
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: list of hypothesis strings.
    references: list of lists of reference strings, one list per prediction (all of the same length).
    max_ngram_order: highest n-gram order (4 = standard BLEU, 2 = BLEU-2).
    smooth_method: sacreBLEU smoothing ('exp', 'floor', 'add-k' or 'none').
    tokenize: sacreBLEU tokenizer (default '13a').
    lowercase: lowercase before scoring.
Returns:
    score: BLEU in [0, 100]; precisions, bp, sys_len, ref_len; signature: the sacreBLEU signature.
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SacrebleuLocal(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("string"),
                    "references": datasets.Sequence(datasets.Value("string")),
                }
            ),
            codebase_urls=["https://github.com/mjpost/sacreBLEU"],
        )

    def _compute(
        self,
        predictions,
        references,
        max_ngram_order=4,
        smooth_method="exp",
        tokenize="13a",
        lowercase=False,
    ):
        n_refs = {len(refs) for refs in references}
        if len(n_refs) > 1:
            raise ValueError("sacreBLEU needs the same number of references for every prediction.")
        # sacreBLEU wants one stream per reference position: transpose the per-prediction lists.
        streams = [list(stream) for stream in zip(*references, strict=True)]
        bleu = sacrebleu.metrics.BLEU(
            max_ngram_order=max_ngram_order,
            smooth_method=smooth_method,
            tokenize=tokenize,
            lowercase=lowercase,
        )
        result = bleu.corpus_score(predictions, streams)
        return {
            "score": result.score,
            "precisions": result.precisions,
            "bp": result.bp,
            "sys_len": result.sys_len,
            "ref_len": result.ref_len,
            "signature": str(bleu.get_signature()),
        }
