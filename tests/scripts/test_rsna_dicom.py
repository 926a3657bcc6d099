#!/usr/bin/env python3
"""data.layout: rsna-dicom on a synthetic RSNA challenge tree, from indexing to train, eval, infer.

  test_rsna_dicom.py <qfae_tests binary> <qfae binary> <repo root>

scripts/fixtures/make_rsna_fixture.py writes 42 patients as the challenge distributes them (24
Normal, 12 Lung Opacity with one patient of two boxes and one box past the edge, 6 "No Lung Opacity
/ Not Normal"). This script draws what each mask must be with numpy (the union of the patient's
boxes, sliced pixel by pixel) and what each image must be with pydicom, then runs the gtest
RsnaDicomPydicom.* (tests/data/rsna_dicom_pydicom_test.cpp) on them. End to end with the committed
tiny backbones: train writes split.csv (the patients of each split, with their boxes) and the
summary says the masks are boxes; eval's metrics.json has pixel metrics, the dataset notes and the
DICOM counts, scores.csv the identifiers; infer names them too; no output file holds the PatientName
or PatientBirthDate. Bad input: a label row whose image is missing, an image in no label row and a
truncated .dcm stop with exit 2 naming the file, and under data.on_bad_image: skip are listed in
skipped_images.tsv while training goes on.
Exit 77 (skipped) without pydicom and numpy.
"""
import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import pydicom
except ImportError as e:
    print(f"SKIP: needs pydicom and numpy ({e}); scripts/install-torch.sh installs them")
    sys.exit(77)


def main():
    tests_binary, qfae, root = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    sys.path.insert(0, str(root / "scripts" / "fixtures"))
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    import make_rsna_fixture

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        tree = tmp / "rsna"
        made = make_rsna_fixture.make(tree)
        size = 48
        (tree / "pixels").mkdir()
        (tree / "masks").mkdir()
        for pid, p in made.items():
            ds = pydicom.dcmread(tree / "stage_2_train_images" / f"{pid}.dcm")
            ds.pixel_array.astype(np.uint8).tofile(tree / "pixels" / f"{pid}.u8")
            mask = np.zeros((size, size), np.uint8)
            for x, y, w, h in p["boxes"]:
                mask[y:y + h, x:x + w] = 1
            mask.tofile(tree / "masks" / f"{pid}.u8")
        env = dict(os.environ, QFAE_RSNA_TREE=str(tree))
        r = subprocess.run([tests_binary, "--gtest_filter=RsnaDicomPydicom.*"], env=env)
        if r.returncode != 0:
            sys.exit(r.returncode)
        end_to_end(qfae, root, tree, tmp, made)


def run(qfae, tmp, *args, expect=0):
    r = subprocess.run([qfae, *args], cwd=tmp, capture_output=True, text=True)
    if r.returncode != expect:
        sys.exit(f"FAIL: qfae {' '.join(args)} exited {r.returncode}, not {expect}:\n"
                 f"{r.stderr[-3000:]}")
    return r


def config(tmp, root, data_root, name, extra=""):
    from tiny_config import tiny_config
    path = tmp / f"{name}.yaml"
    path.write_text(tiny_config(
        name, f"root: {data_root}, layout: rsna-dicom, image_size: 32, workers: 1, "
        f"dicom_window: stored, test_size: [4, 8], val_size: [2, 2]{extra}",
        "batch_size: 1, epochs: 1, log_every: 1, seed: 3", root))  # batch 1: every image read
    return path.name


def never_written(folder, made_tree):
    expected = json.loads((made_tree / "expected.json").read_text())
    for f in pathlib.Path(folder).rglob("*"):
        if f.is_file() and f.suffix in (".csv", ".json", ".jsonl", ".yaml", ".tsv", ".md", ".txt"):
            text = f.read_text(errors="replace")
            for secret in (expected["patient_name"], expected["birth_date"]):
                assert secret not in text, f"{f} holds header data it must not: {secret}"


def end_to_end(qfae, root, tree, tmp, made):
    run(qfae, tmp, "train", "--config", config(tmp, root, tree, "rsna"), "-o", "runs", "-q")
    run_dir = (tmp / "runs" / "rsna" / "latest").resolve()
    rows = list(csv.DictReader(open(run_dir / "split.csv")))
    by_split = {s: [r for r in rows if r["split"] == s] for s in ("train", "val", "test")}
    assert [len(by_split[s]) for s in ("train", "val", "test")] == [18, 4, 12], \
        {s: len(v) for s, v in by_split.items()}
    for r in rows:
        p = made[r["subject"]]
        assert r["category"] == p["class"], r
        boxes = [list(map(float, b.split())) for b in r["boxes"].split(";") if b]
        assert boxes == [list(map(float, b)) for b in p["boxes"]], (r, p["boxes"])
    log = (run_dir / "metrics.jsonl").read_text()
    run(qfae, tmp, "eval", "--checkpoint", "runs/rsna/latest", "-o", "eval")
    m = json.loads((tmp / "eval" / "metrics.json").read_text())
    assert m["pixel"] is not None and m["pixel"]["anomalous_images"] == 8, m["pixel"]
    notes = " ".join(m["dataset"]["notes"])
    assert "boxes, not outlines" in notes and "is left out (6 patients" in notes, notes
    assert m["dataset"]["dicom"]["images"] == 12 and m["dataset"]["dicom"]["patients"] == 12, \
        m["dataset"]
    scores = list(csv.DictReader(open(tmp / "eval" / "scores.csv")))
    test_ids = {r["subject"] for r in by_split["test"]}
    assert {r["patient_id"] for r in scores} == test_ids
    for r in scores:
        assert r["sop_uid"] == made[r["patient_id"]]["sop_uid"], r
    run(qfae, tmp, "infer", "--checkpoint", "runs/rsna/latest", "-o", "infer",
        str(tree / "stage_2_train_images"))
    inferred = list(csv.DictReader(open(tmp / "infer" / "scores.csv")))
    assert len(inferred) == len(made) and all(r["patient_id"] in made for r in inferred)
    for folder in (run_dir, tmp / "eval", tmp / "infer"):
        never_written(folder, tree)
    print(f"train/eval/infer on rsna-dicom: split.csv {len(rows)} rows, pixel AUROC "
          f"{m['pixel']['auroc']:.3f} over {m['pixel']['anomalous_images']} boxed images")
    bad_input(qfae, root, tree, tmp, made, rows)


def bad_input(qfae, root, tree, tmp, made, first_split):
    images = tree / "stage_2_train_images"
    normals = sorted(pid for pid, p in made.items() if p["class"] == "Normal")
    train_ids = sorted(r["subject"] for r in first_split if r["split"] == "train")
    missing_id = next(pid for pid in normals if pid != train_ids[0])
    # A label row whose image is missing.
    missing = images / f"{missing_id}.dcm"
    shutil.move(missing, tmp / "gone.dcm")
    # An image in no label row.
    stray = images / "not-in-the-csv.dcm"
    shutil.copy(tmp / "gone.dcm", stray)
    # A truncated file (read when loaded, not when indexed): a patient of the first run's train
    # split, where a run with every patient puts it again (same seed, same patients).
    cut = images / f"{train_ids[0]}.dcm"
    data = cut.read_bytes()
    cut.write_bytes(data[:len(data) // 3])
    name = config(tmp, root, tree, "bad")
    r = run(qfae, tmp, "train", "--config", name, "-o", "runs_bad", "-q", expect=2)
    assert str(missing) in r.stderr, r.stderr[-2000:]
    shutil.move(tmp / "gone.dcm", missing)
    r = run(qfae, tmp, "train", "--config", name, "-o", "runs_bad", "-q", expect=2)
    assert str(stray) in r.stderr and "is in no row" in r.stderr, r.stderr[-2000:]
    shutil.move(stray, tmp / "stray.dcm")
    r = run(qfae, tmp, "train", "--config", name, "-o", "runs_bad", "-q", expect=2)
    assert str(cut) in r.stderr, r.stderr[-2000:]
    # Under skip all three are left out by name and the run goes on.
    shutil.move(missing, tmp / "gone.dcm")
    shutil.move(tmp / "stray.dcm", stray)
    run(qfae, tmp, "train", "--config", config(tmp, root, tree, "skip", ", on_bad_image: skip"),
        "-o", "runs_skip", "-q")
    skip_dir = tmp / "runs_skip" / "skip" / "latest"
    listed = (skip_dir / "skipped_images.tsv").read_text()
    assert str(missing) in listed and str(stray) in listed, listed
    split_of_cut = next(r["split"] for r in csv.DictReader(open(skip_dir / "split.csv"))
                        if r["image"] == str(cut))
    if split_of_cut == "test":  # training never reads it: eval does
        run(qfae, tmp, "eval", "--checkpoint", "runs_skip/skip/latest", "-o", "eval_skip")
        notes = json.loads((tmp / "eval_skip" / "metrics.json").read_text())["notes"]
        assert any(str(cut) in n for n in notes), notes
    else:
        assert str(cut) in listed, listed
    print("bad input: a missing image, an unlisted one and a truncated one stop the run by name; "
          f"under skip they are listed (the truncated one in {split_of_cut})")


if __name__ == "__main__":
    main()
