#!/usr/bin/python3
"""Writes tests/fixtures/metrics/gaussian_smoothing.json: maps filtered with
scipy.ndimage.gaussian_filter (truncate 4, mode "reflect"), the reference for qfae's optional
anomaly-map smoothing. Run with Debian's /usr/bin/python3 (python3-scipy comes with python3-sklearn):
    /usr/bin/python3 scripts/make_smoothing_fixture.py
"""
import json
import os

import numpy as np
import scipy
from scipy.ndimage import gaussian_filter


def main():
    rng = np.random.default_rng(7)
    cases = []
    # (height, width, sigma): small and large radii, a radius wider than the map (repeated mirroring).
    for h, w, sigma in [(9, 7, 1.0), (16, 16, 2.5), (5, 6, 4.0), (12, 10, 0.6)]:
        x = rng.random((h, w))
        y = gaussian_filter(x, sigma=sigma, mode="reflect", truncate=4.0)
        cases.append({"height": h, "width": w, "sigma": sigma,
                      "input": x.ravel().tolist(), "expected": y.ravel().tolist()})
    out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "metrics",
                       "gaussian_smoothing.json")
    with open(out, "w") as f:
        json.dump({"generator": "scipy.ndimage.gaussian_filter " + scipy.__version__,
                   "cases": cases}, f)
        f.write("\n")


if __name__ == "__main__":
    main()
