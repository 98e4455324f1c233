"""The real peer library for anneval's HDF5 tests (Debian's python3-h5py).

    h5py_peer.py write OUT [--only-distance]   a dataset as ann-benchmarks' own
                                                scripts write it: f64 vectors, i64
                                                neighbours, str attributes
    h5py_peer.py bad KIND OUT                   a malformed file of the given kind
    h5py_peer.py check FILE                     asserts FILE has the hosted files' types
"""
import sys

import h5py
import numpy as np


def dataset(rng, n=500, q=20, dim=8, k=10):
    train = rng.normal(size=(n, dim))
    test = rng.normal(size=(q, dim))
    d = np.sqrt(((test[:, None, :] - train[None, :, :]) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return train, test, order.astype(np.int64), np.take_along_axis(d, order, 1)


def write(path, only_distance=False, **overrides):
    train, test, neighbors, distances = dataset(np.random.default_rng(7))
    parts = dict(train=train, test=test, neighbors=neighbors, distances=distances)
    parts.update(overrides)
    with h5py.File(path, "w") as f:
        f.attrs["distance"] = "euclidean"
        if not only_distance:
            f.attrs["type"] = "dense"
            f.attrs["point_type"] = "float"
            f.attrs["dimension"] = train.shape[1]
        for name, value in parts.items():
            if value is not None:
                f.create_dataset(name, data=value)


def bad(kind, path):
    train, test, neighbors, distances = dataset(np.random.default_rng(7))
    if kind == "missing-neighbors":
        write(path, neighbors=None)
    elif kind == "missing-distance-attribute":
        write(path)
        with h5py.File(path, "a") as f:
            del f.attrs["distance"]
    elif kind == "unknown-metric":
        write(path)
        with h5py.File(path, "a") as f:
            f.attrs["distance"] = "hamming"
    elif kind == "dimension-mismatch":
        write(path, test=test[:, :5])
    elif kind == "one-dimensional":
        write(path, train=train[:, 0])
    elif kind == "nan":
        train = train.copy()
        train[3, 2] = np.nan
        write(path, train=train)
    elif kind == "infinite":
        test = test.copy()
        test[1, 0] = np.inf
        write(path, test=test)
    elif kind == "id-out-of-range":
        neighbors = neighbors.copy()
        neighbors[4, 0] = 10_000
        write(path, neighbors=neighbors)
    elif kind == "negative-id":
        neighbors = neighbors.copy()
        neighbors[2, 1] = -1
        write(path, neighbors=neighbors)
    elif kind == "rows-mismatch":
        write(path, neighbors=neighbors[:5], distances=distances[:5])
    elif kind == "text-vectors":
        write(path, train=np.array([b"abc"] * 10))
    else:
        raise SystemExit(f"unknown kind {kind}")


def check(path):
    with h5py.File(path, "r") as f:
        for name, dtype in [("train", "<f4"), ("test", "<f4"), ("distances", "<f4"), ("neighbors", "<i4")]:
            assert f[name].dtype == np.dtype(dtype), (name, f[name].dtype)
            assert f[name].ndim == 2, name
        for name in ["distance", "type", "point_type"]:
            info = h5py.check_string_dtype(f.attrs.get_id(name).dtype)
            assert info is not None and info.length is None and info.encoding == "utf-8", (name, info)
        assert f.attrs["dimension"] == f["train"].shape[1]
        assert f.attrs["type"] == "dense" and f.attrs["point_type"] == "float"
        d = f["distances"][:]
        assert (np.diff(d, axis=1) >= 0).all(), "distances ascend"
        print("ok", dict(f.attrs))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "write":
        write(sys.argv[2], only_distance="--only-distance" in sys.argv)
    elif cmd == "bad":
        bad(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2])
    else:
        raise SystemExit(__doc__)
