#!/usr/bin/env python3
"""How large an eval page is and how fast it opens for a big test set: makes an eval folder of N
images (default 10 000) from a real one (its metrics.json and one overlay, hard-linked for every
row), has `qfae report` write its page, and opens it in headless Chromium (Debian's chromium,
chromium-driver and python3-selenium) a few times, printing the page's size, the time qfae took
to write it, and the browser's first contentful paint and load times (medians).

Usage: scripts/checks/report_page_timing.py QFAE EVAL_FOLDER [--images N] [--repeats K]
  e.g. /usr/bin/python3 scripts/checks/report_page_timing.py build/qfae runs/demo/latest/eval/test-last
"""
import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def make_folder(source: Path, out: Path, n: int):
    metrics = json.loads((source / "metrics.json").read_text())
    overlay = next((source / "maps").rglob("*.png"))
    rng = random.Random(0)
    anomalous = n // 2
    threshold = metrics.get("decisions", {}).get("threshold", 0.5)
    (out / "maps/normal").mkdir(parents=True)
    (out / "maps/anomalous").mkdir(parents=True)
    lines = ["path,label,score,dice,anomalous,overlay"]
    for i in range(n):
        label = 1 if i < anomalous else 0
        score = rng.gauss(0.04 if label else 0.02, 0.01)
        kind = "anomalous" if label else "normal"
        name = f"case_{i:05d}"
        rel = f"maps/{kind}/{name}.png"
        os.link(overlay, out / rel)
        dice = f"{rng.random():.6f}" if label else ""
        lines.append(f"/data/brats/test/{'Ungood' if label else 'good'}/img/{name}.png,{label},"
                     f"{score:.9g},{dice},{int(score >= threshold)},{rel}")
    (out / "scores.csv").write_text("\n".join(lines) + "\n")
    metrics["dataset"].update(images=n, anomalous=anomalous, normal=n - anomalous)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    for f in ("config.yaml",):
        if (source / f).exists():
            shutil.copy(source / f, out / f)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("qfae")
    ap.add_argument("eval_folder", type=Path)
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    work = Path(tempfile.mkdtemp(prefix="qfae_page_timing_"))
    try:
        folder = work / "eval"
        make_folder(a.eval_folder, folder, a.images)
        t0 = time.perf_counter()
        subprocess.run([a.qfae, "report", str(folder)], check=True, capture_output=True)
        write_s = time.perf_counter() - t0
        size = (folder / "report.html").stat().st_size
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
            opts.add_argument(arg)
        d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
        paints, loads, interactive = [], [], []
        try:
            for _ in range(a.repeats):
                d.get("about:blank")
                d.get((folder / "report.html").as_uri())
                # Paint entries are buffered: an observer started after the paint still gets it.
                t = d.execute_async_script("""
                  const done = arguments[arguments.length - 1];
                  const nav = performance.getEntriesByType('navigation')[0];
                  new PerformanceObserver(list => {
                    const fcp = list.getEntries().find(e => e.name === 'first-contentful-paint');
                    if (fcp) done([fcp.startTime, nav.domInteractive, nav.loadEventEnd]);
                  }).observe({type: 'paint', buffered: true});
                  setTimeout(() => done([-1, nav.domInteractive, nav.loadEventEnd]), 5000);""")
                paints.append(t[0])
                interactive.append(t[1])
                loads.append(t[2])
            cards = d.execute_script("return document.querySelectorAll('#gallery .card').length")
            table = d.execute_script("return document.querySelectorAll('#rows-table tbody tr').length")
        finally:
            d.quit()
        print(f"{a.images} images: report.html {size / 1024:.0f} KiB, written by qfae report in "
              f"{write_s:.2f} s (process included)")
        print(f"Chromium, median of {a.repeats}: first contentful paint {statistics.median(paints):.0f} ms, "
              f"DOM interactive {statistics.median(interactive):.0f} ms, load {statistics.median(loads):.0f} ms "
              f"(gallery shows {cards} cards, table {table} rows per page)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
