"""The job end to end on a shrunk tiny preset: observer callbacks, summary.json, stop rule."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ganinf_mlops import keys, pipeline, report
from ganinf_mlops.config import Preset, get_preset
from ganinf_mlops.data.version import DatasetVersion, load_version
from ganinf_mlops.errors import ConfigError, GaninfError, OutputExistsError
from ganinf_mlops.influence.scores import ScoreTable, meta_path
from ganinf_mlops.layout import JobLayout
from ganinf_mlops.problems.gan import GanProblem
from ganinf_mlops.report import summarize
from ganinf_mlops.train import trainer
from ganinf_mlops.train.rundir import RunDir

# Every key a row may carry: the names of `keys`, plus the structural entries of a row.
KEY_NAMES = {v for name, v in vars(keys).items() if name.isupper() and isinstance(v, str)}
EXTRA_KEYS = {"method", "dataset_digest", "cleansed_digest", "validation", "paths", "chunks"}
EXTRA_KEYS.add(keys.SCORING_SECONDS)
STRUCTURAL = {"metric", "replay", *EXTRA_KEYS}
RUN_RESULTS = set(GanProblem.result_names)  # all, disc_loss, gen_mean_error, ...
ROW_KEYS_0 = {
    keys.ITERATION,
    *RUN_RESULTS,
    keys.N_INSTANCES,
    keys.N_STEPS,
    keys.N_REMOVED,
    keys.N_REMOVED_TOTAL,
    keys.N_ANOMALIES,
    keys.N_ANOMALIES_REMOVED,
    keys.HEADLINE,
}
ROW_KEYS = {
    *ROW_KEYS_0,
    keys.IMPROVEMENT,
    keys.VERDICT,
    "metric",
    keys.PREDICTED_CHANGE,
    keys.ACTUAL_CHANGE,
    keys.FRESH_CHANGE,
    "replay",
    *EXTRA_KEYS,
}


def _preset(iterations: int = 2, **job: Any) -> Preset:
    p = get_preset("tiny")
    return dataclasses.replace(
        p,
        train=dataclasses.replace(p.train, epochs=2, steps=None),
        job=dataclasses.replace(p.job, **{"iterations": iterations, "loo": 0, **job}),
    )


class Recorder(pipeline.Observer):
    def __init__(self, workdir: Path | None = None) -> None:
        self.workdir = workdir
        self.events: list[tuple[Any, ...]] = []
        self.rows: list[dict[str, Any]] = []
        self.summary: dict[str, Any] | None = None

    @contextlib.contextmanager
    def job(self, preset: Preset, workdir: Path) -> Iterator[None]:
        self.events.append(("job", preset.name, workdir))
        yield
        self.events.append(("job_exit",))

    @contextlib.contextmanager
    def iteration(self, index: int, version: DatasetVersion | None, method: str) -> Iterator[None]:
        self.events.append(("iteration", index, None if version is None else version.path, method))
        yield
        self.events.append(("iteration_exit", index))

    def prepared(self, version: DatasetVersion) -> None:
        self.events.append(("prepared", version.path))

    def trained(self, run: Path, version: DatasetVersion, role: str) -> None:
        self.events.append(("trained", role, run, version.path))

    def scored(self, table: ScoreTable, path: Path, version: DatasetVersion, run: Path) -> None:
        assert path.is_file() and table.dataset_digest == version.digest
        self.events.append(("scored", path, version.path, run))

    def validated(self, report: dict[str, Any]) -> None:
        self.events.append(("validated",))

    def cleansed(self, version: DatasetVersion) -> None:
        self.events.append(("cleansed", version.path))

    def gated(self, report: dict[str, Any]) -> None:
        self.events.append(("gated",))

    def iteration_done(self, row: dict[str, Any]) -> None:
        self.events.append(("iteration_done", row[keys.ITERATION]))
        self.rows.append(row)

    def job_done(self, summary: dict[str, Any]) -> None:
        assert self.workdir is not None and (self.workdir / "summary.json").is_file()
        self.events.append(("job_done",))
        self.summary = summary


@pytest.fixture(scope="module")
def job_run(tmp_path_factory) -> tuple[Path, Recorder, dict[str, Any]]:
    workdir = tmp_path_factory.mktemp("job") / "work"
    recorder = Recorder(workdir)
    summary = pipeline.run_job(workdir, _preset(), observer=recorder, progress=False)
    return workdir, recorder, summary


def test_observer_callbacks_in_order(job_run):
    w, rec, _ = job_run
    data, runs, scores = w / "data", w / "runs", w / "scores"
    expected = [
        ("job", "tiny", w),
        ("iteration", 0, None, "all"),
        ("prepared", data / "v0"),
        ("trained", "main", runs / "r0", data / "v0"),
        ("iteration_done", 0),  # the raw data's headline
        ("iteration_exit", 0),
    ]
    for i in (1, 2):
        prev, cur = data / f"v{i - 1}", data / f"v{i}"
        expected += [
            ("iteration", i, prev, "all"),
            ("scored", scores / f"it{i}_all.csv", prev, runs / f"r{i - 1}"),
            ("cleansed", cur),
            ("trained", "replay", runs / f"replay{i}", cur),
            ("trained", "main", runs / f"r{i}", cur),
            ("iteration_done", i),
            ("iteration_exit", i),
        ]
    expected += [("job_done",), ("job_exit",)]
    assert rec.events == expected


def test_the_job_writes_where_its_layout_says(job_run):
    w, _, _ = job_run
    layout = JobLayout(w)
    expected = {layout.config, layout.summary}
    expected |= {p for i in range(3) for p in (layout.version(i), layout.run(i))}
    for i in (1, 2):
        scores = layout.scores(i, "all")
        expected |= {layout.replay(i), scores, meta_path(scores)}
    assert {*w.glob("*/*"), *(p for p in w.iterdir() if p.is_file())} == expected


def test_summary_json_is_the_summary_of_the_runs_plus_job_extras(job_run):
    w, rec, summary = job_run
    on_disk = json.loads((w / "summary.json").read_text())
    assert on_disk == json.loads(json.dumps(summary))
    assert rec.summary is summary

    runs = [w / "runs" / f"r{i}" for i in range(3)]
    replays = [w / "runs" / f"replay{i}" for i in (1, 2)]
    expected = json.loads(json.dumps(summarize(runs, replays)))
    assert set(on_disk) == {*expected, "job"}
    assert {k: v for k, v in on_disk.items() if k not in ("iterations", "job")} == {
        k: v for k, v in expected.items() if k != "iterations"
    }
    assert set(on_disk["iterations"]) == {"0", "1", "2"}
    assert on_disk["iterations"]["0"] == expected["iterations"]["0"]
    for i in ("1", "2"):
        row = on_disk["iterations"][i]
        assert {k: v for k, v in row.items() if k not in EXTRA_KEYS} == expected["iterations"][i]
        assert EXTRA_KEYS <= set(row)

    versions = [load_version(w / "data" / f"v{i}") for i in range(3)]
    for i in (1, 2):
        row = on_disk["iterations"][str(i)]
        assert row["method"] == "all" and row["validation"] is None
        assert row["dataset_digest"] == versions[i - 1].digest
        assert row["cleansed_digest"] == versions[i].digest
        assert row[keys.SCORING_SECONDS] >= 0
        assert row["paths"] == {
            "scores": str(w / "scores" / f"it{i}_all.csv"),
            "version": str(w / "data" / f"v{i}"),
            "replay": str(w / "runs" / f"replay{i}"),
            "fresh": [str(w / "runs" / f"r{i}")],  # one per retraining seed
        }
        assert RunDir(w / "runs" / f"replay{i}").replay_parent == w / "runs" / f"r{i - 1}"
    assert on_disk["job"] == {
        "preset": "tiny",
        "method": "all",
        "remove_frac": 0.05,
        "raw_digest": versions[0].digest,
        "final_version": str(w / "data" / "v2"),
        "final_digest": versions[2].digest,
        "stopped": None,
        # the first model scored, judged by the job's metric
        keys.FIT: RunDir(w / "runs" / "r0").fit("all").record(),
    }
    assert on_disk["job"][keys.FIT]["fit"] == "fitted"
    # Each cleanse removes at most 5% of the instances (10 of 200, then 10 of 190).
    removed = [on_disk["iterations"][str(i)][keys.N_REMOVED] for i in range(3)]
    assert removed[0] == 0 and all(1 <= r <= 10 for r in removed[1:])
    assert [v.n for v in versions] == [200, 200 - removed[1], 200 - sum(removed)]
    assert on_disk[keys.N_REMOVED_TOTAL] == sum(removed)
    assert on_disk[keys.N_INSTANCES] == versions[2].n


def test_iteration_rows_carry_the_keys_of_keys(job_run):
    _, rec, summary = job_run
    assert [r[keys.ITERATION] for r in rec.rows] == [0, 1, 2]
    row0 = summary["iterations"]["0"]
    assert ROW_KEYS_0 <= set(row0) <= KEY_NAMES
    assert not {"metric", *keys.CHANGES} & set(row0)
    # Iteration 0's row is told with the metric its headline is (no cleanse names it yet).
    assert rec.rows[0] == {**row0, keys.HEADLINE_METRIC: keys.ALL}
    for row in rec.rows[1:]:
        assert ROW_KEYS <= set(row) <= KEY_NAMES | STRUCTURAL
        assert row == summary["iterations"][str(row[keys.ITERATION])]
        assert row["metric"] == keys.ALL
        before = summary["iterations"][str(row[keys.ITERATION] - 1)]
        assert row[keys.FRESH_CHANGE] == pytest.approx(row[keys.ALL] - before[keys.ALL], abs=1e-15)
        assert set(row["replay"]) == {*RUN_RESULTS, keys.N_INSTANCES, keys.N_STEPS}
    assert keys.TRAIN_SECONDS not in json.dumps(summary)


def test_existing_summary_without_force(job_run):
    w, _, _ = job_run
    before = (w / "summary.json").read_bytes()
    rec = Recorder()
    with pytest.raises(OutputExistsError):
        pipeline.run_job(w, _preset(), observer=rec, progress=False)
    assert rec.events == []
    assert (w / "summary.json").read_bytes() == before


def test_unknown_method_writes_nothing(tmp_path):
    rec = Recorder()
    with pytest.raises(ConfigError, match="unknown method 'nope'; choose from"):
        pipeline.run_job(tmp_path / "w", _preset(method="nope"), observer=rec, progress=False)
    assert rec.events == [] and not (tmp_path / "w").exists()


@pytest.mark.parametrize("stop", [True, False])
def test_stop_when_worse(tmp_path, monkeypatch, stop):
    seen: list[dict[str, Any]] = []

    def not_improved(row: dict[str, Any]) -> bool:
        seen.append(row)
        return False

    monkeypatch.setattr(pipeline, "improved", not_improved)
    rec = Recorder(tmp_path)
    summary = pipeline.run_job(
        tmp_path, _preset(iterations=2, stop_when_worse=stop), observer=rec, progress=False
    )
    n = 1 if stop else 2
    assert list(summary["iterations"]) == [str(i) for i in range(n + 1)]
    assert [e[1] for e in rec.events if e[0] == "iteration_done"] == list(range(n + 1))
    assert rec.events[-2:] == [("job_done",), ("job_exit",)]
    assert len(seen) == (1 if stop else 0)
    if not stop:
        assert summary["job"]["stopped"] is None
    if stop:
        assert seen[0][keys.ITERATION] == 1
        assert summary["job"]["stopped"].startswith("iteration 1: all did not improve")
        assert summary["job"]["final_version"] == str(tmp_path / "data" / "v1")
        assert not (tmp_path / "runs" / "r2").exists()
    assert json.loads((tmp_path / "summary.json").read_text()) == json.loads(json.dumps(summary))


def test_stop_rule_on_a_real_row(tmp_path):
    # Whatever the sign of the observed change, the loop continues exactly when it improved.
    rec = Recorder(tmp_path)
    preset = _preset(iterations=2, stop_when_worse=True, method="random")
    summary = pipeline.run_job(tmp_path, preset, observer=rec, progress=False)
    first = rec.rows[1]
    assert first["metric"] == keys.ALL  # baselines measure the change of ALL
    improved = first[keys.FRESH_CHANGE] > 0  # ALL: higher is better
    assert len(summary["iterations"]) == (3 if improved else 2)


def test_validation_with_loo(tmp_path):
    rec = Recorder(tmp_path)
    summary = pipeline.run_job(tmp_path, _preset(iterations=1, loo=8), observer=rec, progress=False)
    names = [e[0] for e in rec.events]
    assert names[names.index("scored") : names.index("cleansed") + 1] == [
        "scored",
        "validated",
        "cleansed",
    ]
    report = json.loads((tmp_path / "reports" / "validate_it1.json").read_text())
    validation = summary["iterations"]["1"]["validation"]
    group = {k for k in report if k.startswith(("group_spearman_", "top_")) and "pct" in k}
    assert group, "the tiny preset validates the group score too"
    assert set(validation) == {
        *keys.VALIDATION, "n_instances", "top_k", "loo_seconds", "group_seconds", *group
    }  # fmt: skip
    assert validation == {k: report[k] for k in validation}
    assert validation["n_instances"] == 8 and validation["top_k"] == 2
    assert all(-1 <= validation[k] <= 1 for k in keys.VALIDATION)
    # Rank statistics of 8 instances (4 drawn at random) and of top-2 sets lie on lattices:
    # tau = (concordant - discordant) / pairs, without ties a multiple of 2/28 (2/6 on the 4
    # random ones), and the Jaccard index of two 2-sets is 0, 1/3 or 1.
    tau, tau_random = validation[keys.KENDALL_TAU], validation[keys.KENDALL_TAU_RANDOM]
    assert tau * 14 == pytest.approx(round(tau * 14)) and -1 <= tau <= 1
    assert tau_random * 3 == pytest.approx(round(tau_random * 3))
    assert min(abs(validation[keys.JACCARD_TOP_K] - j) for j in (0, 1 / 3, 1)) < 1e-12


@pytest.mark.parametrize("method", ["random", "instance_selection"])
def test_baselines_are_not_validated_and_predict_nothing(tmp_path, method):
    rec = Recorder(tmp_path)
    summary = pipeline.run_job(
        tmp_path, _preset(iterations=1, loo=8, method=method), observer=rec, progress=False
    )
    assert "validated" not in [e[0] for e in rec.events]
    assert not (tmp_path / "reports").exists()
    row = summary["iterations"]["1"]
    assert row["method"] == method and row["validation"] is None
    assert row["metric"] == keys.ALL and keys.PREDICTED_CHANGE not in row
    assert row[keys.N_REMOVED] == 10  # a baseline always removes the full fraction
    assert (tmp_path / "scores" / f"it1_{method}.csv").is_file()


def test_retraining_seeds_and_step_budget(tmp_path):
    """Each version is retrained over 2 seeds with the parent's step count; the change is that of
    the seed means, with a standard error paired by seed."""
    import statistics

    from ganinf_mlops.train.rundir import RunDir

    summary = pipeline.run_job(
        tmp_path, _preset(iterations=1, retrain_seeds=2, policy="top"), progress=False
    )
    it0, it1 = summary["iterations"]["0"], summary["iterations"]["1"]
    assert it0["n_seeds"] == it1["n_seeds"] == 2
    runs = tmp_path / "runs"
    base = [RunDir(runs / "r0"), RunDir(runs / "r0-seed1")]
    fresh = [RunDir(runs / "r1"), RunDir(runs / "r1-seed1")]
    assert [r.train_config.seed for r in fresh] == [0, 1]
    # 190 instances in batches of 20 would be 9 steps an epoch: the budget keeps r0's 20 steps.
    assert [r.n_steps for r in base + fresh] == [20, 20, 20, 20]
    metric = it1["metric"]
    mean = {k: statistics.fmean(r.results()[k] for r in fresh) for k in ("all", "fd")}
    assert it1["seed_mean"]["fd"] == pytest.approx(mean["fd"])
    assert it1["fresh_change"] == pytest.approx(it1["seed_mean"][metric] - it0["seed_mean"][metric])
    diffs = [a.results()[metric] - b.results()[metric] for a, b in zip(fresh, base, strict=True)]
    assert it1["fresh_change_se"] == pytest.approx(statistics.stdev(diffs) / 2**0.5)
    # The verdict's collapse check: fd (the other quality metric) against r0's seed spread.
    (fd,) = report.outcome(summary)["others"]
    spread = statistics.stdev(r.results()["fd"] for r in base)
    assert fd["metric"] == "fd" and fd["spread"] == pytest.approx(spread)
    assert fd["worse"] == (fd["after"] - fd["before"] > spread)
    better = fd["after"] < fd["before"]
    state = "got WORSE beyond" if fd["worse"] else "improved too" if better else "got worse within"
    assert f"fd {state}" in report.verdict(summary)


# ---- loop --resume: an interrupted job continues at its first unfinished step -----------------


def _comparable(summary: dict[str, Any], workdir: Path) -> str:
    """The summary without wall-clock times, with the working directory's name removed."""
    text = json.dumps(summary, sort_keys=True).replace(str(workdir), "W")
    return re.sub(r'"(scoring_seconds|seconds|loo_seconds)": [0-9.e+-]+', "", text)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict[str, Any]]:
    w = tmp_path_factory.mktemp("ref") / "work"
    return w, pipeline.run_job(w, _preset(), progress=False)


def test_resume_after_a_crash_in_iteration_2(reference, tmp_path, monkeypatch):
    ref_dir, ref = reference
    w = tmp_path / "work"
    real_cleanse = pipeline.cleanse

    def crash_in_iteration_2(version, *args, **kwargs):
        if version.manifest.parent_digest is not None:  # cleansing v1 into v2
            raise RuntimeError("simulated crash")
        return real_cleanse(version, *args, **kwargs)

    monkeypatch.setattr(pipeline, "cleanse", crash_in_iteration_2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        pipeline.run_job(w, _preset(), progress=False)
    assert not (w / "summary.json").exists() and (w / "runs" / "r1").is_dir()
    assert (w / "scores" / "it2_all.csv").is_file() and not (w / "data" / "v2").exists()
    kept = {p: os.stat(w / p).st_mtime_ns for p in ("data/v1", "runs/r1", "scores/it2_all.csv")}

    monkeypatch.setattr(pipeline, "cleanse", real_cleanse)
    with pytest.raises(GaninfError, match="--resume continues it"):
        pipeline.run_job(w, _preset(), progress=False)
    trained, scored = [], []
    real_train, real_score = pipeline.train, pipeline.score_run

    def record(v, c, m, out, **k):
        trained.append(Path(out))
        return real_train(v, c, m, out, **k)

    monkeypatch.setattr(pipeline, "train", record)  # the replays
    monkeypatch.setattr(trainer, "train", record)  # the fresh runs (trainer.run_trainings)
    monkeypatch.setattr(pipeline, "score_run", lambda *a, **k: scored.append(a[0])
                        or real_score(*a, **k))  # fmt: skip
    rec = Recorder(w)
    summary = pipeline.run_job(w, _preset(), observer=rec, progress=False, resume=True)

    assert trained == [w / "runs" / "replay2", w / "runs" / "r2"]  # only what was missing
    assert scored == []  # it2's scores were on disk
    assert {p: os.stat(w / p).st_mtime_ns for p in kept} == kept
    assert _comparable(summary, w) == _comparable(ref, ref_dir)
    # The resumed job still reports every step (to MLflow, in a tracked job).
    assert [e[1] for e in rec.events if e[0] == "iteration_done"] == [0, 1, 2]
    assert sum(e[0] == "trained" for e in rec.events) == 5  # r0, (replay, r) x 2


def test_resume_refusals(reference, tmp_path):
    ref_dir, _ = reference
    with pytest.raises(ConfigError, match="finished already"):
        pipeline.run_job(ref_dir, _preset(), progress=False, resume=True)
    with pytest.raises(ConfigError, match="give one"):
        pipeline.run_job(ref_dir, _preset(), progress=False, resume=True, force=True)
    with pytest.raises(ConfigError, match="holds no started job"):
        pipeline.run_job(tmp_path / "new", _preset(), progress=False, resume=True)

    w = tmp_path / "w"
    (w).mkdir()
    JobLayout(w).config.write_text(json.dumps({"job": {}}))
    with pytest.raises(ConfigError, match=r"other settings \(.*job.*\)"):
        pipeline.run_job(w, _preset(), progress=False, resume=True)
    other = _preset()
    other = dataclasses.replace(other, job=dataclasses.replace(other.job, remove_frac=0.2))
    pipeline._check_start(tmp_path / "w2", _preset(), force=False, resume=False)
    with pytest.raises(ConfigError, match=r"other settings \(job\)"):
        pipeline.run_job(tmp_path / "w2", other, progress=False, resume=True)


def test_an_ensemble_cleanse_records_its_members_agreement(tmp_path):
    """The loop scores with an ensemble of 3 and records how many members, each held out of the
    selection, agree; a gate above that agreement stops the loop before removing anything."""
    from ganinf_mlops.cleanse import agreement, removal_count
    from ganinf_mlops.cli.output import job_lines
    from ganinf_mlops.influence.scores import read_scores

    preset = _preset(iterations=1, method="fd", ensemble=3, allow_unfitted=True)  # 20 steps
    plans: list[tuple[Any, bool]] = []
    r0 = tmp_path / "a" / "runs" / "r0"
    summary = pipeline.run_job(
        tmp_path / "a", preset, progress=False, on_plan=lambda p: plans.append((p, r0.exists()))
    )
    # The plan came before any training, then the rest timed by r0's; it counted every run
    # (r0; r0's 2 seed siblings, the replay and r1), and each records the job's settings.
    (first, r0_then), (rest, _) = plans
    assert not r0_then and first.trainings == 5 and first.passes == 3 and first.seconds is None
    assert rest.trainings == 4 and rest.seconds == pytest.approx(4 * RunDir(r0).train_seconds)
    runs = sorted(p.parent for p in (tmp_path / "a").rglob("meta.json"))
    assert summary["job"]["stopped"] is None and len(runs) == first.trainings, runs
    assert {RunDir(r).recorded_job for r in runs} == {RunDir(r0).recorded_job}
    assert RunDir(r0).recorded_job.ensemble == 3
    row = summary["iterations"]["1"]
    table = read_scores(tmp_path / "a" / "scores" / "it1_fd.csv")
    raw = load_version(tmp_path / "a" / "data" / "v0")
    k = removal_count(raw.n, preset.job.remove_frac, None)
    agree = agreement(table, k, preset.job.policy)
    assert agree is not None and agree.members == 3
    assert (row[keys.N_AGREEING], row[keys.N_MEMBERS]) == (agree.agreeing, 3)
    assert f"{agree.agreeing} of 3 ensemble members agree" in "\n".join(job_lines(summary, "s"))
    # The same job gated at one member more than agreed (or at all 3): stops, or cleanses alike.
    gate = min(agree.agreeing + 1, 3) / 3
    gated = dataclasses.replace(preset, job=dataclasses.replace(preset.job, min_agreement=gate))
    summary = pipeline.run_job(tmp_path / "b", gated, progress=False)
    if agree.agreeing < 3:  # nothing removed, and the loop says why
        assert f"only {agree} ensemble members" in summary["job"]["stopped"]
        assert not (tmp_path / "b" / "data" / "v1").exists()
    else:
        v1 = load_version(tmp_path / "b" / "data" / "v1")
        assert v1.manifest.params["min_agreement"] == 1.0
        assert (
            v1.manifest.removed_ids
            == load_version(tmp_path / "a" / "data" / "v1").manifest.removed_ids
        )


def test_the_job_scores_averaged_over_minibatch_orders_when_asked(tmp_path):
    from ganinf_mlops.influence.methods import score
    from ganinf_mlops.influence.options import ScoringOptions
    from ganinf_mlops.influence.scores import read_scores

    preset = _preset(iterations=1, last_epochs=1, average_order=True, policy="top")
    pipeline.run_job(tmp_path, preset, progress=False)
    table = read_scores(tmp_path / "scores" / "it1_all.csv")
    assert table.extra["average_order"] is True and table.extra["last_epochs"] == 1
    raw = load_version(tmp_path / "data" / "v0")
    expected = score(
        table.run, raw, ScoringOptions("all", last_epochs=1, average_order=True, progress=False)
    )
    drawn = score(table.run, raw, ScoringOptions("all", last_epochs=1, progress=False))
    assert table.aligned_to(raw.ids)[1] == pytest.approx(expected.predicted_change, abs=0)
    assert not (table.aligned_to(raw.ids)[1] == pytest.approx(drawn.predicted_change))


def test_an_unfitted_model_is_not_cleansed_unless_allowed(tmp_path):
    """Tiny's 20 steps leave fd far from the data's floor: the job scores nothing and says why;
    with allow_unfitted it cleanses as before."""
    rec = Recorder(tmp_path / "refused")
    summary = pipeline.run_job(
        tmp_path / "refused", _preset(iterations=1, method="fd"), observer=rec, progress=False
    )
    fit = summary["job"][keys.FIT]
    assert fit["fit"] == "unfitted" and fit["metric"] == keys.FD and fit["ratio"] > 10
    assert summary["job"]["stopped"].startswith(
        "iteration 1: nothing cleansed: the model did not fit: fd"
    )
    assert list(summary["iterations"]) == ["0"]
    assert not (tmp_path / "refused" / "scores").exists()  # refused before scoring
    assert not (tmp_path / "refused" / "data" / "v1").exists()
    allowed = pipeline.run_job(
        tmp_path / "allowed",
        _preset(iterations=1, method="fd", allow_unfitted=True),
        progress=False,
    )
    assert allowed["job"][keys.FIT] == fit  # the same model, the same check
    assert "did not fit" not in (allowed["job"]["stopped"] or "")
    assert (tmp_path / "allowed" / "data" / "v1").exists()
