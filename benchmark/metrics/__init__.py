"""Every number of every leaderboard: plain, vectorised functions on arrays and frames tables.

Import everything from here::

    from benchmark.metrics import Scores, cross_auc_matrix, cross_auc_summary, bootstrap
    frames = ScoreStore("results").read_scores(detector="sfam", seed=0)
    A = cross_auc_matrix(frames)                  # rows: reals of dataset i, columns: fakes of dataset j
    cross_auc_summary(A, exclude=["FF++"])        # diag_mean, offdiag_mean, pair_mean, worst, ...
    bootstrap(frames, "cross_auc", n=1000).table  # 95 % intervals resampling videos

    scores = Scores.from_frames(frames)           # validate once, then pass it to many metrics
    cross_auc_matrix(scores, level="frame"); dataset_metrics(scores); bootstrap(scores, n=1000)

Conventions: ``label`` 1 = fake, 0 = real; ``score`` = probability of fake; "fake" means
``score >= threshold``; AUC ties count one half; AUC of one class is NaN. A *frames* table has one row per
scored frame with ``dataset, label, score`` (+ ``video_id, sample_id, method, cell_id, ...``); bad input
(NaN/inf scores, labels outside {0, 1}, duplicated sample ids, a video with mixed labels, an empty
dataset) raises ``ValueError`` naming the column and rows (``benchmark.metrics.validation``). Every
function of a frames table also accepts a :class:`Scores` (the validated table, ``benchmark.metrics.scores``).
A video's score (``agg="mean"``) is the float64 nearest to the exact mean of its frame scores
(``benchmark.metrics.means``), so equal means tie.

Array metrics live in ``benchmark.metrics.binary``, Cross-AUC in ``benchmark.metrics.cross_auc``, the
bootstrap in ``benchmark.metrics.resample``; per-dataset tables, threshold transfer and score-shift reports
live in ``benchmark.metrics.summaries``; this package re-exports them all.
"""

from benchmark.metrics.binary import accuracy, auc, average_precision, eer, eer_threshold, roc
from benchmark.metrics.cross_auc import SUMMARY_KEYS, cross_auc_matrix, cross_auc_summary, pooled_auc
from benchmark.metrics.resample import BootstrapResult, bootstrap, pair_name
from benchmark.metrics.scores import (
    AGGREGATIONS,
    LEVELS,
    Scores,
    Units,
    as_scores,
    units,
    validate_frames,
    video_scores,
)
from benchmark.metrics.summaries import (
    ScoreShift,
    dataset_metrics,
    score_shift,
    threshold_transfer,
    wasserstein1,
)

__all__ = [
    "AGGREGATIONS",
    "LEVELS",
    "SUMMARY_KEYS",
    "Scores",
    "Units",
    "BootstrapResult",
    "ScoreShift",
    "accuracy",
    "as_scores",
    "auc",
    "average_precision",
    "bootstrap",
    "cross_auc_matrix",
    "cross_auc_summary",
    "dataset_metrics",
    "eer",
    "eer_threshold",
    "pair_name",
    "pooled_auc",
    "roc",
    "score_shift",
    "threshold_transfer",
    "units",
    "validate_frames",
    "video_scores",
    "wasserstein1",
]
