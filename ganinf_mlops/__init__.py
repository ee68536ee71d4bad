"""ganinf-mlops: exact GAN influence on recorded training trajectories, with data lineage.

The Python API (`ganinf_mlops.api`) is importable from here: `import ganinf_mlops as gi`, then
`gi.prepare`, `gi.train`, `gi.influence`, `gi.cleanse`, `gi.gate`, `gi.run_job`. Its names load on
first use, so importing the package (as the `ganinf` command does) stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from typing import Any

__version__ = "0.1.0"

_API = ("GateReport", "cleanse", "gate", "influence", "load", "prepare", "run_job",
        "scores_frame", "train")  # fmt: skip


class _Entry:
    """An API function that is also the way to its namesake submodule: `gi.train(...)` calls
    `api.train`, while `ganinf_mlops.train.trainer` (dotted imports, `mock.patch` targets) still
    reaches the package `ganinf_mlops/train/`. Four API names are submodules' names too."""

    def __init__(self, fn: Any, submodule: str) -> None:
        functools.update_wrapper(self, fn)
        self._submodule = submodule

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module(self._submodule), name)

    def __repr__(self) -> str:
        return f"<ganinf_mlops API function {self.__name__}>"


_loaded: dict[str, Any] = {}


class _Package(types.ModuleType):
    def __getattribute__(self, name: str) -> Any:
        if name not in _API:
            return super().__getattribute__(name)
        if name not in _loaded:
            from ganinf_mlops import api

            fn, sub = getattr(api, name), f"{__name__}.{name}"
            _loaded[name] = _Entry(fn, sub) if importlib.util.find_spec(sub) else fn
        return _loaded[name]


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])


__all__ = ["__version__", *_API]
