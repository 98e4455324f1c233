#!/usr/bin/python3
"""How hard an ann-benchmarks HDF5 set is for graph search (BENCHMARKS.md,
"What makes a set hard"): per query, the local intrinsic dimension (the
maximum-likelihood estimate from the k nearest base distances) and the
relative contrast (mean distance to the base over nearest distance), medians
over the first queries against the first base points.

Usage: /usr/bin/python3 scripts/set_hardness.py FILE.hdf5... [--base 20000] [--queries 500] [--k 20]
Needs Debian's python3-h5py and python3-numpy.
"""
import argparse

import h5py
import numpy as np


def hardness(path, n_base, n_queries, k):
    with h5py.File(path, "r") as f:
        base = np.asarray(f["train"][:n_base], dtype=np.float64)
        queries = np.asarray(f["test"][:n_queries], dtype=np.float64)
    squared = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None]
    squared = np.maximum(squared, 0.0)
    nearest = np.sqrt(np.maximum(np.sort(squared, axis=1)[:, :k], 1e-24))
    lid = -1.0 / np.mean(np.log(nearest[:, :-1] / nearest[:, -1:]), axis=1)
    contrast = np.sqrt(squared).mean(1) / np.maximum(nearest[:, 0], 1e-12)
    return np.median(lid), np.median(contrast)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--base", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=20)
    args = parser.parse_args()
    for path in args.files:
        lid, contrast = hardness(path, args.base, args.queries, args.k)
        print(f"{path}: local intrinsic dimension (k = {args.k}) median {lid:.1f}, "
              f"relative contrast median {contrast:.2f}")


if __name__ == "__main__":
    main()
