#!/usr/bin/env python3
"""The report pages in a real browser: headless Chromium (Debian's chromium and chromium-driver,
driven through Debian's python3-selenium) opens, from disk, the pages of a short demo run: the
training page, its eval page, a two-seed summary page, an infer page, and an eval page whose image
names hold markup, quotes, '&', '#', '%' and non-ASCII characters. It fails on any console error or
failed request, and checks the pages against the files they show:
  - every number in the metrics tables equals metrics.json (to the digits shown);
  - the gallery's false-positive / false-negative / anomalous / normal filters show exactly the
    images scores.csv says, through every page of the gallery;
  - each curve's SVG polyline has as many points as curves.json holds for it; the loss chart as
    many as metrics.jsonl has training steps;
  - the summary's numbers equal summary.csv and its links lead to each run's page;
  - odd image names appear as text, never as markup.
A screenshot of each page goes to OUT_DIR. Without Chromium, its driver or Selenium it prints
SKIP and exits 77 (scripts/test.sh installs them, so CI always runs it).
Usage: test_report_browser.py QFAE SOURCE_DIR OUT_DIR
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
BRAIN = "/usr/share/mricron/templates/ch2bet.nii.gz"
# The name the escaping case gives one image (no '/': it is one file name).
ODD = "odd <b>bold <i>x &amp; \"q\" 'a' #1 %20 ü名 <img src=nope onerror=\"document.title='injected'\">"

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL:", what)


def run(cmd, ok_codes=(0,)):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode not in ok_codes:
        sys.exit(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pointer(doc, ptr):
    for part in ptr.strip("/").split("/"):
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return None
    return doc


def shown_equals(text, value):
    """A number shown with d decimals equals value to within half its last digit."""
    if value is None:
        return text == "–"
    try:
        shown = float(text)
    except ValueError:
        return False
    decimals = len(text.split(".")[1]) if "." in text else 0
    return abs(shown - float(value)) <= 0.5 * 10 ** -decimals + 1e-12


def make_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
              "--disable-dev-shm-usage"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def open_page(d, page, shot):
    """Opens page, loads every gallery image (lazy ones too), saves a full-height screenshot and
    fails on console errors and on images that did not load."""
    d.get(page.as_uri())
    broken = d.execute_async_script("""
      const done = arguments[arguments.length - 1];
      const imgs = Array.from(document.images);
      imgs.forEach(i => { i.loading = 'eager'; });
      Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
        i.addEventListener('load', r); i.addEventListener('error', r); })))
        .then(() => done(imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src)));
    """)
    check(not broken, f"{page}: images that did not load: {broken[:3]}")
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1400, min(max(height, 600), 12000))
    time.sleep(0.2)
    d.save_screenshot(str(shot))
    d.set_window_size(1400, 1000)
    errors = [e for e in d.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    check(not errors, f"{page}: console errors or failed requests: {errors[:3]}")


def gallery_paths(d, filter_id):
    """The data-path of every card the filter shows, through all the gallery's pages."""
    from selenium.webdriver.common.by import By
    d.find_element(By.CSS_SELECTOR, f"#gallery-filters button[data-filter='{filter_id}']").click()
    paths = []
    while True:
        paths += [c.get_attribute("data-path") for c in d.find_elements(By.CSS_SELECTOR, "#gallery .card")]
        nxt = d.find_element(By.CSS_SELECTOR, "#gallery-pager .next")
        if not nxt.is_enabled():
            return paths
        nxt.click()


def polyline_points(d, svg_id, series):
    from selenium.webdriver.common.by import By
    found = d.find_elements(By.CSS_SELECTOR, f"svg#{svg_id} polyline[data-series='{series}']")
    if not found:
        return -1
    return len(found[0].get_attribute("points").split())


def check_eval_page(d, folder, shots, tag):
    from selenium.webdriver.common.by import By
    page = folder / "report.html"
    open_page(d, page, shots / f"{tag}.png")
    metrics = json.loads((folder / "metrics.json").read_text())
    cells = d.find_elements(By.CSS_SELECTOR, "[data-pointer]")
    check(len(cells) >= 10, f"{tag}: only {len(cells)} numbers carry data-pointer")
    for c in cells:
        ptr = c.get_attribute("data-pointer")
        check(shown_equals(c.text.strip(), pointer(metrics, ptr)),
              f"{tag}: {ptr} shows '{c.text}', metrics.json has {pointer(metrics, ptr)}")
    rows = read_csv(folder / "scores.csv")
    expect = {
        "fp": {r["path"] for r in rows if r["label"] == "0" and r.get("anomalous") == "1"},
        "fn": {r["path"] for r in rows if r["label"] == "1" and r.get("anomalous") == "0"},
        "anomalous": {r["path"] for r in rows if r["label"] == "1"},
        "normal": {r["path"] for r in rows if r["label"] == "0"},
        "all": {r["path"] for r in rows},
    }
    for fid, want in expect.items():
        got = gallery_paths(d, fid)
        check(len(got) == len(set(got)), f"{tag}: filter {fid} shows an image twice")
        check(set(got) == want, f"{tag}: filter {fid} shows {len(got)} images "
              f"({sorted(set(got) - want)[:2]} extra, {sorted(want - set(got))[:2]} missing); "
              f"scores.csv says {len(want)}")
    curves = json.loads((folder / "curves.json").read_text())
    for level in ("image", "pixel"):
        if level not in curves:
            continue
        check(polyline_points(d, "roc-curve", level) == len(curves[level]["roc"]["fpr"]),
              f"{tag}: ROC {level}: {polyline_points(d, 'roc-curve', level)} SVG points, "
              f"curves.json has {len(curves[level]['roc']['fpr'])}")
        check(polyline_points(d, "pr-curve", level) == len(curves[level]["pr"]["recall"]),
              f"{tag}: PR {level}: {polyline_points(d, 'pr-curve', level)} SVG points, "
              f"curves.json has {len(curves[level]['pr']['recall'])}")
    # The table: every row counted, the score column sorted highest first on a click.
    pager = d.find_element(By.CSS_SELECTOR, "#table-pager span").text
    check(f"{len(rows)} images" in pager, f"{tag}: the table's pager says '{pager}' for {len(rows)} rows")
    d.find_element(By.CSS_SELECTOR, "#rows-table th button[title='sort by score']").click()
    first = d.find_element(By.CSS_SELECTOR, "#rows-table tbody tr").get_attribute("data-row")
    best = max(range(len(rows)), key=lambda i: float(rows[i]["score"]))
    check(float(rows[int(first)]["score"]) == float(rows[best]["score"]),
          f"{tag}: sorted by score, the first row is {first}, not the highest score's {best}")
    return rows


def check_run_page(d, run, shots):
    from selenium.webdriver.common.by import By
    open_page(d, run / "report.html", shots / "train.png")
    events = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]
    steps = sum(1 for e in events if e.get("event") == "train")
    vals = sum(1 for e in events if e.get("event") == "val")
    check(polyline_points(d, "loss-chart", "training loss") == steps,
          f"train: the loss chart has {polyline_points(d, 'loss-chart', 'training loss')} points, "
          f"metrics.jsonl {steps} training steps")
    check(polyline_points(d, "val-loss-chart", "validation loss") == vals,
          f"train: the validation chart has {polyline_points(d, 'val-loss-chart', 'validation loss')}"
          f" points, metrics.jsonl {vals} validations")
    best = json.loads((run / "checkpoints/best/state.json").read_text())["step"]
    marks = [m.text for m in d.find_elements(By.CSS_SELECTOR, "#loss-chart .marker text")]
    check(marks == ["best"], f"train: the loss chart's markers are {marks}, expected the best one")
    check(f"step {best}," in d.find_element(By.ID, "run-section").text,
          f"train: the page does not name the best checkpoint's step {best}")


def check_summary_page(d, summary, shots):
    from selenium.webdriver.common.by import By
    open_page(d, summary / "report.html", shots / "summary.png")
    table = read_csv(summary / "summary.csv")
    runs = [r for r in table if r["results"]]
    trs = d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    check(len(trs) == len(runs), f"summary: {len(trs)} run rows, summary.csv has {len(runs)}")
    for tr, r in zip(trs, runs):
        link = tr.find_element(By.CSS_SELECTOR, "a").get_attribute("href")
        check(link.startswith("file://") and Path(link[7:]).resolve() ==
              (summary / r["results"] / "report.html").resolve(), f"summary: {r['run']} links to {link}")
        for td in tr.find_elements(By.CSS_SELECTOR, "td[data-column]"):
            col = td.get_attribute("data-column")
            want = float(r[col]) if r[col] else None
            check(shown_equals(td.text.strip(), want), f"summary: {r['run']} {col} shows '{td.text}', "
                  f"summary.csv has {r[col]}")
    means = d.find_elements(By.CSS_SELECTOR, "#means tbody tr")
    check(len(means) == sum(1 for r in table if r["run"].endswith(" mean")),
          f"summary: {len(means)} mean ± std rows")
    charts = d.find_elements(By.CSS_SELECTOR, "#charts-section svg.chart")
    check(len(charts) >= 3, f"summary: {len(charts)} charts across seeds")


def check_infer_page(d, folder, shots):
    open_page(d, folder / "report.html", shots / "infer.png")
    rows = read_csv(folder / "scores.csv")
    for fid, want in (("errors", {r["path"] for r in rows if r["error"]}),
                      ("flagged", {r["path"] for r in rows if r.get("anomalous") == "1"}),
                      ("all", {r["path"] for r in rows})):
        got = gallery_paths(d, fid)
        check(set(got) == want and len(got) == len(want),
              f"infer: filter {fid} shows {len(got)} images, scores.csv says {len(want)}")
    check(any(r["error"] for r in rows), "infer: the missing input has no error row")


def check_escaping(d, eval_dir, work, shots):
    """A copy of the eval folder in which one image, the run's name and its checkpoint carry ODD."""
    from selenium.webdriver.common.by import By
    odd_dir = work / "odd-names"
    shutil.copytree(eval_dir, odd_dir)
    (odd_dir / "report.html").unlink()
    rows = read_csv(odd_dir / "scores.csv")
    with open(odd_dir / "scores.csv", newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    victim = next(r for r in rows if r["overlay"])
    old_overlay = victim["overlay"]
    victim["overlay"] = str(Path(old_overlay).parent / (ODD + ".png"))
    (odd_dir / old_overlay).rename(odd_dir / victim["overlay"])
    victim["path"] = str(Path(victim["path"]).parent / (ODD + ".png"))
    with open(odd_dir / "scores.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    metrics = json.loads((odd_dir / "metrics.json").read_text())
    metrics["name"] = ODD
    metrics["checkpoint"] = "/runs/" + ODD
    (odd_dir / "metrics.json").write_text(json.dumps(metrics))
    run([QFAE, "report", odd_dir])
    open_page(d, odd_dir / "report.html", shots / "odd-names.png")
    check(d.title == f"qfae eval: {ODD} on test", f"odd names: the page's title is '{d.title}' "
          "(a name's onerror ran, or the name was not read as text)")
    check(not d.find_elements(By.CSS_SELECTOR, "img[src='nope'], main b, header b, main i, header i"),
          "odd names: a name was read as markup")
    check(ODD in d.find_element(By.TAG_NAME, "h1").text, "odd names: the title does not show the name")
    check(("/runs/" + ODD) in d.find_element(By.ID, "run-section").text,
          "odd names: the checkpoint is not shown as text")
    names = [e.get_attribute("textContent") for e in d.find_elements(By.CSS_SELECTOR, "#gallery .card .name")]
    names += [e.get_attribute("textContent")
              for e in d.find_elements(By.CSS_SELECTOR, "#rows-table tbody td:first-child")]
    paths = gallery_paths(d, "all")
    check(victim["path"] in paths, "odd names: the gallery has no card for the odd name")
    while d.find_element(By.CSS_SELECTOR, "#table-pager .next").is_enabled():
        d.find_element(By.CSS_SELECTOR, "#table-pager .next").click()
        names += [e.get_attribute("textContent")
                  for e in d.find_elements(By.CSS_SELECTOR, "#rows-table tbody td:first-child")]
    check(victim["path"] in names, "odd names: the table does not show the odd path as text")


def main():
    global QFAE
    QFAE, source, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    for need, how in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver"), (BRAIN, "mricron-data")):
        if not Path(need).exists():
            print(f"SKIP: {need} is missing: install Debian's {how} "
                  "(bash scripts/install-deps.sh --with-browser does; scripts/test.sh does)")
            sys.exit(77)
    try:
        import selenium  # noqa: F401
    except ImportError:
        print(f"SKIP: {sys.executable} has no selenium: install Debian's python3-selenium "
              "(bash scripts/install-deps.sh --with-browser does; scripts/test.sh does)")
        sys.exit(77)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    work = Path(tempfile.mkdtemp(prefix="qfae_report_"))
    try:
        data, runs = work / "data", work / "runs"
        run([QFAE, "prepare", "--volume", BRAIN, "--out", data, "--image-size", "64",
             "--synthetic-lesions", "--lesion-copies", "2", "--lesion-size", "0.08", "0.16"])
        for seed in (1, 2):
            run([QFAE, "train", "--config", source / "configs/demo.yaml", "-q",
                 "--set", f"data.root={data}", "--set", f"output_dir={runs}",
                 "--set", f"name=demo-seed{seed}", "--set", f"train.seed={seed}",
                 "--set", "train.epochs=6", "--set", "train.eval_every=2",
                 "--set", "train.log_every=1", "--set", "eval.bootstrap=50"])
        run1, run2 = runs / "demo-seed1/latest", runs / "demo-seed2/latest"
        run([QFAE, "eval", "--checkpoint", run1, "-q"])
        run([QFAE, "eval", "--checkpoint", run1, "--checkpoint", run2, "-o", work / "summary", "-q"])
        images = sorted((data / "test").rglob("*.png"))[:5]
        run([QFAE, "infer", "--checkpoint", run1, "-o", work / "infer", "-q", *images,
             work / "missing.png"], ok_codes=(3,))
        run([QFAE, "report", run1])  # the run page again, now linking its eval page
        d = make_driver()
        try:
            eval_dir = run1 / "eval/test-last"
            check_eval_page(d, eval_dir, out, "eval")
            check_run_page(d, run1, out)
            check_summary_page(d, work / "summary", out)
            check_infer_page(d, work / "infer", out)
            check_escaping(d, eval_dir, work, out)
        finally:
            d.quit()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")
    print(f"report pages checked in Chromium; screenshots in {out}")


if __name__ == "__main__":
    main()
