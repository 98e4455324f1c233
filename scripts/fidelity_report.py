"""Reads `anneval confirm --json` output and prints what the fidelity
benchmark reports: for each kernel, the median wasm QPS / native QPS at
matched ef; for each pair of variants, the native and the wasm speedup side
by side (reward ratio, and median QPS ratio at matched ef); the Spearman
rank agreement confirm computed; and the agreement noise alone allows: two
measurements of the same engine, each reward off by a normal error of a
given coefficient of variation, simulated over these kernels' native
rewards.

Usage: fidelity_report.py confirm.json [--kernels-only]
"""

import json
import random
import statistics
import sys

# (faster, slower, what the pair isolates)
PAIRS = [
    ("reference", "hnsw_no_prefetch.rs", "prefetch"),
    ("reference", "hnsw_unfused.rs", "fused multiply-add"),
    ("reference", "hnsw_sse.rs", "vector width (256 vs 128 bits)"),
    ("reference", "hnsw_boxed.rs", "memory layout (flat vs boxed vectors)"),
    ("hnsw_m8.rs", "hnsw_m32.rs", "graph degree (m 8 vs 32)"),
    ("reference", "hnsw_scalar.rs", "SIMD vs scalar distances"),
]


def name(candidate):
    return candidate["source"].rsplit("/", 1)[-1]


def by_ef(curve):
    return {p["ef"]: p["qps"] for p in curve if p.get("qps")}


def median_ratio(a, b):
    common = sorted(set(a) & set(b))
    return statistics.median(a[e] / b[e] for e in common) if common else None


def fmt(x, digits=2):
    return "-" if x is None else f"{x:.{digits}f}"


def spearman(a, b):
    """Spearman's rho of two lists without ties."""
    rank = lambda xs: {i: r for r, i in enumerate(sorted(range(len(xs)), key=xs.__getitem__))}
    ra, rb = rank(a), rank(b)
    n = len(a)
    return 1 - 6 * sum((ra[i] - rb[i]) ** 2 for i in range(n)) / (n * (n * n - 1))


def noise_bound(rewards, cv, trials=20000, seed=1):
    """Median and 10th percentile of the Spearman of two noisy copies of
    `rewards`."""
    rng = random.Random(seed)
    noisy = lambda: [r * (1 + rng.gauss(0, cv)) for r in rewards]
    rhos = sorted(spearman(noisy(), noisy()) for _ in range(trials))
    return rhos[trials // 2], rhos[trials // 10]


def main(path, kernels_only=False):
    report = json.load(open(path))
    kernels = {}
    for c in report["candidates"]:
        if c["wasm"]["verdict"] != "ok" or c["native"]["verdict"] != "ok":
            print(f"{name(c)}: wasm {c['wasm']['verdict']}, native {c['native']['verdict']}")
            continue
        kernels[name(c)] = c
    print("kernel                  wasm reward  native reward  wasm/native QPS at matched ef (median)")
    for n, c in kernels.items():
        ratio = median_ratio(by_ef(c["wasm"]["curve"]), by_ef(c["native"]["curve"]))
        print(f"{n:22} {c['wasm']['reward']:12,.0f} {c['native']['reward']:14,.0f}  {fmt(ratio)}")
    if kernels_only:
        return
    print()
    print("pair (faster / slower)                      isolates                                native speedup      wasm speedup   wasm/native")
    print("                                                                                    reward  at ef       reward  at ef  of speedup-1")
    for fast, slow, what in PAIRS:
        if fast not in kernels or slow not in kernels:
            continue
        f, s = kernels[fast], kernels[slow]
        speed = {}
        for engine in ("native", "wasm"):
            reward = f[engine]["reward"] / s[engine]["reward"] if s[engine]["reward"] else None
            at_ef = median_ratio(by_ef(f[engine]["curve"]), by_ef(s[engine]["curve"]))
            speed[engine] = (reward, at_ef)
        n, w = speed["native"][0], speed["wasm"][0]
        share = (w - 1) / (n - 1) if n and w and abs(n - 1) > 0.02 else None
        print(
            f"{fast + ' / ' + slow:43} {what:38} {fmt(speed['native'][0]):>7} {fmt(speed['native'][1]):>6}"
            f"   {fmt(speed['wasm'][0]):>7} {fmt(speed['wasm'][1]):>6}   {fmt(share)}"
        )
    print()
    print(f"Spearman rank agreement of wasm and native rewards over {len(kernels)} kernels: "
          f"{fmt(report.get('spearman'), 3)}")
    rewards = [c["native"]["reward"] for c in kernels.values()]
    if len(rewards) > 2:
        for cv in (0.03, 0.046, 0.064):
            median, p10 = noise_bound(rewards, cv)
            print(f"  noise alone, same engine twice, reward CV {cv:.1%}: median {median:.3f}, 10th percentile {p10:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], kernels_only="--kernels-only" in sys.argv[2:])
