"""hnswlib measured the way ann-benchmarks (and anneval) measure: one thread,
the whole query batch per pass, best of several passes per ef, recall@k by
distance threshold (k-th true distance + 1e-3).

    hnswlib_baseline.py FILE.hdf5 --ef 10,20,... [--k 10] [--runs 3] [--m 16] [--ef-construction 200]

Prints one JSON object: build seconds and, per ef, recall and QPS.
Uses Debian's python3-hnswlib, python3-numpy and python3-h5py.
"""
import argparse
import json
import time

import h5py
import hnswlib
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--ef", required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=200)
    a = ap.parse_args()

    with h5py.File(a.file, "r") as f:
        metric = f.attrs["distance"]
        train = np.asarray(f["train"], dtype=np.float32)
        test = np.asarray(f["test"], dtype=np.float32)
        truth = np.asarray(f["distances"], dtype=np.float64)
    space = {"euclidean": "l2", "angular": "cosine"}[metric]

    index = hnswlib.Index(space=space, dim=train.shape[1])
    index.set_num_threads(1)
    start = time.perf_counter()
    index.init_index(max_elements=len(train), M=a.m, ef_construction=a.ef_construction, random_seed=100)
    index.add_items(train, np.arange(len(train)), num_threads=1)
    build = time.perf_counter() - start

    train64 = train.astype(np.float64)
    test64 = test.astype(np.float64)
    if metric == "angular":
        train64 /= np.linalg.norm(train64, axis=1, keepdims=True)
        test64 /= np.linalg.norm(test64, axis=1, keepdims=True)

    def recall(labels):
        hits = 0
        for i, ids in enumerate(labels):
            v = train64[ids]
            if metric == "euclidean":
                d = np.sqrt(((v - test64[i]) ** 2).sum(axis=1))
            else:
                d = 1.0 - v @ test64[i]
            hits += int((d <= truth[i, a.k - 1] + 1e-3).sum())
        return hits / (len(labels) * a.k)

    curve = []
    for ef in [int(e) for e in a.ef.split(",")]:
        index.set_ef(max(ef, a.k))
        index.knn_query(test, k=a.k, num_threads=1)  # warm-up
        best = float("inf")
        for _ in range(a.runs):
            start = time.perf_counter()
            labels, _ = index.knn_query(test, k=a.k, num_threads=1)
            best = min(best, time.perf_counter() - start)
        curve.append({"ef": ef, "recall": recall(labels), "qps": len(test) / best})
    print(json.dumps({"build_seconds": build, "curve": curve}))


if __name__ == "__main__":
    main()
