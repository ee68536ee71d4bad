"""Result keys: one name per quantity, used alike by run metrics.json, score tables, MLflow
metrics, DVC metrics (metrics/summary.json) and reports, so that MLflow's compare view and
`dvc metrics diff` line up. Nothing else in the package types these names out.
"""

from __future__ import annotations

from ganinf_mlops.metrics import specs  # pure, and imports nothing from here

# -- metrics of a trained run (metrics.json) --------------------------------------------------
ALL = "all"  # average log-likelihood of held-out data under a KDE of samples
FD = "fd"  # Fréchet distance of Gaussian fits, generated vs held-out
DISC_LOSS = "disc_loss"  # discriminator loss on held-out real and fixed fake points
FID = "fid"  # the Fréchet distance on feature-classifier features of images
IS = "is"  # Inception Score on the feature classifier's softmax
FID_TORCH_FIDELITY = "fid_torch_fidelity"  # the same two computed by torch-fidelity, a check
IS_TORCH_FIDELITY = "is_torch_fidelity"
# FID on Inception-v3 features (torch-fidelity's network, local weights: metric.inception_weights),
# comparable with published FIDs; not a target (the extractor takes uint8 images)
FID_INCEPTION = "fid_inception"
CLASSIFIER_ACCURACY = "classifier_accuracy"  # the feature classifier's held-out accuracy
COPYING_CT = "copying_ct"  # Meehan et al.'s C_T: << 0 data copying, ~0 fresh samples, > 0 underfit
VAL_LOSS = "val_loss"  # a classifier's cross-entropy on the validation half of x_eval
VAL_ACCURACY = "val_accuracy"  # its accuracy there
TEST_LOSS = "test_loss"  # the same on the test half, never used for scoring
TEST_ACCURACY = "test_accuracy"  # what a classifier cleansing is judged by
GEN_MEAN_ERROR = "gen_mean_error"  # ||mean(generated) - mean(held-out)||
GEN_COV_ERROR = "gen_cov_error"  # ||cov(generated) - cov(held-out)||_F
N_INSTANCES = "n_instances"  # training instances of the run's dataset version
N_STEPS = "n_steps"  # optimizer steps of the run
TRAIN_SECONDS = "train_seconds"  # wall time of the step loop (timing, not a result)

# -- a cleanse and its retrainings ------------------------------------------------------------
PREDICTED_CHANGE = "predicted_change"  # first-order V(without removed) - V(all), from the scores
PREDICTED_IMPROVEMENT = "predicted_improvement"  # the same, sign-normalised: > 0 is better
REPLAY_IMPROVEMENT = "replay_improvement"  # the replay's change, sign-normalised
ACTUAL_CHANGE = "actual_change"  # the same change observed by counterfactual replay
FRESH_CHANGE = "fresh_change"  # the change observed by fresh retraining (production)
FRESH_CHANGE_SE = "fresh_change_se"  # its standard error over retraining seeds
N_SEEDS = "n_seeds"  # fresh runs (training seeds) of a version
SEED_MEAN = "seed_mean"  # {result: its mean over those runs}
SEED_STD = "seed_std"  # {result: its standard deviation}: the seed-to-seed spread
N_REMOVED = "n_removed"  # instances removed by one cleanse
N_REMOVED_TOTAL = "n_removed_total"  # instances removed since the raw version
N_ANOMALIES = "n_anomalies"  # injected anomalies left in a version
N_ANOMALIES_REMOVED = "n_anomalies_removed"  # injected anomalies removed by the cleanse
N_AGREEING = "n_agreeing"  # ensemble members that, held out of the selection, predict a gain
N_MEMBERS = "n_members"  # members of the ensemble that scored a cleanse
MEMBERS = "members"  # score-table extra: each ensemble member's own predicted change
# Did the model fit its data (metrics/fit.py): a run's meta.json (by metric), a score table's
# extra and summary.json's job (the scored model's check)
FIT = "fit"
ITERATION = "iteration"
SCORING_SECONDS = "scoring_seconds"

# -- the headline: one number per job and iteration, the same on every surface ---------------
# The scored metric (or what judges it: a classifier's test accuracy), as the seed mean over
# fresh retrainings where there are several seeds. A one-seed value keeps an explicit name
# (`fd_seed0`).
HEADLINE = "headline"  # an iteration's headline value
HEADLINE_STD = "headline_std"  # its spread between training seeds (absent with one seed)
HEADLINE_METRIC = "headline_metric"  # which metric the headline is (summary, MLflow tag)
HEADLINE_RAW = "headline_raw"  # iteration 0's headline
HEADLINE_FINAL = "headline_final"  # the last iteration's
HEADLINE_BEST = "headline_best"  # the best iteration's
BEST_ITERATION = "best_iteration"
IMPROVEMENT = "improvement"  # an iteration's headline change from the previous, > 0 is better
TOTAL_IMPROVEMENT = "total_improvement"  # the last iteration's against the raw, > 0 is better
VERDICT = "verdict"  # improved | within_noise | worse (report.verdict_state)
HEADLINE_KEYS = (HEADLINE_RAW, HEADLINE_FINAL, HEADLINE_BEST, BEST_ITERATION, TOTAL_IMPROVEMENT)

# -- score tables -----------------------------------------------------------------------------
ID = "id"
HARMFULNESS = "harmfulness"  # predicted improvement of the metric on removal
RANK = "rank"

# -- validation against leave-one-out ---------------------------------------------------------
KENDALL_TAU = "kendall_tau"
KENDALL_TAU_RANDOM = "kendall_tau_random"
PEARSON_R = "pearson_r"
PEARSON_R_RANDOM = "pearson_r_random"
JACCARD_TOP_K = "jaccard_top_k"

# -- the gate ---------------------------------------------------------------------------------
HARMFUL_FRAC = "harmful_frac"
N_HARMFUL = "n_harmful"

TIMING = frozenset({TRAIN_SECONDS, SCORING_SECONDS})  # never results: left out of reports
CHANGES = (PREDICTED_CHANGE, ACTUAL_CHANGE, FRESH_CHANGE)
REMOVAL_COUNTS = (
    N_REMOVED,
    N_REMOVED_TOTAL,
    N_ANOMALIES,
    N_ANOMALIES_REMOVED,
    N_AGREEING,
    N_MEMBERS,
)
SEED_STATS = (N_SEEDS, SEED_MEAN, SEED_STD, FRESH_CHANGE_SE)
VALIDATION = (KENDALL_TAU, KENDALL_TAU_RANDOM, PEARSON_R, PEARSON_R_RANDOM, JACCARD_TOP_K)
# Column order of reports: these first, then any other numeric metric, sorted.
RUN_METRIC_ORDER = (
    ALL,
    FD,
    FID,
    IS,
    DISC_LOSS,
    TEST_ACCURACY,
    TEST_LOSS,
    VAL_LOSS,
    VAL_ACCURACY,
    GEN_MEAN_ERROR,
    GEN_COV_ERROR,
    N_INSTANCES,
    N_STEPS,
)

# What a cleansing is judged on, beside its own metric (the collapse check of the verdict).
QUALITY_METRICS = (ALL, FD, FID, IS, TEST_ACCURACY)


# Direction, MLflow names and wording of the run results are owned by their `metrics.specs.Metric`
# registrations; what follows are views derived from them, kept here for the call sites.
def __getattr__(name: str) -> object:
    """`LOWER_IS_BETTER` and `TRACKING_NAMES`, derived from the registered metrics on access."""
    if name == "LOWER_IS_BETTER":
        return specs.lower_is_better()
    if name == "TRACKING_NAMES":  # {key: MLflow name} where a key misleads alone (all)
        return specs.tracking_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tracking_name(key: str) -> str:
    """The MLflow metric name of a result key (its suffixed forms too: all_raw, all_best)."""
    return specs.tracking_name(key)


def primary_metric(results: dict) -> str:
    """The headline metric among a run's results: ALL for vector data, FID for images, test
    accuracy for classifiers."""
    return next((k for k in RUN_METRIC_ORDER if k in results), ALL)


def higher_is_better(metric: str) -> bool:
    return specs.higher_is_better(metric)


def improvement(metric: str, change: float) -> float:
    """A change of `metric` as an improvement: positive when the metric got better."""
    return specs.improvement(metric, change)
