"""Datasets: named generators, user `.npz` input, and content-addressed dataset versions."""
