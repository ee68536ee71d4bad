"""MLflow tag and environment names shared by our runs, the plugin, lineage and the gate."""

from __future__ import annotations

PREFIX = "ganinf."
VERSION = "ganinf.version"  # the ganinf-mlops package version that made the run (every run)
STAGE = "ganinf.stage"  # prepare, train, influence, validate, cleanse, job, iteration, gate
DATASET_DIGEST = "ganinf.dataset_digest"  # full sha256 of the version the run read
PARENT_DIGEST = "ganinf.input_parent_digest"  # that version's parent (absent for raw data)
INPUT_VERSION = "ganinf.input_version"  # the version read, "v1 (07f90fab65c1)"
OUTPUT_VERSION = "ganinf.output_version"  # the version written, "v2 (4be1...)"
PRESET = "ganinf.preset"  # job: the name of the configuration it ran
GATE = "ganinf.gate"  # gate: pass | fail
# a trained run (and a job: its first model scored): fitted | unfitted (metrics/fit.py)
FIT = "ganinf.fit"
# job: improved | within_noise | worse (report.verdict_state: fresh retraining, the headline)
VERDICT = "ganinf.verdict"
# job and registered model version: what headline_* measure (Compare lines up)
HEADLINE_METRIC = "ganinf.headline_metric"
BEST_ITERATION = "ganinf.best_iteration"  # job: the iteration whose headline is best
# job: the other quality metrics that got worse beyond their seed spread (comma-separated), or
# "none" (the verdict's collapse check; absent with one training seed)
WORSENED = "ganinf.worsened"
# job: "true" when the scored metric's change is within its seed spread (retraining noise),
# "false" beyond it (absent with one training seed)
WITHIN_SPREAD = "ganinf.within_spread"
# registered model version: the headline's value for that model (with HEADLINE_METRIC)
HEADLINE = "ganinf.headline"
WARNING = "ganinf.warning"  # an iteration that removed instances predicted to help
OUTPUT_DIGEST = "ganinf.output_digest"  # version the run wrote (prepare, cleanse, iteration)
ITERATION = "ganinf.iteration"  # cleanse -> retrain iteration index in a loop
METHOD = "ganinf.method"  # scoring method
SCHEDULE = "ganinf.schedule"  # fresh | replay
LINEAGE_DEPTH = "ganinf.lineage_depth"  # cleanse generations from the raw version
DVC_EXPERIMENT = "ganinf.dvc_experiment"  # DVC experiment name (its parent run, its stages)
DVC_BASELINE = "ganinf.dvc_baseline_rev"  # the commit the DVC experiment started from
# sha256 of (experiment, baseline) in hex: what a stage searches its parent run by, since a git
# ref may hold quotes that MLflow's filter grammar cannot escape
DVC_EXPERIMENT_KEY = "ganinf.dvc_experiment_key"
DVC_STAGE = "ganinf.dvc_stage"  # the DVC stage a run belongs to ("retrain@v2")
DVC_LAST_STAGE = "ganinf.dvc_last_stage"  # a DVC experiment's parent run: its last stage run
GIT_COMMIT = "ganinf.git_commit"  # the project's commit, set by the run-context plugin
GIT_DIRTY = "ganinf.git_dirty"  # "true" when tracked files differ from it (the plugin)
DVC_PREFIX = "ganinf.dvc."  # dvc.lock hashes, set by the run-context plugin
RESUMED_FROM = "ganinf.resumed_from"  # train --resume: the run of the interrupted training
SCORED_TRAJECTORY = "ganinf.scored_trajectory"  # runs:/<id>/<path> of the trajectory scored
DATASET_SHA256 = "ganinf.sha256"  # tag on a logged dataset input: the full digest
# tag on a local dataset input: the directory this run read (MLflow keeps one source per
# dataset name and digest, the first run's)
DATASET_PATH = "ganinf.path"


def input_tags(digest: str, parent_digest: str | None) -> dict[str, str]:
    """The tags of the version a run reads: its digest, and its parent's when it has one (no
    empty tags). Shared by our runs and the run-context plugin."""
    out = {DATASET_DIGEST: digest}
    if parent_digest:
        out[PARENT_DIGEST] = parent_digest
    return out


ENV_DATA = "GANINF_DATA"  # dataset version directory the current command works on
ENV_PROJECT = "GANINF_PROJECT"  # marks a directory as a ganinf project for the plugin
