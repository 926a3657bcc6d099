#!/usr/bin/python3
"""Writes tests/fixtures/metrics/sklearn_cases.json: reference values from scikit-learn for the
qfae metric tests (image AUROC/AP/F1-max on seeded random cases; pooled pixel AUROC/AP/F1 on tiny
maps). Run with Debian's /usr/bin/python3 and python3-sklearn:
    /usr/bin/python3 scripts/make_metric_fixtures.py
"""
import json
import os

import numpy as np
import sklearn
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score


def f1_max(labels, scores):
    precision, recall, _ = precision_recall_curve(labels, scores)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * precision * recall / (precision + recall)
    return float(np.nanmax(f1))


def reference(labels, scores):
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "ap": float(average_precision_score(labels, scores)),
        "f1_max": f1_max(labels, scores),
    }


def image_cases():
    rng = np.random.default_rng(20261128)
    cases = []
    for n, ties, rate in [(10, False, 0.4), (37, True, 0.3), (120, False, 0.5), (250, True, 0.2),
                          (500, False, 0.1), (500, True, 0.6)]:
        labels = (rng.random(n) < rate).astype(int)
        labels[0], labels[1] = 0, 1  # both classes always present
        scores = rng.normal(size=n) + 0.8 * labels
        if ties:
            scores = np.round(scores * 2) / 2  # few distinct values: many ties across classes
        case = {"name": f"n{n}_{'ties' if ties else 'distinct'}", "labels": labels.tolist(),
                "scores": scores.tolist()}
        case.update(reference(labels, scores))
        cases.append(case)
    return cases


def pixel_case():
    # Three 8x8 maps (one normal, two with lesions). "edges" scores are multiples of 2^-16, exact
    # bin edges of a 2^16-bin histogram over [0, 1]; "random" scores are arbitrary float32 values.
    rng = np.random.default_rng(7)
    masks = np.zeros((3, 8, 8), dtype=int)
    masks[1, 2:5, 2:5] = 1
    masks[2, 0:2, 5:8] = 1
    masks[2, 6, 1] = 1
    random_maps = np.clip(rng.normal(0.4, 0.15, size=masks.shape) + 0.2 * masks, 0, 1)
    random_maps = random_maps.astype(np.float32).astype(np.float64)
    edge_maps = np.round(random_maps * 64) * 1024 / 65536.0  # coarse: ties across classes
    out = {"masks": masks.tolist(), "lo": 0.0, "hi": 1.0, "bins": 65536}
    for name, maps in [("edges", edge_maps), ("random", random_maps)]:
        ref = reference(masks.ravel(), maps.ravel())
        out[name] = {"maps": maps.tolist(), "auroc": ref["auroc"], "ap": ref["ap"],
                     "best_dice": ref["f1_max"]}
    return out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(root, "tests", "fixtures", "metrics", "sklearn_cases.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    doc = {"sklearn_version": sklearn.__version__, "image": image_cases(), "pixel": pixel_case()}
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
