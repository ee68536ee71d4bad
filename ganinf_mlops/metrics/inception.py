"""Inception Score (Salimans et al. 2016), differentiable in the class logits.

    IS = exp( (1/n) sum_i KL( p(y|x_i) || p(y) ) ),   p(y) = (1/n) sum_i p(y|x_i)

with p(y|x_i) = softmax(logits_i), over all n samples as ONE split (torch-fidelity with
`isc_splits=1`). Higher is better: 1 when every sample gets the same prediction, n_classes when
predictions are confident and spread evenly over the classes. Any classifier's logits work; here
they come from `ganinf_mlops.features.classifier` (Inception weights are not available offline).
"""

from __future__ import annotations

import math

import torch

from ganinf_mlops import keys
from ganinf_mlops.metrics.specs import FitRule, Metric, register

IS_SPEC = register(
    Metric(
        keys.IS,
        higher_is_better=True,
        meaning="Inception Score on the feature classifier's softmax (images)",
        influence="influence on the Inception Score (classifier softmax)",
        # No floor: the real training images' IS is the reference (docs/concepts.md).
        fit=FitRule("real data's IS", max_ratio=5.0),
    )
)


def inception_score(logits: torch.Tensor) -> torch.Tensor:
    """IS of the samples whose class logits are `logits` [n, n_classes] (a 0-d tensor)."""
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 2:
        raise ValueError(f"logits: expected [n >= 1, n_classes >= 2], got {tuple(logits.shape)}")
    # Everything in log space: softmax probabilities of confident predictions underflow to 0,
    # and log(mean p) = logsumexp(log p) - log n stays finite where log(mean(p)) would not.
    log_p = logits.log_softmax(dim=1)
    log_marginal = torch.logsumexp(log_p, dim=0) - math.log(logits.shape[0])
    kl = (log_p.exp() * (log_p - log_marginal)).sum(dim=1)
    return kl.mean().exp()
