"""The preset for a user's own file (`ganinf run --input FILE`): chosen by what the file holds
when none is given, its data section replaced by the file, and checked to fit the file before
anything is written.

Vectors get `default` (the GAN on vectors: its networks and metrics take any dimension d),
labelled vectors `tabular` (a classifier), images the image preset made for their size, or else
`digits`, whose DCGAN adapts to any H x W divisible by 4.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ganinf_mlops.config import Preset, feature_classifier
from ganinf_mlops.data.images import IMAGE_SHAPES
from ganinf_mlops.data.inputs import IMAGES, LABELLED, VECTORS, UserInput
from ganinf_mlops.errors import ConfigError
from ganinf_mlops.presets import PRESETS
from ganinf_mlops.problems import PROBLEMS

BY_KIND = {VECTORS: "default", LABELLED: "tabular"}
# The general image presets, by preference; `digits` also takes other sizes (see above).
IMAGE_PRESETS = ("digits", "mnist-sample", "cifar10-dcgan")
ADAPTS = "digits"


def _size(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape[-2:])


def image_preset(shape: tuple[int, ...]) -> str:
    """The preset for images of `shape` (C, H, W)."""
    for name in IMAGE_PRESETS:
        if IMAGE_SHAPES[PRESETS.get(name).dataset][1:] == tuple(shape[1:]):
            return name
    h, w = shape[1:]
    if h % 4 == 0 and w % 4 == 0:
        return ADAPTS
    sizes = ", ".join(f"{n} {_size(IMAGE_SHAPES[PRESETS.get(n).dataset])}" for n in IMAGE_PRESETS)
    raise ConfigError(
        f"images of {h}x{w}: no image preset expects that size ({sizes}), and the {ADAPTS} "
        "DCGAN needs H and W divisible by 4; pad or crop the images, or give --preset/--params "
        "with a network for them"
    )


def preset_name(user: UserInput) -> str:
    """The preset for the file when the user names none."""
    if user.kind == IMAGES:
        return image_preset(tuple(user.raw.x.shape[1:]))
    return BY_KIND[user.kind]


def check_fits(preset: Preset, user: UserInput) -> None:
    """Refuse a preset whose problem cannot train on the file, before any output exists."""
    problem = PROBLEMS.get(preset.train.problem)
    ndim = getattr(problem, "instance_ndim", None)
    images = user.kind == IMAGES
    if ndim is not None and (ndim == 3) != images:
        wants, has = ("images", "vectors") if ndim == 3 else ("vectors", "images")
        raise ConfigError(
            f"preset {preset.name!r} trains a {preset.train.problem!r} problem on {wants}; "
            f"{user.path} holds {has} of shape {tuple(user.raw.x.shape[1:])}"
        )
    y, y_eval = user.raw.y, user.raw.y_eval
    why = None
    if problem.needs_labels:
        why = f"preset {preset.name!r} trains a classifier"
    elif feature_classifier(preset.metric) is not None:
        why = f"preset {preset.name!r} measures FID/IS on a feature classifier of labelled images"
    if why is None:
        return
    if y is None or y_eval is None:
        where = "an array 'y'" if user.dataset != "table" else "a --label-column"
        raise ConfigError(f"{why}, which needs class labels; {user.path} has none ({where})")
    if np.unique(np.concatenate([y, y_eval])).size < 2:
        raise ConfigError(f"{why}, which needs two classes; {user.path} has one")


def preset_for_input(user: UserInput, preset: Preset | None = None) -> Preset:
    """`preset` (None: the one chosen by the file's kind) with its data replaced by the file."""
    base = preset if preset is not None else PRESETS.get(preset_name(user))
    check_fits(base, user)
    return dataclasses.replace(base, dataset=user.dataset, data_params=dict(user.params))
