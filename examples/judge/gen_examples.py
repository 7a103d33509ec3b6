"""Generates the example inputs for `canary judge` (deterministic; numpy only).

Run from the repository root: python3 examples/judge/gen_examples.py
"""
import json
import numpy as np

rng = np.random.default_rng(20261122)
out = "examples/judge/"


def r(a):
    return [round(float(v), 3) for v in a]


# p99 latency per 30 s step over 40 minutes, canary 30 % slower.
base = np.exp(rng.normal(np.log(120.0), 0.15, 80))
can = np.exp(rng.normal(np.log(120.0 * 1.3), 0.15, 80))
json.dump({"canary": r(can), "baseline": r(base), "direction": "increase",
           "effect": {"measure": "mean_ratio", "allowed_increase": 1.1, "critical_increase": 1.5}},
          open(out + "latency-regression.json", "w"), indent=1)

# Healthy: same distribution.
base = np.exp(rng.normal(np.log(120.0), 0.15, 80))
can = np.exp(rng.normal(np.log(120.0), 0.15, 80))
json.dump({"canary": r(can), "baseline": r(base), "direction": "increase"},
          open(out + "latency-healthy.json", "w"), indent=1)

# Same median, a heavier upper tail: the canary's slowest quarter of steps is 2-3x slower.
base = np.exp(rng.normal(np.log(120.0), 0.1, 120))
can = np.exp(rng.normal(np.log(120.0), 0.1, 120))
slow = can >= np.quantile(can, 0.75)
can[slow] *= rng.uniform(2.0, 3.0, int(slow.sum()))
json.dump({"canary": r(can), "baseline": r(base), "direction": "increase"},
          open(out + "tail-regression.json", "w"), indent=1)

# Errors out of requests per 30 s interval: canary at 10 % of traffic with 3x the error rate.
k = 40
can_total = rng.poisson(100, k)
base_total = rng.poisson(900, k)
json.dump({"canary_counts": {"bad": [int(v) for v in rng.binomial(can_total, 0.006)],
                             "total": [int(v) for v in can_total]},
           "baseline_counts": {"bad": [int(v) for v in rng.binomial(base_total, 0.002)],
                               "total": [int(v) for v in base_total]},
           "direction": "increase"},
          open(out + "error-counts.json", "w"), indent=1)

# A histogram metric: 20 steps of 30 s, Istio's buckets, cumulative `le` counts per step (as
# `increase(..._bucket[30s])` gives them); the canary (10 % of traffic) is 30 % slower.
hrng = np.random.default_rng(20261202)
bounds = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
          300000, 600000, 1800000, 3600000]


def hist_steps(n_mean, median, steps=20):
    rows = []
    for _ in range(steps):
        lat = np.exp(hrng.normal(np.log(median), 0.6, hrng.poisson(n_mean)))
        rows.append([int((lat <= b).sum()) for b in bounds] + [len(lat)])
    return rows


json.dump({"histogram": {"bounds": bounds + ["+Inf"], "canary": hist_steps(300, 52.0),
                         "baseline": hist_steps(2700, 40.0), "slower_than": 500},
           "direction": "increase", "alpha": 0.004, "effect": {"allowed_increase": 1.1}},
          open(out + "histogram-latency-regression.json", "w"))
