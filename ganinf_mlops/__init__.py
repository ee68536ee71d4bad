"""ganinf-mlops: exact GAN influence on recorded training trajectories, with data lineage."""

from __future__ import annotations

__version__ = "0.1.0"
