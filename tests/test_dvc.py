"""The DVC pipeline (dvc.yaml at the root) with real git and dvc, on the tiny configuration.

One temp project (root dvc.yaml + pipelines/tiny/params.yaml) is reproduced once for the module;
the tests then check its outputs and metrics, a param change that reruns only the stages reading
it, and a push/pull round trip through a local remote.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from ganinf_mlops import report
from ganinf_mlops.data.lineage import lineage
from ganinf_mlops.data.version import load_version

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("raw", "v1", "v2")  # fresh run of each iteration, runs/<version>
METRIC_KEYS = ("all", "disc_loss", "gen_mean_error", "gen_cov_error")

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # ganinf and dvc of this interpreter
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "DVC_NO_ANALYTICS": "1",
        "GANINF_TRACKING": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        # Tiny models: one thread is 1.5-6x faster than two on a shared 2-core machine, where
        # OpenMP threads spin-wait against other processes.
        "OMP_NUM_THREADS": "1",
    }


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a command in `cwd`; return stdout + stderr, failing the test with them on error."""
    proc = subprocess.run(
        args, cwd=cwd, env={**_env(), **(env or {})}, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} exited {proc.returncode}:\n{out}"
    return out


def dvc(cwd: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return run(cwd, str(Path(sys.executable).parent / "dvc"), *args, env=env)


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def sha256_tree(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def read_json(path: Path):
    return json.loads(path.read_text())


def extended(pipeline: dict, n: int) -> dict:
    """The root pipeline with `n` cleanse iterations, edited as pipelines/README.md says: one
    `vars` entry per version, its runs in `evaluate`'s command and deps, its histogram columns."""
    names = ["raw", *(f"v{k}" for k in range(1, n + 1))]
    out = copy.deepcopy(pipeline)
    out["vars"][0]["iterations"] = {
        v: {"parent": names[k], "previous": {"previous-run": f"runs/{names[k - 1]}"} if k else {}}
        for k, v in enumerate(names[1:])
    }
    evaluate = out["stages"]["evaluate"]
    runs = " ".join(f"--run runs/{v}" for v in names)
    replays = " ".join(f"--replay runs/{v}-replay" for v in names[1:])
    evaluate["cmd"] = re.sub(
        r"(--run \S+ )+(--replay \S+ )+", f"{runs} {replays} ", evaluate["cmd"]
    )
    evaluate["deps"] = [
        *(f"runs/{v}" for v in names),
        *(f"runs/{v}-replay" for v in names[1:]),
        *(f"data/{v}" for v in names),
        *(f"scores/{p}.csv{ext}" for p in names[:-1] for ext in ("", ".meta.json")),
    ]
    for plot in out["plots"]:
        (props,) = plot.values()
        if "plots/scores_hist.csv" in props["y"]:
            cols = [f"{c}_{k}" for k in range(1, n + 1) for c in ("count", "removed")]
            props["y"]["plots/scores_hist.csv"] = cols
    return out


def test_dvc_yaml_agrees_with_the_configs() -> None:
    """The root params.yaml is the default preset as `ganinf params` writes it, and dvc.yaml runs
    its iterations; each file under pipelines/ is its preset, which the README's recipe for more
    iterations (`extended`) turns the root pipeline into."""
    from ganinf_mlops.config import get_preset
    from ganinf_mlops.params import load_params, params_text

    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    iterations = pipeline["vars"][0]["iterations"]
    assert all(isinstance(k, str) for k in iterations)  # DVC drops foreach stages of int keys
    assert (ROOT / "params.yaml").read_text() == params_text(get_preset("default"))
    assert load_params(ROOT / "params.yaml").job.iterations == len(iterations) == 1
    assert pipeline == extended(pipeline, 1)  # the recipe, applied for one, changes nothing
    for preset in ("tiny", "paper-2d", "digits-labelnoise"):
        text = (ROOT / "pipelines" / preset / "params.yaml").read_text()
        assert text == params_text(get_preset(preset)), f"regenerate pipelines/{preset}/params.yaml"
    # A chain raw -> v1 -> ..., evaluate seeing every run, replay, version and scores.
    for n in (1, 3):
        big = extended(pipeline, n)
        parents = [item["parent"] for item in big["vars"][0]["iterations"].values()]
        versions = list(big["vars"][0]["iterations"])
        assert parents == ["raw", *versions[:-1]]
        evaluate = big["stages"]["evaluate"]
        assert re.findall(r"--run runs/(\S+)", evaluate["cmd"]) == ["raw", *versions]
        assert re.findall(r"--replay runs/(\S+)-replay", evaluate["cmd"]) == versions


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A git + DVC project with the tiny pipeline (its two iterations) reproduced and committed."""
    d = tmp_path_factory.mktemp("dvc-project")
    params = yaml.safe_load((ROOT / "pipelines" / "tiny" / "params.yaml").read_text())
    pipeline = extended(
        yaml.safe_load((ROOT / "dvc.yaml").read_text()), params["job"]["iterations"]
    )
    (d / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    shutil.copy(ROOT / "pipelines" / "tiny" / "params.yaml", d / "params.yaml")
    run(d, "git", "init", "-q")
    run(d, "git", "config", "user.name", "ganinf test")
    run(d, "git", "config", "user.email", "test@example.invalid")
    dvc(d, "init", "-q")
    out = dvc(d, "repro")
    assert ran_stages(out) == {
        "prepare",
        "train",
        *(f"{s}@{v}" for s in ("influence", "cleanse", "replay", "retrain") for v in RUNS[1:]),
        "evaluate",
    }, out
    run(d, "git", "add", "-A")
    run(d, "git", "commit", "-q", "-m", "tiny pipeline")
    return d


@pytest.mark.integration
def test_repro_builds_the_chain_and_metrics_match_the_runs(project: Path) -> None:
    d = project
    # Lineage raw -> v1 -> v2, each version loading and verifying its digest.
    chain = lineage(load_version(d / "data" / "v2"))
    assert [v.path.resolve() for v in chain] == [(d / "data" / v).resolve() for v in RUNS]
    assert [v.n for v in chain] == [200, 190, 180]  # tiny: 200 instances, remove_frac 0.05

    summary = read_json(d / "metrics" / "summary.json")
    for k, name in enumerate(RUNS):
        run_metrics = read_json(d / "runs" / name / "metrics.json")
        row = summary["iterations"][str(k)]
        for key in METRIC_KEYS:
            assert row[key] == run_metrics[key], (name, key)
        assert row["n_instances"] == run_metrics["n_instances"] == chain[k].n
        if k:
            replay = read_json(d / "runs" / f"{name}-replay" / "metrics.json")
            manifest = read_json(d / "data" / name / "manifest.json")
            assert row["n_removed"] == len(manifest["removed_ids"]) == 10
            assert row["predicted_change"] == manifest["predicted_change"]
            assert row["actual_change"] == replay["actual_change"]
            assert row["replay"]["all"] == replay["all"]
            assert row["fresh_change"] == pytest.approx(
                run_metrics["all"] - summary["iterations"][str(k - 1)]["all"]
            )
            # The replay changes ALL about as predicted (the estimate is first order).
            assert row["predicted_change"] == pytest.approx(row["actual_change"], rel=0.5)
    final = read_json(d / "runs" / "v2" / "metrics.json")
    assert {k: summary[k] for k in METRIC_KEYS} == {k: final[k] for k in METRIC_KEYS}
    assert summary["n_removed_total"] == 20

    # DVC reads the same metrics; the plot data has one row per iteration / bin.
    shown = json.loads(dvc(d, "metrics", "show", "--json"))
    assert shown[""]["data"]["metrics/summary.json"]["data"] == summary
    rows = (d / "plots" / "iterations.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,headline,all,") and len(rows) == 1 + len(RUNS)
    assert summary["headline_metric"] == "all" and summary["verdict"] in report.VERDICTS
    assert len((d / "plots" / "changes.csv").read_text().splitlines()) == len(RUNS)
    hist = (d / "plots" / "scores_hist.csv").read_text().splitlines()
    cols = hist[0].split(",")
    counts = [[int(r.split(",")[cols.index(c)]) for r in hist[1:]] for c in ("count_1", "count_2")]
    assert [sum(c) for c in counts] == [200, 190]

    # The stage graph chains the versions; outs are git-ignored, metrics and plots are not.
    edges = dag_edges(d)
    assert {("prepare", "cleanse@v1"), ("cleanse@v1", "cleanse@v2")} <= edges
    assert ("retrain@v1", "influence@v2") in edges and ("train", "influence@v1") in edges
    ignored = run(d, "git", "check-ignore", "data/raw", "data/v2", "runs/v1", "scores/raw.csv")
    assert len(ignored.split()) == 4
    tracked = run(d, "git", "ls-files", "metrics", "plots", "dvc.lock").split()
    assert sorted(tracked) == [
        "dvc.lock",
        "metrics/summary.json",
        "plots/changes.csv",
        "plots/iterations.csv",
        "plots/scores_hist.csv",
    ]
    assert "Data and pipelines are up to date" in dvc(d, "repro")


def dag_edges(d: Path) -> set[tuple[str, str]]:
    mermaid = dvc(d, "dag", "--md")
    names = dict(re.findall(r'(node\d+)\["([^"]+)"\]', mermaid))
    return {(names[a], names[b]) for a, b in re.findall(r"(node\d+)-->(node\d+)", mermaid)}


@pytest.mark.integration
def test_param_change_reruns_only_the_stages_that_read_it(project: Path) -> None:
    d = project
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["job"]["remove_frac"] = 0.1
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    untouched = [d / "data" / "raw" / "data.npz", d / "runs" / "raw" / "metrics.json"]
    before = {p: p.stat().st_mtime_ns for p in untouched}

    status = json.loads(dvc(d, "status", "--json"))
    assert set(status) == {"cleanse@v1", "cleanse@v2"}  # the stages that list job.remove_frac
    out = dvc(d, "repro")
    assert ran_stages(out) == {
        *(f"{s}@{v}" for s in ("cleanse", "replay", "retrain") for v in RUNS[1:]),
        "influence@v2",
        "evaluate",
    }, out
    assert {p: p.stat().st_mtime_ns for p in untouched} == before

    diff = json.loads(dvc(d, "metrics", "diff", "--json"))["metrics/summary.json"]
    assert diff["iterations.1.n_removed"] == {"old": 10, "new": 20, "diff": 10}
    # Iteration 2 removes at most 10% of 180, only those predicted to help (job.policy positive).
    assert diff["n_instances"]["old"] == 180 and 200 - 20 - 18 <= diff["n_instances"]["new"] < 180
    assert "iterations.0.all" not in diff  # the base run did not change
    run(d, "git", "add", "-A")
    run(d, "git", "commit", "-q", "-m", "remove_frac 0.1")


@pytest.mark.integration
def test_push_then_pull_restores_a_cleansed_version_bit_identically(
    project: Path, tmp_path: Path
) -> None:
    d = project
    dvc(d, "remote", "add", "-d", "local", str(tmp_path / "remote"))
    dvc(d, "push")
    before = {v: sha256_tree(d / "data" / v) for v in ("v1", "v2")}
    shutil.rmtree(d / "data" / "v1")
    shutil.rmtree(d / "data" / "v2")
    shutil.rmtree(d / ".dvc" / "cache")
    dvc(d, "pull")
    assert {v: sha256_tree(d / "data" / v) for v in ("v1", "v2")} == before
    assert len(lineage(load_version(d / "data" / "v2"))) == 3  # digests and lineage verify
    assert "up to date" in dvc(d, "status")


@pytest.mark.integration
def test_an_ensemble_keeps_its_members_as_an_output_of_the_influence_stage(project: Path) -> None:
    """job.ensemble = 2: the influence stages rerun, train the second member into
    runs/<parent>-members (a cached output), and average over both; going back restores the
    empty members directory from the cache without running anything."""
    d = project
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["job"]["ensemble"] = 2
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(dvc(d, "status", "--json"))
    assert set(status) == {"influence@v1", "influence@v2"}  # the stages that list job.ensemble
    dvc(d, "repro")
    for parent in ("raw", "v1"):
        meta = read_json(d / "scores" / f"{parent}.csv.meta.json")
        assert meta["extra"]["ensemble"] == [f"runs/{parent}", f"runs/{parent}-members/seed1"]
        member = read_json(d / "runs" / f"{parent}-members" / "seed1" / "meta.json")
        assert member["train"]["seed"] == params["train"]["seed"] + 1
    assert run(d, "git", "check-ignore", "runs/raw-members").strip() == "runs/raw-members"
    _ci_recipe_gates_on_the_stage_scores(d)

    run(d, "git", "checkout", "--", ".")  # params, dvc.lock, metrics and plots
    dvc(d, "checkout")
    assert [p.name for p in (d / "runs" / "raw-members").iterdir()] == []
    assert "Data and pipelines are up to date" in dvc(d, "status")


def ci_recipe_steps() -> list[str]:
    """The `run:` steps of the GitHub Actions recipe in docs/how-to/gate.md."""
    text = (ROOT / "docs" / "how-to" / "gate.md").read_text()
    block = re.search(r"<!-- ci-recipe -->\n```yaml\n(.*?)```", text, re.S)
    assert block, "docs/how-to/gate.md lost its ci-recipe block"
    steps = yaml.safe_load(block.group(1))["jobs"]["gate"]["steps"]
    return [s["run"] for s in steps if "run" in s]


def _ci_recipe_gates_on_the_stage_scores(d: Path) -> None:
    """The recipe's `dvc repro` and `ganinf gate` steps, as written, on an ensemble's project:
    nothing is rerun, and the gate judges the influence stage's own scores (exit 0 or 1)."""
    steps = [s for s in ci_recipe_steps() if s.startswith(("dvc repro", "ganinf gate"))]
    assert [s.split()[:2] for s in steps] == [["dvc", "repro"], ["ganinf", "gate"]]
    assert "Data and pipelines are up to date" in run(d, "bash", "-c", steps[0])
    proc = subprocess.run(
        ["bash", "-c", steps[1]], cwd=d, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    report = read_json(d / "gate.json")
    assert report["passed"] == (proc.returncode == 0)
    assert report["set"]["n_members"] == 2 and report["max_set"] == 10  # 5% of 200
    assert not list((d / "runs").glob("raw-seed*"))  # nothing scored (or trained) again
    (d / "gate.json").unlink()


def exp_show_short_form() -> list[str]:
    """The arguments of the short `dvc exp show` in docs/how-to/dvc.md."""
    text = (ROOT / "docs" / "how-to" / "dvc.md").read_text()
    command = re.search(r"dvc (exp show --no-pager --drop .*?)\n(?!\s)", text, re.S)
    assert command, "docs/how-to/dvc.md lost its short `dvc exp show`"
    return shlex.split(command.group(1).replace("\\\n", " "))


@pytest.mark.integration
def test_a_cleanse_stage_where_the_job_would_stop_passes_its_data_through(project: Path) -> None:
    """Where `ganinf loop` stops, the cleanse stage writes its input unchanged, says why and exits
    0: the stages after it run on, later cleanses stay stopped, and evaluate reports the stop.
    First job.stop_when_worse (cleanse@v2 judges iteration 1 as the loop does), then a policy
    that keeps no instance (cleanse@v1 abstains)."""
    from ganinf_mlops import keys
    from ganinf_mlops.data.manifest import content_digest
    from ganinf_mlops.stopping import improved

    d = project
    before = read_json(d / "metrics" / "summary.json")
    assert "stopped" not in before
    params = yaml.safe_load((d / "params.yaml").read_text())
    params["job"]["stop_when_worse"] = True
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert set(json.loads(dvc(d, "status", "--json"))) == {"cleanse@v1", "cleanse@v2"}
    out = dvc(d, "repro")
    summary = read_json(d / "metrics" / "summary.json")
    if improved(before["iterations"]["1"]):  # iteration 1 improved: cleanse@v2 goes ahead
        assert "stopped" not in summary and summary["iterations"]["2"]["n_removed"] > 0
    else:
        why = "iteration 1: all did not improve under fresh retraining"
        assert f"stopped: {why}" in out and summary["stopped"] == why
        assert (
            summary["iterations"]["2"]["n_removed"]
            == 0
            == summary["iterations"]["2"]["fresh_change"]
        )
        assert summary["iterations"]["2"]["stopped"] == why
    # Nothing before iteration 1 to judge: it cleanses as before.
    assert summary["iterations"]["1"]["n_removed"] == before["iterations"]["1"]["n_removed"]

    params["job"] |= {"stop_when_worse": False, "policy": "threshold", "threshold": 1e9}
    (d / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = dvc(d, "repro")
    summary = read_json(d / "metrics" / "summary.json")
    why = (
        "iteration 1: no instance of data/raw is predicted to improve all (policy threshold): "
        "nothing to cleanse"
    )
    assert f"stopped: {why}" in out and summary["stopped"] == why
    its = summary["iterations"]
    assert [its[k].get("stopped") for k in its] == [None, why, why]
    assert [its[k]["n_instances"] for k in its] == [200, 200, 200]
    assert summary["n_removed_total"] == 0
    # The same data retrained with the same seed and budget: the same run, no change.
    assert {k: its["2"][k] for k in METRIC_KEYS} == {k: its["0"][k] for k in METRIC_KEYS}
    assert its["1"][keys.FRESH_CHANGE] == its["1"][keys.ACTUAL_CHANGE] == 0.0
    assert its["1"][keys.PREDICTED_CHANGE] == 0.0
    # Three versions with the same arrays and three digests, chained.
    chain = lineage(load_version(d / "data" / "v2"))
    assert [v.path.name for v in chain] == list(RUNS) and len({v.digest for v in chain}) == 3
    assert {content_digest(v.x, v.ids, v.x_eval) for v in chain} == {chain[0].digest}
    # `dvc exp show`'s short form (docs/how-to/dvc.md) lists the stop beside the settings.
    run(d, "git", "add", "-A")
    run(d, "git", "commit", "-q", "-m", "stopped")
    args = exp_show_short_form()
    header, row = dvc(d, *args, "--csv").splitlines()[:2]
    columns = header.split(",")
    keep = args[args.index("--keep") + 1]
    assert all(re.fullmatch(keep, c) for c in columns), columns  # nothing else, iterations.* gone
    assert {"Experiment", "stopped", "n_removed_total", "job.method", "train.seed"} <= set(columns)
    assert "job.policy" not in columns and len(columns) < 20
    assert "no instance of data/raw" in row

    run(d, "git", "reset", "-q", "--hard", "HEAD~1")  # the committed pipeline and its outputs
    dvc(d, "checkout")
    assert "Data and pipelines are up to date" in dvc(d, "status")


def test_image_pipeline_is_the_root_one_plus_the_classifier() -> None:
    """pipelines/images/dvc.yaml: the root stages extended to its presets' iterations, plus a
    classifier stage that every stage training or scoring depends on; its params files are its
    presets; the root does not collect it."""
    from ganinf_mlops.config import get_preset
    from ganinf_mlops.params import load_params, params_text

    images = yaml.safe_load((ROOT / "pipelines" / "images" / "dvc.yaml").read_text())
    n = len(images["vars"][0]["iterations"])
    root = extended(yaml.safe_load((ROOT / "dvc.yaml").read_text()), n)
    assert images["vars"] == root["vars"]
    assert set(images["stages"]) == {*root["stages"], "classifier"}
    for name, stage in images["stages"].items():
        if name == "classifier":
            assert stage["outs"] == ["classifier"]
            continue
        body, expected = (
            stage.get("do", stage),
            root["stages"][name].get("do", root["stages"][name]),
        )
        uses_runs = name in ("train", "influence", "replay", "retrain")
        assert ("classifier" in body.get("deps", [])) == uses_runs, name
        deps = [d for d in body.get("deps", []) if d != "classifier"]
        assert {**body, "deps": deps} == {**expected, "deps": expected.get("deps", [])}, name
    for preset, file in (("digits", "params.yaml"), ("mnist-sample", "mnist-sample.yaml")):
        text = (ROOT / "pipelines" / "images" / file).read_text()
        assert text == params_text(get_preset(preset)), f"regenerate pipelines/images/{file}"
        params = load_params(ROOT / "pipelines" / "images" / file)
        assert params.metric.classifier == "classifier"  # the classifier stage's output
        assert params.job.iterations == n
    assert "classifier" not in dvc(ROOT, "stage", "list")


@pytest.mark.integration
def test_image_pipeline_repro(tmp_path: Path) -> None:
    """The image pipeline on digits-tiny: classifier, runs with FID/IS, two cleanses."""
    shutil.copy(ROOT / "pipelines" / "images" / "dvc.yaml", tmp_path / "dvc.yaml")
    text = run(
        tmp_path, str(Path(sys.executable).parent / "ganinf"), "params", "--preset", "digits-tiny"
    )
    (tmp_path / "params.yaml").write_text(text.replace("iterations: 1", "iterations: 2"))
    run(tmp_path, "git", "init", "-q")
    dvc(tmp_path, "init", "-q")
    out = dvc(tmp_path, "repro")
    assert {"classifier", "train", "retrain@v2", "evaluate"} <= ran_stages(out), out
    summary = read_json(tmp_path / "metrics" / "summary.json")
    its = summary["iterations"]
    assert [its[k]["n_instances"] for k in ("0", "1", "2")] == [300, 285, 271]
    assert its["2"]["metric"] == "fid" and "is" in its["2"]
    classifier = read_json(tmp_path / "classifier" / "classifier.json")
    assert classifier["data_digest"] == load_version(tmp_path / "data" / "raw").digest


@pytest.mark.integration
def test_classifier_pipeline_repro(tmp_path: Path) -> None:
    """The root pipeline on pipelines/digits-labelnoise (a classifier, SGD-influence on the
    validation loss; one iteration, as the root's), made smaller: a cleanse that removes
    flipped labels."""
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    text = (ROOT / "pipelines" / "digits-labelnoise" / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(text.replace("epochs: 20", "epochs: 4"))
    run(tmp_path, "git", "init", "-q")
    dvc(tmp_path, "init", "-q")
    out = dvc(tmp_path, "repro")
    assert {"train", "retrain@v1", "evaluate"} <= ran_stages(out), out
    its = read_json(tmp_path / "metrics" / "summary.json")["iterations"]
    assert [its[k]["n_instances"] for k in its] == [1200, 1080]
    assert its["1"]["metric"] == "val_loss" and "test_accuracy" in its["1"]
    assert its["1"]["n_anomalies_removed"] > 60  # of the 120 removed, most are flipped labels


@pytest.mark.slow  # 130 s of queued experiments: keeps the default suite under 15 minutes
@pytest.mark.integration
def test_seed_sweep_on_the_experiment_queue(project: Path) -> None:
    """A sweep as DVC runs it: one queued experiment per training seed, run two at a time, each
    in its own workspace, compared with `dvc exp show` and in MLflow, where each experiment is
    one parent run over its stages' runs (in the default store at the repository's root)."""
    d = project
    tracked = {"GANINF_TRACKING": "1"}
    for seed in (11, 12):
        dvc(d, "exp", "run", "--queue", "-S", f"train.seed={seed}", "--name", f"seed{seed}",
            env=tracked)  # fmt: skip
    dvc(d, "queue", "start", "--jobs", "2", env=tracked)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = dvc(d, "queue", "status")
        if status.count("Success") >= 2 or "Failed" in status:
            break
        time.sleep(2)
    assert status.count("Success") >= 2, status
    shown = json.loads(dvc(d, "exp", "show", "--json"))
    exps = {
        e["name"]: e
        for commit in shown
        for e in (commit.get("experiments") or [])
        if e.get("name") in ("seed11", "seed12")
    }
    assert set(exps) == {"seed11", "seed12"}, shown
    summaries = []
    for name in ("seed11", "seed12"):
        (rev,) = exps[name]["revs"]
        data = rev["data"]
        assert data["params"]["params.yaml"]["data"]["train"]["seed"] == int(name[4:])
        summaries.append(data["metrics"]["metrics/summary.json"]["data"]["iterations"]["2"])
    # Other training seeds: other runs, so other numbers; the workspace itself is untouched.
    assert summaries[0]["all"] != summaries[1]["all"]
    assert "Data and pipelines are up to date" in dvc(d, "status")

    client = MlflowClient(f"sqlite:///{d / 'mlflow.db'}")
    eid = client.get_experiment_by_name("ganinf").experiment_id
    parents = {
        r.data.tags["ganinf.dvc_experiment"]: r
        for r in client.search_runs([eid], "tags.`ganinf.stage` = 'dvc-experiment'")
    }
    assert set(parents) == {"seed11", "seed12"}
    for name, parent in parents.items():
        assert parent.info.status == "FINISHED" and parent.data.params["train.seed"] == name[4:]
        pid = parent.info.run_id
        stages = client.search_runs([eid], f"tags.`mlflow.parentRunId` = '{pid}'")
        # Every stage that ran and logs a run: prepare reads no train.seed (DVC restores it
        # from its run cache), evaluate writes DVC metrics only.
        assert sorted(s.data.tags["ganinf.dvc_stage"] for s in stages) == sorted(
            ["train", *(f"{s}@{v}" for s in ("influence", "cleanse", "replay", "retrain")
                        for v in RUNS[1:])]
        )  # fmt: skip
        assert {s.info.status for s in stages} == {"FINISHED"}
        assert parent.data.metrics["retrain.v2/avg_log_likelihood"] == pytest.approx(
            exps[name]["revs"][0]["data"]["metrics"]["metrics/summary.json"]["data"]
            ["iterations"]["2"]["all"]
        )  # fmt: skip
