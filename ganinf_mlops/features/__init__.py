"""Image features for FID and Inception Score without Inception weights (the machines are offline).

`classifier` trains a small CNN on the real training images and stores it as a versioned,
digest-checked artifact; its 128-d sigmoid layer stands in for Inception's pool features (FID)
and its logits for Inception's class predictions (IS). `fidelity` registers the same network as
a torch-fidelity feature extractor, so our differentiable metrics can be checked against it.
"""
