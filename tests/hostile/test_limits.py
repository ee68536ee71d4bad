"""Upper limits on values (issue 24, item 12 and the low items on counts): a value far beyond
reason is refused before any work, in one line naming the value, the limit and the environment
variable that raises it (`ganinf_mlops/limits.py`)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from ganinf_mlops.cli import main
from ganinf_mlops.config import JobOptions, MetricConfig, get_preset, metric_config_from_dict
from ganinf_mlops.errors import ConfigError

HUGE = 10**12


def refused(match: str):
    return pytest.raises(
        ConfigError, match=rf"{match}.*above the limit [\d,]+ \(raise it with GANINF_MAX_"
    )


def gan():
    return get_preset("tiny").train


def test_steps():
    with refused("steps = 1,000,000,000,000"):
        dataclasses.replace(gan(), steps=HUGE)


def test_epochs():
    with refused("epochs"):
        dataclasses.replace(gan(), epochs=HUGE)


def test_latent_dim_and_widths():
    model = gan().model
    with refused("latent_dim"):
        dataclasses.replace(model, latent_dim=10**8)
    with refused("g_hidden"):
        dataclasses.replace(model, g_hidden=(10**6,))
    with refused("hidden layers"):
        dataclasses.replace(model, d_hidden=(2,) * 10_000)


def test_classifier_widths():
    from ganinf_mlops.problems.classifier import ClassifierModelConfig

    with refused("hidden"):
        ClassifierModelConfig(arch="mlp", hidden=(10**6, 4))


def test_n_gen_in_a_run_meta():
    with refused("n_gen"):
        MetricConfig(n_gen=HUGE)
    d = dataclasses.asdict(MetricConfig())
    with refused("n_gen"):
        metric_config_from_dict({**d, "n_gen": HUGE}, "gan")


@pytest.mark.parametrize(
    "field", ["ensemble", "retrain_seeds", "loo", "chunks", "iterations", "group_subsets"]
)
def test_job_counts(field):
    with refused(field):
        JobOptions(**{field: 10**8})


def test_scoring_ensemble():
    from ganinf_mlops.influence.options import ScoringOptions

    with refused("ensemble"):
        ScoringOptions(ensemble=10**6)


def test_generator_n():
    from ganinf_mlops.data.datasets import gaussian2d

    with refused("n = 1,000,000,000,000"):
        gaussian2d(n=HUGE)


def test_a_limit_can_be_raised(monkeypatch):
    monkeypatch.setenv("GANINF_MAX_STEPS", str(10**13))
    assert dataclasses.replace(gan(), steps=HUGE).steps == HUGE


def test_a_bad_limit_variable_is_one_line(monkeypatch):
    monkeypatch.setenv("GANINF_MAX_STEPS", "lots")
    with pytest.raises(ConfigError, match="GANINF_MAX_STEPS must be a positive integer"):
        dataclasses.replace(gan(), steps=5)


@pytest.mark.parametrize(
    "args",
    [
        ("train", "--preset", "tiny", "--data", "{raw}", "--steps", str(HUGE), "--out", "{out}"),
        ("prepare", "--preset", "tiny", "--param", f"n={HUGE}", "--out", "{out}"),
        ("loop", "--preset", "tiny", "--retrain-seeds", str(10**8), "--out", "{out}"),
        ("loop", "--preset", "tiny", "--loo", str(10**8), "--out", "{out}"),
        ("loop", "--preset", "tiny", "--chunks", "100000", "--out", "{out}"),
    ],
    ids=["train-steps", "prepare-n", "loop-retrain-seeds", "loop-loo", "loop-chunks"],
)
def test_cli_values_beyond_the_limit_are_one_line_before_any_work(
    tmp_path, capsys, tiny_version, args
):
    raw = tiny_version.path
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["-q", *(a.format(raw=raw, out=out) for a in args)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "above the limit" in err and "\n" not in err, err
    assert not out.exists()


def test_chunks_beyond_the_removal_count_say_so(caplog):
    from ganinf_mlops.chunks import chunk_sizes

    with caplog.at_level(logging.WARNING):
        assert chunk_sizes(2, 3) == [1, 1]
    assert "3 chunks" in caplog.text and "2 instances" in caplog.text
