"""Write an MNIST-sized stand-in in torchvision's on-disk layout, for cost runs where MNIST itself
cannot be downloaded (a GPU machine without internet).

60,000 training and 10,000 test images of 28x28 uint8, made from scikit-learn's 1,797 8x8 digits
(shipped with it): each is upsampled to 20x20, placed at a random offset around the centre of a
28x28 field (as MNIST centres its digits in a 20x20 box), and given a random contrast and a little
noise. The labels are the digits'. Read it with the `mnist` dataset (`root=DIR`): the same loader
as real MNIST, so a cost run on it exercises the real loading code. It is not MNIST, and FID or IS
on it say nothing about MNIST; its sizes and shapes are what a cost measurement needs.

Usage: python benchmarks/synthetic_mnist.py --out DIR [--train 60000] [--test 10000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def write_idx(path: Path, arr: np.ndarray) -> None:
    """The IDX format of MNIST's files: magic (0, 0, 8 = uint8, ndim), big-endian sizes, data."""
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in arr.shape)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes())
    tmp.replace(path)


def synthesize(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    src = torch.from_numpy(digits.images / 16.0).float()[:, None]  # [1797, 1, 8, 8] in [0, 1]
    big = torch.nn.functional.interpolate(src, size=(20, 20), mode="bilinear", align_corners=False)
    pick = rng.integers(0, len(src), size=n)
    out = np.zeros((n, 28, 28), dtype=np.float32)
    dy, dx = rng.integers(2, 7, size=n), rng.integers(2, 7, size=n)
    contrast = rng.uniform(0.7, 1.0, size=n).astype(np.float32)
    small = big[:, 0].numpy()
    for i in range(n):
        out[i, dy[i] : dy[i] + 20, dx[i] : dx[i] + 20] = small[pick[i]] * contrast[i]
    out += rng.normal(0.0, 0.03, size=out.shape).astype(np.float32)
    images = np.clip(out * 255.0, 0, 255).round().astype(np.uint8)
    return images, digits.target[pick].astype(np.uint8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True, help="root: files go to OUT/MNIST/raw/")
    p.add_argument("--train", type=int, default=60000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.train < 1 or args.test < 1:
        p.error("--train and --test must be >= 1")
    raw = args.out / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for train, n in ((True, args.train), (False, args.test)):
        images, labels = synthesize(n, rng)
        write_idx(raw / FILES[train][0], images)
        write_idx(raw / FILES[train][1], labels)
    print(f"wrote {args.train} + {args.test} synthetic 28x28 digits to {raw}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
