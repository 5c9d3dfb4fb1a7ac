"""Trains the two models of the XGBoost prediction benchmark (scripts/bench-xgboost), deterministically, with the
real xgboost-cpu, and saves them in XGBoost's JSON format:

    small.json  100 trees, depth 6, 20 features, reg:squarederror
    large.json  500 trees, depth 8, 50 features, binary:logistic

Usage: python train_models.py OUTPUT_DIRECTORY
"""

import sys
from pathlib import Path

import numpy as np
import xgboost as xgb

ROWS = 5_000
MISSING = 0.1  # fraction of training values that are NaN, so trees learn default directions

# (file name, trees, depth, features, objective)
MODELS = [
    ("small.json", 100, 6, 20, "reg:squarederror"),
    ("large.json", 500, 8, 50, "binary:logistic"),
]


def training_data(rng, features):
    """Normal features with some NaN, and a nonlinear target that gives every tree splits down to full depth."""
    x = rng.normal(size=(ROWS, features)).astype(np.float32)
    x[rng.random(x.shape) < MISSING] = np.nan
    z = np.nan_to_num(x)
    weights = rng.normal(size=features)
    signal = z @ weights / np.sqrt(features) + np.sin(2 * z[:, 0]) * z[:, 1] + (z[:, 2] > 0.5) * z[:, 3]
    return x, signal + rng.normal(scale=0.3, size=ROWS)


def train(name, trees, depth, features, objective, output):
    rng = np.random.default_rng(20_240 + features)
    x, signal = training_data(rng, features)
    y = (signal > np.median(signal)).astype(np.float32) if objective.startswith("binary:") else signal
    params = {
        "objective": objective,
        "tree_method": "hist",
        "max_depth": depth,
        "eta": 0.1,
        "seed": 7,
        # Small enough that late logistic trees, whose hessians are small, still split down to full depth.
        "min_child_weight": 0.1,
        "nthread": 1,
    }
    booster = xgb.train(params, xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=trees)
    path = output / name
    booster.save_model(path)
    print(f"{path}: {trees} trees, depth {depth}, {features} features, {objective}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    output = Path(sys.argv[1])
    output.mkdir(parents=True, exist_ok=True)
    for spec in MODELS:
        train(*spec, output)


if __name__ == "__main__":
    main()
