"""What the commands print: one place formats results, the command modules only call and echo."""

from __future__ import annotations

from typing import Any

from ganinf_mlops import keys
from ganinf_mlops.data.version import DatasetVersion
from ganinf_mlops.influence.scores import ScoreTable
from ganinf_mlops.metrics.fit import FitCheck
from ganinf_mlops.metrics.specs import direction_phrase
from ganinf_mlops.report import headline_text, verdict

SHOWN_RESULTS = (
    keys.ALL, keys.FD, keys.FID, keys.IS, keys.DISC_LOSS, keys.GEN_MEAN_ERROR, keys.GEN_COV_ERROR,
)  # fmt: skip


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.5g}"


def version_line(version: DatasetVersion) -> str:
    return f"{version.path}  {version.n} instances  digest {version.digest}"


def split_line(n_train: int, n_eval: int, params: dict[str, Any]) -> str | None:
    """Where the evaluation set of a user's file came from (None for generated data)."""
    source = params.get("eval_source")
    if source == "split":
        return (
            f"{n_train} train / {n_eval} held out for evaluation "
            f"({params['eval_frac'] * 100:g}%, seed {params['seed']})"
        )
    if source == "eval_file":
        return f"{n_train} train / {n_eval} evaluation rows from {params['eval_path']}"
    if source == "file":
        return f"{n_train} train / {n_eval} evaluation rows from {params['path']} (x_eval)"
    return None


def cleansed_line(version: DatasetVersion) -> str:
    m = version.manifest
    return (
        f"{version.path}  removed {len(m.removed_ids)} of {m.n_instances + len(m.removed_ids)}"
        f" by {m.method}; digest {version.digest} (parent {m.parent_digest})"
    )


def run_lines(run: str, metrics: dict[str, Any], metric: str | None = None) -> list[str]:
    """A run's results; for a replay, the change of `metric` (the cleanse's) it observed."""
    shown = ", ".join(f"{k}={metrics[k]:.6g}" for k in SHOWN_RESULTS if k in metrics)
    lines = [f"{run}  {shown}"]
    if keys.ACTUAL_CHANGE in metrics:
        metric = metric or keys.primary_metric(metrics)
        lines.append(
            f"change of {metric}: actual {metrics[keys.ACTUAL_CHANGE]:+.6g}, predicted "
            + _signed(metrics.get(keys.PREDICTED_CHANGE))
        )
    return lines


def scores_line(out: str, table: ScoreTable, top: int = 5) -> str:
    ids = ", ".join(str(i) for i in table.top_ids(top))
    return f"{out}  {table.n} instances scored by {table.method}; most harmful ids: {ids}"


def validation_line(r: dict[str, Any]) -> str:
    return (
        f"{r['metric']}: Kendall tau {r[keys.KENDALL_TAU]:.3f} over {r['n_instances']} "
        f"(random only {r[keys.KENDALL_TAU_RANDOM]:.3f}), Pearson r {r[keys.PEARSON_R]:.4f}, "
        f"Jaccard top-{r['top_k']} {r[keys.JACCARD_TOP_K]:.2f}"
    )


def group_line(r: dict[str, Any]) -> str | None:
    """Group fidelity in one line (None when the report has none)."""
    rho = {k[len("group_spearman_") :]: v for k, v in r.items() if k.startswith("group_spearman_")}
    ratio = {
        k[len("top_") : -len("_ratio")]: v
        for k, v in r.items()
        if k.startswith("top_") and k.endswith("_ratio")
    }
    if not rho:
        return None
    seconds = r.get("group_seconds", r.get("groups", {}).get("group_seconds"))
    return (
        "group score (Spearman, random sets): "
        + ", ".join(f"{k} {v:.3f}" for k, v in rho.items())
        + "; top-k actual/predicted: "
        + ", ".join(f"{k} {v:.2f}" for k, v in ratio.items())
        + (f" ({seconds:.0f} s of batched replays)" if seconds is not None else "")
    )


def validation_lines(r: dict[str, Any]) -> list[str]:
    group = group_line(r)
    return [validation_line(r)] + ([group] if group else [])


def job_lines(summary: dict[str, Any], out: str) -> list[str]:
    """The loop's report: the verdict, the raw run, then each iteration's validation and
    changes."""
    job, its = summary["job"], summary["iterations"]
    first = its["0"]
    headline = summary.get(keys.HEADLINE_METRIC) or keys.primary_metric(first)
    value = headline_text(first) if keys.HEADLINE in first else f"{first[headline]:.6g}"
    lines = [
        verdict(summary),
        f"config {job['preset']}: {first[keys.N_INSTANCES]} instances, method {job['method']}; "
        f"headline {headline} ({direction_phrase(headline)}) = {value}",
    ]
    fit = FitCheck.from_record(job.get(keys.FIT))
    fit_line = None if fit is None else fit.line(first.get(keys.N_STEPS))
    if fit_line is not None and fit_line not in (job.get("stopped") or ""):  # said once
        lines.append(fit_line)
    for k in sorted(its, key=int)[1:]:
        row = its[k]
        if row.get("validation") is not None:
            v = {**row["validation"], "metric": row["metric"]}
            lines += [f"  iteration {k}: {line}" for line in validation_lines(v)]
        anomalies = ""
        if keys.N_ANOMALIES in row:
            before = row[keys.N_ANOMALIES] + row[keys.N_ANOMALIES_REMOVED]
            anomalies = f" ({row[keys.N_ANOMALIES_REMOVED]} of {before} injected anomalies)"
        if keys.N_AGREEING in row:
            anomalies += f", {row[keys.N_AGREEING]} of {row[keys.N_MEMBERS]} ensemble members agree"
        elif row.get(keys.PREDICTED_CHANGE) is not None:
            anomalies += ", one run's scores (unverified: job.ensemble >= 2 checks them)"
        metric = row["metric"]
        se = row.get(keys.FRESH_CHANGE_SE)
        fresh = _signed(row.get(keys.FRESH_CHANGE)) + (f" ± {se:.2g}" if se is not None else "")
        # The headline after it, with the verdict of this step (against the previous version's
        # seed spread).
        after = ""
        if keys.HEADLINE in row:
            after = f"; headline {headline} = {headline_text(row)}: {row[keys.VERDICT]}"
        lines.append(
            f"  iteration {k}: removed {row[keys.N_REMOVED]}{anomalies}; change of {metric}: "
            f"predicted {_signed(row.get(keys.PREDICTED_CHANGE))}, "
            f"replay {_signed(row.get(keys.ACTUAL_CHANGE))}, fresh {fresh}{after}"
        )
        for c in row.get("chunks") or []:
            lines.append(
                f"    chunk {c['chunk']}: removed {c[keys.N_REMOVED]}, change predicted "
                f"{_signed(c[keys.PREDICTED_CHANGE])}, replay {_signed(c[keys.ACTUAL_CHANGE])}"
            )
    if job.get("stopped") and job["stopped"] not in lines[0]:  # the verdict may say it already
        lines.append(f"stopped at {job['stopped']}")
    lines.append(f"summary: {out}")
    return lines


def evaluate_line(out: str, summary: dict[str, Any], n_runs: int) -> str:
    head = f"{out}  {n_runs} run(s), {summary[keys.N_REMOVED_TOTAL]} removed"
    if keys.HEADLINE_METRIC not in summary:  # no metric common to every run
        return head
    state = summary[keys.VERDICT]
    return (
        f"{head}; headline {summary[keys.HEADLINE_METRIC]} {summary[keys.HEADLINE_RAW]:.6g} -> "
        f"{summary[keys.HEADLINE_FINAL]:.6g}" + (f": {state}" if state else "")
    )


def gate_line(result: dict[str, Any], report: str) -> str:
    verdict = "PASS" if result["passed"] else "FAIL"
    parts = []
    if "reason" in result:  # the set check
        parts.append(result["reason"])
    if "threshold_check" in result:
        t = result["threshold_check"]
        parts.append(
            f"{t[keys.N_HARMFUL]} of {result['n_instances']} instances above harmfulness "
            f"{t['threshold']:g}"
        )
    if "copying" in result:
        c = result["copying"]
        parts.append(f"data copying C_T {c[keys.COPYING_CT]:.2f} vs limit {-c['max_copying']:g}")
    return f"{verdict}: {'; '.join(parts)}; report {report}"


def lineage_lines(entries: list[dict[str, Any]], with_runs: bool) -> list[str]:
    lines = []
    for e in entries:
        what = "raw" if e["parent_digest"] is None else f"removed {e['n_removed']} by {e['method']}"
        lines.append(f"{e['digest'][:12]}  {e['n_instances']:>7} instances  {what:<28} {e['path']}")
        if with_runs:
            lines.append(
                f"{'':14}produced by runs: {', '.join(e['produced_by']) or '-'}; "
                f"used by: {', '.join(e['used_by']) or '-'}"
            )
    return lines
