"""`dvc plots show` works offline: the page template (pipelines/plots/offline.html, written by
scripts/offline_plots.py) embeds Vega, Vega-Lite and Vega-Embed, and .dvc/config makes it DVC's
default here. The browser test opens the page in headless Chromium with no network at all.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import offline_plots  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_committed_template_embeds_the_pinned_libraries() -> None:
    html = offline_plots.TEMPLATE.read_text(encoding="utf-8")
    assert offline_plots.check(html) == []
    assert "Redistributions of source code must retain" in html  # the licence travels with it
    # A changed byte in a bundle, or DVC's CDN scripts brought back, is found.
    tampered = html.replace("vegaEmbed", "vegaEmbeD", 1)
    assert any("vega-embed" in p for p in offline_plots.check(tampered))
    cdn = html.replace("{plot_divs}", "{scripts}\n{plot_divs}")
    assert any("CDN" in p for p in offline_plots.check(cdn))


def test_dvc_config_makes_it_the_default_template() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    relative = config["plots"]["html_template"]  # DVC resolves it against .dvc/
    assert (ROOT / ".dvc" / relative).resolve() == offline_plots.TEMPLATE


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ["PATH"],
        "DVC_NO_ANALYTICS": "1",
    }


def _run(cwd: Path, *args: str) -> str:
    done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def _plot_csvs(pipeline: dict, d: Path) -> int:
    """Write a small plot file for every plot dvc.yaml declares (its x and y columns, three
    rows); return the number of plots."""
    columns: dict[str, list[str]] = {}
    for entry in pipeline["plots"]:
        (props,) = entry.values()
        for file, ys in props["y"].items():
            cols = columns.setdefault(file, [props["x"]])
            cols += [c for c in ([ys] if isinstance(ys, str) else ys) if c not in cols]
    for file, cols in columns.items():
        rows = [",".join(cols)]
        rows += [",".join(str(k + 0.5 * j) for j in range(len(cols))) for k in range(3)]
        (d / file).parent.mkdir(parents=True, exist_ok=True)
        (d / file).write_text("\n".join(rows) + "\n")
    return len(pipeline["plots"])


def _offline_chromium(*args: str) -> subprocess.CompletedProcess:
    """Chromium in a network namespace of its own: no interface but loopback, which is down."""
    flags = [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--hide-scrollbars", "--window-size=1400,1400", "--virtual-time-budget=15000",
        "--run-all-compositor-stages-before-draw",
    ]  # fmt: skip
    return subprocess.run(
        ["unshare", "-n", CHROMIUM, *flags, *args],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def _coloured_pixels(png: Path) -> int:
    """Pixels that are not grey: the charts' lines and points (axes, grid and text are grey)."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as img:
        rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    return int(((rgb.max(axis=2) - rgb.min(axis=2)) > 40).sum())


@pytest.mark.integration
@pytest.mark.skipif(
    (CHROMIUM is None or shutil.which("unshare") is None or os.geteuid() != 0)
    and os.environ.get("GANINF_REQUIRE_CHROMIUM") != "1",
    reason="needs Debian's chromium and root for `unshare -n` (a browser with no network)",
)
def test_plots_page_draws_every_chart_without_a_network(tmp_path: Path) -> None:
    assert CHROMIUM is not None, "chromium is required here (GANINF_REQUIRE_CHROMIUM=1)"
    d = tmp_path / "project"
    (d / ".dvc").mkdir(parents=True)
    shutil.copy(ROOT / "dvc.yaml", d / "dvc.yaml")
    shutil.copy(ROOT / ".dvc" / "config", d / ".dvc" / "config")
    template = d / offline_plots.TEMPLATE.relative_to(ROOT)
    template.parent.mkdir(parents=True)
    shutil.copy(offline_plots.TEMPLATE, template)
    _run(d, "git", "init", "-q")
    n_plots = _plot_csvs(yaml.safe_load((d / "dvc.yaml").read_text()), d)

    _run(d, "dvc", "plots", "show")  # the repository's config: the offline template
    page = d / "dvc_plots" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text()
    dom = _offline_chromium("--dump-dom", page.as_uri()).stdout
    # vega-embed draws each chart on a canvas of class "marks"; failures print their errors.
    assert dom.count('class="marks"') == n_plots, dom[-3000:]
    assert "Error" not in dom.split("</script>")[-1], dom[-3000:]
    _offline_chromium(f"--screenshot={tmp_path / 'offline.png'}", page.as_uri())
    assert _coloured_pixels(tmp_path / "offline.png") > 300 * n_plots  # lines and points drawn

    # DVC's own page, offline, draws nothing: what the template is for.
    _run(d, "dvc", "config", "--unset", "plots.html_template")
    _run(d, "dvc", "plots", "show", "-o", "cdn_plots")
    cdn_page = d / "cdn_plots" / "index.html"
    assert "cdn.jsdelivr" in cdn_page.read_text()
    assert _offline_chromium("--dump-dom", cdn_page.as_uri()).stdout.count('class="marks"') == 0
