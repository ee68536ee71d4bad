"""The package states dependency ranges; constraints.txt pins the tested builds inside them."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def test_torch_is_a_range_and_the_tested_pins_fall_inside_it():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = {r.name: r for r in map(Requirement, deps)}
    pins = {
        r.name: r
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
        for r in [Requirement(line)]
    }
    for name in ("torch", "torchvision"):
        spec = reqs[name].specifier
        assert not any(s.operator == "==" for s in spec), f"{name} is pinned in pyproject.toml"
        (pin,) = pins[name].specifier
        assert pin.operator == "==" and spec.contains(pin.version), (name, spec, pin)
    assert "-c constraints.txt" in (ROOT / "scripts" / "install.sh").read_text()


def test_ray_is_an_extra_that_dev_installs_and_its_pin_falls_inside():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    (ray,) = map(Requirement, extras["ray"])
    assert ray.name == "ray" and str(ray) in extras["dev"]  # CI installs .[dev]
    pin = next(
        Requirement(line)
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if line.startswith("ray==")
    )
    assert ray.specifier.contains(next(iter(pin.specifier)).version)
