"""The Python API end to end on your own arrays: prepare -> train -> influence -> cleanse ->
retrain -> gate. Run it from any directory: `python docs/examples/python_api.py WORKDIR`
(about ten seconds on two CPU cores: the `tiny` preset keeps it small, too small to fit the data
well; use a preset that fits yours, see "Choosing a preset")."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import ganinf_mlops as gi
from ganinf_mlops.errors import NothingToRemoveError

work = Path(sys.argv[1] if len(sys.argv) > 1 else "api-example")

# Your data: any [N, d] array (or images [N, C, H, W], with labels y if you have them). Here a
# 2D normal with 5% of the rows in a cluster 4 units out, and a trusted clean evaluation set
# (without x_eval, gi.prepare holds out a seeded 20% of x instead).
rng = np.random.default_rng(0)
x = rng.normal(size=(240, 2))
x[:12] = 4 + 0.3 * rng.normal(size=(12, 2))
x_eval = rng.normal(size=(60, 2))

raw = gi.prepare(work / "raw", x=x, x_eval=x_eval)
print(f"raw: {raw.n} training instances, {len(raw.x_eval)} held out, digest {raw.digest[:12]}")

run = gi.train(raw, work / "run", preset="tiny")
scores = gi.influence(run, method="all", out=work / "scores.csv")  # a DataFrame, ranked
print(scores.head(5).to_string(index=False))

try:
    v1 = gi.cleanse(raw, scores, work / "v1", remove_frac=0.05)
except NothingToRemoveError as exc:  # no instance is predicted to help: nothing is written
    print(f"nothing to cleanse: {exc}")
    sys.exit(0)
print(f"v1: removed {len(v1.manifest.removed_ids)}, parent {v1.manifest.parent_digest[:12]}")

run1 = gi.train(v1, work / "run1", preset="tiny")
# Is there still a set of at most 5% whose removal is predicted to help beyond seed noise? The
# gate weighs it against an ensemble of 3 runs (the run and 2 seed siblings, trained here).
report = gi.gate(v1, run1, method="all", max_harmful_frac=0.05, ensemble=3)
print(f"gate: {'PASS' if report else 'FAIL'}: {report.report['reason']}")
