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

Beyond measuring the shift (arrays in, numbers out, each with a frames-table entry point):
``benchmark.metrics.normalisation`` (per-domain post-hoc normalisation baselines and "shift closed"),
``benchmark.metrics.operating`` (thresholds fixed on one split, rates on another; oracle TPR at FPR),
``benchmark.metrics.calibration`` (ECE over equal-mass bins, Brier score, log loss),
``benchmark.metrics.paired`` (paired bootstrap differences, bootstrap p-values, Holm, t-test over seeds) and
``benchmark.metrics.confounds`` (confound-matched Cross-AUC: coarsened exact matching or inverse propensity
weights, weighted AUC, share kept, Kish's effective sample size).
"""

from benchmark.metrics.binary import accuracy, auc, average_precision, eer, eer_threshold, roc
from benchmark.metrics.calibration import N_BINS, brier_score, ece, log_loss
from benchmark.metrics.confounds import (
    MatchedCrossAUC,
    MatchingSettings,
    cem_weights,
    kish_ess,
    matched_cross_auc,
    weighted_auc,
)
from benchmark.metrics.cross_auc import SUMMARY_KEYS, cross_auc_matrix, cross_auc_summary, pooled_auc
from benchmark.metrics.normalisation import (
    METHOD_NAMES,
    METHODS,
    NormalisationResult,
    NormalisationSettings,
    fewshot_offset,
    logit,
    normalisation_analysis,
    quantile_offset,
    robust_standardisation,
    shift_closed,
    znorm,
)
from benchmark.metrics.operating import (
    FPR_TARGETS,
    OperatingPoints,
    balanced_accuracy,
    operating_points,
    rates_at_threshold,
    threshold_at_fpr,
    threshold_name,
    tpr_at_fpr,
)
from benchmark.metrics.paired import (
    PairedDifference,
    bootstrap_p_value,
    different_videos,
    holm,
    paired_bootstrap,
    paired_difference,
    percentile_interval,
    seed_ttest,
)
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
    score_quality,
    score_shift,
    separation,
    threshold_transfer,
    wasserstein1,
)

__all__ = [
    "MatchedCrossAUC",
    "MatchingSettings",
    "cem_weights",
    "kish_ess",
    "matched_cross_auc",
    "weighted_auc",
    "AGGREGATIONS",
    "FPR_TARGETS",
    "LEVELS",
    "METHODS",
    "METHOD_NAMES",
    "N_BINS",
    "SUMMARY_KEYS",
    "Scores",
    "Units",
    "BootstrapResult",
    "NormalisationResult",
    "NormalisationSettings",
    "OperatingPoints",
    "PairedDifference",
    "ScoreShift",
    "accuracy",
    "as_scores",
    "auc",
    "average_precision",
    "balanced_accuracy",
    "bootstrap",
    "bootstrap_p_value",
    "brier_score",
    "cross_auc_matrix",
    "cross_auc_summary",
    "dataset_metrics",
    "different_videos",
    "ece",
    "eer",
    "eer_threshold",
    "fewshot_offset",
    "holm",
    "log_loss",
    "logit",
    "normalisation_analysis",
    "operating_points",
    "pair_name",
    "paired_bootstrap",
    "paired_difference",
    "percentile_interval",
    "pooled_auc",
    "quantile_offset",
    "rates_at_threshold",
    "robust_standardisation",
    "roc",
    "score_quality",
    "score_shift",
    "seed_ttest",
    "separation",
    "shift_closed",
    "threshold_at_fpr",
    "threshold_name",
    "threshold_transfer",
    "tpr_at_fpr",
    "znorm",
    "units",
    "validate_frames",
    "video_scores",
    "wasserstein1",
]
