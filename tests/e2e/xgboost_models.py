"""Small XGBoost models, trained deterministically with the real xgboost-cpu, for
checking Strait's built-in XGBoost runtime against XGBoost's own predictions.

Every model has missing values in its training data; some have categorical
features, dart or gblinear boosters, or several classes.
"""

from dataclasses import dataclass, field

import numpy as np
import xgboost as xgb

FEATURES = 6
ROWS = 400
CATEGORICAL_FEATURE = 5  # feature 5 holds category codes 0..6 in the categorical models


@dataclass
class TrainedModel:
    name: str
    booster: xgb.Booster
    objective: str
    features: int
    categorical: bool = False
    num_class: int = 0
    params: dict = field(default_factory=dict)

    def predict(self, rows, output_margin=False):
        feature_types = self._feature_types()
        matrix = xgb.DMatrix(
            np.asarray(rows, dtype=np.float32),
            missing=np.nan,
            feature_types=feature_types,
            enable_categorical=self.categorical,
        )
        return self.booster.predict(matrix, output_margin=output_margin)

    def _feature_types(self):
        if not self.categorical:
            return None
        return ["c" if i == CATEGORICAL_FEATURE else "q" for i in range(self.features)]


def features(rng, rows=ROWS, categorical=False, missing=0.1):
    x = rng.normal(size=(rows, FEATURES)).astype(np.float32)
    x[:, 1] *= 100.0
    x[:, 2] = np.round(x[:, 2], 2)
    if categorical:
        x[:, CATEGORICAL_FEATURE] = rng.integers(0, 7, size=rows)
    x[rng.random(x.shape) < missing] = np.nan
    return x


def _labels(objective, x, rng, num_class=3):
    signal = np.nan_to_num(x[:, 0]) + 0.01 * np.nan_to_num(x[:, 1]) - np.nan_to_num(x[:, 3])
    signal = signal + np.where(np.nan_to_num(x[:, CATEGORICAL_FEATURE]) % 2 == 1, 1.0, -0.5)
    if objective.startswith("binary:") or objective == "reg:logistic":
        return (signal + rng.normal(scale=0.5, size=len(x)) > 0).astype(np.float32)
    if objective.startswith("multi:"):
        return np.digitize(signal, np.quantile(signal, np.linspace(0, 1, num_class + 1)[1:-1])).astype(np.float32)
    if objective in ("count:poisson",):
        return rng.poisson(np.exp(np.clip(signal, -2, 2))).astype(np.float32)
    if objective in ("reg:gamma", "reg:tweedie"):
        return np.exp(np.clip(signal, -2, 2) + rng.normal(scale=0.1, size=len(x))).astype(np.float32)
    if objective == "survival:cox":
        times = np.exp(np.clip(-signal, -2, 2)) + 0.1
        censored = rng.random(len(x)) < 0.2
        return np.where(censored, -times, times).astype(np.float32)
    if objective.startswith("rank:"):
        return np.clip(np.round(signal + 2), 0, 4).astype(np.float32)
    return (signal + rng.normal(scale=0.1, size=len(x))).astype(np.float32)


# (name, params, rounds, categorical)
SPECS = [
    ("squarederror", {"objective": "reg:squarederror"}, 20, False),
    ("logistic", {"objective": "reg:logistic"}, 10, False),
    ("pseudohuber", {"objective": "reg:pseudohubererror"}, 10, False),
    ("absoluteerror", {"objective": "reg:absoluteerror"}, 10, False),
    ("binary-logistic", {"objective": "binary:logistic"}, 20, False),
    ("binary-logitraw", {"objective": "binary:logitraw"}, 10, False),
    ("binary-hinge", {"objective": "binary:hinge"}, 10, False),
    ("poisson", {"objective": "count:poisson"}, 10, False),
    ("gamma", {"objective": "reg:gamma"}, 10, False),
    ("tweedie", {"objective": "reg:tweedie", "tweedie_variance_power": 1.3}, 10, False),
    ("softmax", {"objective": "multi:softmax", "num_class": 3}, 8, False),
    ("softprob", {"objective": "multi:softprob", "num_class": 3}, 8, False),
    ("pairwise", {"objective": "rank:pairwise"}, 10, False),
    ("ndcg", {"objective": "rank:ndcg"}, 10, False),
    ("cox", {"objective": "survival:cox"}, 10, False),
    ("categorical", {"objective": "binary:logistic", "max_cat_to_onehot": 1}, 20, True),
    ("categorical-onehot", {"objective": "reg:squarederror", "max_cat_to_onehot": 16}, 10, True),
    ("dart", {"objective": "binary:logistic", "booster": "dart", "rate_drop": 0.3, "skip_drop": 0.0}, 10, False),
    ("gblinear", {"objective": "reg:squarederror", "booster": "gblinear"}, 10, False),
    ("gblinear-softprob", {"objective": "multi:softprob", "num_class": 3, "booster": "gblinear"}, 10, False),
]


def train_all(seed=7):
    """Trains every model of SPECS; returns a list of TrainedModel."""
    models = []
    for index, (name, params, rounds, categorical) in enumerate(SPECS):
        rng = np.random.default_rng(seed + index)
        x = features(rng, categorical=categorical)
        objective = params["objective"]
        num_class = params.get("num_class", 3)
        y = _labels(objective, x, rng, num_class)
        feature_types = ["c" if i == CATEGORICAL_FEATURE else "q" for i in range(FEATURES)] if categorical else None
        matrix = xgb.DMatrix(x, label=y, missing=np.nan, feature_types=feature_types, enable_categorical=categorical)
        if objective.startswith("rank:"):
            matrix.set_group([ROWS // 4] * 4)
        full = {"eta": 0.3, "seed": seed, "nthread": 1, **params}
        if params.get("booster") != "gblinear":
            full.update(max_depth=4, tree_method="hist")
        booster = xgb.train(full, matrix, num_boost_round=rounds)
        models.append(
            TrainedModel(
                name=name,
                booster=booster,
                objective=objective,
                features=FEATURES,
                categorical=categorical,
                num_class=params.get("num_class", 0),
                params=full,
            )
        )
    return models
