"""The low items of issue 24 that are about values (each one line of work): refused in one
line, exit 2, before any work."""

from __future__ import annotations

import pytest

from ganinf_mlops.cli import main
from ganinf_mlops.config import JobOptions, get_preset
from ganinf_mlops.errors import ConfigError


def one_line(capsys, *args) -> str:
    with pytest.raises(SystemExit) as exc:
        main(["-q", *map(str, args)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("value", ["false", "no", "off", "False", "NO"])
def test_tracking_false_no_off_mean_off(monkeypatch, value):
    from ganinf_mlops.cli.common import make_observer
    from ganinf_mlops.observer import NONE

    monkeypatch.setenv("GANINF_TRACKING", value)
    assert type(make_observer(None, "x")).__name__ == type(make_observer(False, "x")).__name__
    assert NONE  # the "none" backend is what off means


def test_params_with_an_unknown_top_level_key(tmp_path):
    from ganinf_mlops.params import load_params, write_params

    path = tmp_path / "params.yaml"
    write_params(path, get_preset("tiny"))
    path.write_text(path.read_text() + "evil: 1\n")
    with pytest.raises(ConfigError, match="unknown key evil"):
        load_params(path)


def test_params_with_an_unknown_job_method(tmp_path, capsys, tiny_version):
    from ganinf_mlops.params import write_params

    path = tmp_path / "params.yaml"
    write_params(path, get_preset("tiny"))
    path.write_text(path.read_text().replace("method: all", "method: evil"))
    err = one_line(capsys, "train", "--params", path, "--data", tiny_version.path,
                   "--out", tmp_path / "run")  # fmt: skip
    assert "evil" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_threshold_that_is_not_finite(value):
    with pytest.raises(ConfigError, match="threshold must be finite"):
        JobOptions(policy="threshold", threshold=float(value))


def test_a_remove_fraction_that_removes_nothing_names_the_smallest_useful_one():
    from ganinf_mlops.cleanse import removal_count

    with pytest.raises(ConfigError, match=r"removes no instance of 1,000.*smallest.*0\.0005"):
        removal_count(1000, 1e-9, None)
    assert removal_count(1000, 0.0005, None) == 1


@pytest.mark.parametrize("seed", [-5, 2**64])
def test_a_baseline_seed_out_of_range(seed):
    from ganinf_mlops.influence.options import ScoringOptions

    with pytest.raises(ConfigError, match=r"seed must be in \[0, 2\*\*63\)"):
        ScoringOptions(method="random", seed=seed)
    with pytest.raises(ConfigError, match=r"seed must be in \[0, 2\*\*63\)"):
        JobOptions(seed=seed)


def test_influence_seed_below_zero_is_one_line(tmp_path, capsys, tiny_version):
    run = tmp_path / "run"
    run.mkdir()
    err = one_line(capsys, "influence", "--preset", "tiny", "--run", run, "--method", "random",
                   "--seed", "-5", "--out", tmp_path / "s.csv")  # fmt: skip
    assert "seed must be in" in err


@pytest.mark.parametrize("uri", ["runs:/abc/../../x", "runs:/../x", "runs:/abc/a/../../b"])
def test_a_runs_uri_climbing_out_of_its_run_is_one_line(tmp_path, capsys, uri):
    err = one_line(capsys, "influence", "--preset", "tiny", "--run", uri,
                   "--out", tmp_path / "s.csv")  # fmt: skip
    assert "may not climb" in err and ".." in err


@pytest.mark.parametrize("repo", ["ext::sh -c touch% /tmp/pwned", "fd::17", "-uhttps://x"])
def test_push_repo_must_be_a_plain_git_url(tmp_path, capsys, repo):
    err = one_line(capsys, "push", tmp_path, "--repo", repo)
    assert "--repo" in err


@pytest.mark.parametrize(
    "repo",
    ["/srv/git/data.git", "file:///srv/git/data.git", "https://example.org/a/b.git",
     "ssh://git@example.org/a/b.git", "git@example.org:a/b.git", "../b.git"],
)  # fmt: skip
def test_push_repo_accepts_plain_forms(repo):
    from ganinf_mlops.cli.push import check_repo_url

    assert check_repo_url(repo) == repo
