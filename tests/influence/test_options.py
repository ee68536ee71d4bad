"""`ScoringOptions`: one value for every scoring setting, built from a job's options."""

from __future__ import annotations

import dataclasses

import pytest

from ganinf_mlops.config import JobOptions
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.influence.options import ScoringOptions


def test_from_job_takes_the_jobs_scoring_fields():
    job = JobOptions(method="fd", last_epochs=2, average_order=True, seed=7, ensemble=3)
    options = ScoringOptions.from_job(job)
    assert options == ScoringOptions("fd", ensemble=3, last_epochs=2, average_order=True, seed=7)
    assert ScoringOptions.from_job(JobOptions()) == ScoringOptions()  # the same defaults


def test_from_job_changes_replace_fields():
    options = ScoringOptions.from_job(JobOptions(seed=7), seed=9, progress=False)
    assert (options.seed, options.progress, options.checkpointed) == (9, False, True)


def test_every_field_has_help():
    for f in dataclasses.fields(ScoringOptions):
        assert f.metadata.get("help"), f.name


def test_a_job_refuses_an_ensemble_of_a_baseline():
    """job.ensemble averages influence: a baseline (any method that predicts no change, read
    from METHODS) has none to average; an influence method takes it."""
    for method in ("isolation_forest", "instance_selection", "random", "loss", "injected"):
        with pytest.raises(ConfigError, match="the method is a baseline"):
            JobOptions(method=method, ensemble=2)
        assert JobOptions(method=method).ensemble == 1
    assert JobOptions(method="fd", ensemble=2).ensemble == 2
