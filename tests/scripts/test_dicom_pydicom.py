#!/usr/bin/env python3
"""qfae's DICOM reader on every test DICOM of pydicom's wheel, against pydicom's own decoding.

  test_dicom_pydicom.py <qfae_tests binary> [<qfae binary> <repo root>]

For each of pydicom's data/test_files/*.dcm (79 in pydicom 3.0.1) this writes what pydicom makes
of it, then runs the gtest DicomPydicom.* (tests/io/dicom_pydicom_test.cpp) on those cases:
  values   pydicom decodes it (numpy only, or an installed plugin): qfae's first frame must equal
           pydicom's first frame with the modality rescale applied (apply_rescale), RGB for
           colour (pydicom's YBR-to-RGB conversion rounds to integers: within 1 there)
  twin     a lossless or re-encoded twin of MR_small (RLE, JPEG-LS, JPEG 2000, big endian,
           implicit VR, padded): qfae must give exactly pydicom's MR_small
  either   pydicom cannot decode it here (a compression without a plugin, no pixel data, a bad
           header): qfae must load it or refuse it with an error naming the file
and the identifiers qfae writes into scores.csv (PatientID, StudyInstanceUID, SOPInstanceUID) must be
pydicom's. Every file is read in one process: a crash or an abort on any of them fails the test.
With the qfae binary, also end to end: a tiny model (the committed tiny backbones, 2 steps) scores
a folder of pydicom's CT_small, MR_small, an extension-less copy of MR_small and rtplan.dcm with
`qfae infer`: exit 3, the three images scored with pydicom's identifiers in scores.csv, the RT
plan a row whose error says it holds no pixel data.
Exit 77 (skipped) without pydicom and numpy.
"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import pydicom
    from pydicom.pixels import apply_rescale
except ImportError as e:
    print(f"SKIP: needs pydicom and numpy ({e}); scripts/install-torch.sh installs them")
    sys.exit(77)

TWINS = ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
         "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
         "MR_small_padded.dcm"]


def first_frame(ds):
    arr = ds.pixel_array  # pydicom 3: YBR converted to RGB
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if frames > 1:
        arr = arr[0]
    if int(ds.SamplesPerPixel) == 1:
        values = apply_rescale(arr, ds).astype(np.float64)[None]
    else:
        values = np.moveaxis(arr.astype(np.float64), -1, 0)
    return values


def main():
    tests_binary = sys.argv[1]
    files = sorted((pathlib.Path(pydicom.__file__).parent / "data" / "test_files").glob("*.dcm"))
    if not files:
        print("SKIP: this pydicom has no data/test_files/*.dcm")
        sys.exit(77)
    with tempfile.TemporaryDirectory() as tmp:
        cases = []
        mr = first_frame(pydicom.dcmread(files[0].parent / "MR_small.dcm"))
        for i, f in enumerate(files):
            case = {"file": str(f), "colour": False}
            try:
                ds = pydicom.dcmread(f)
                case["ids"] = [str(ds.get(k, "") or "").strip()
                               for k in ("PatientID", "StudyInstanceUID", "SOPInstanceUID")]
                values = mr if f.name in TWINS else first_frame(ds)
                case["expect"] = "twin" if f.name in TWINS else "values"
                case["colour"] = int(ds.SamplesPerPixel) == 3
                case["shape"] = list(values.shape)
                case["values"] = f"case{i}.bin"
                values.astype("<f8").tofile(os.path.join(tmp, case["values"]))
            except Exception as e:  # noqa: BLE001 - whatever pydicom cannot decode
                case["expect"] = "either"
                case["pydicom"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
            cases.append(case)
        with open(os.path.join(tmp, "cases.json"), "w") as out:
            json.dump(cases, out, indent=1)
        counts = {k: sum(c["expect"] == k for c in cases) for k in ("values", "twin", "either")}
        print(f"{len(cases)} files: {counts}")
        env = dict(os.environ, QFAE_DICOM_CASES=tmp)
        r = subprocess.run([tests_binary, "--gtest_filter=DicomPydicom.*"], env=env)
        if r.returncode != 0:
            sys.exit(r.returncode)
        if len(sys.argv) > 3:
            infer_end_to_end(sys.argv[2], pathlib.Path(sys.argv[3]), files[0].parent,
                             pathlib.Path(tmp))


def infer_end_to_end(qfae, root, test_files, tmp):
    import csv
    import shutil

    def run(*args, expect=0):
        r = subprocess.run([qfae, *args], cwd=tmp, capture_output=True, text=True)
        if r.returncode != expect:
            sys.exit(f"FAIL: qfae {' '.join(args)} exited {r.returncode}, not {expect}:\n"
                     f"{r.stderr[-2000:]}")
        return r

    run("prepare", "--synthetic", "data", "--image-size", "32", "--train", "8", "--val", "4",
        "--test-normal", "2", "--test-anomalous", "2")
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from tiny_config import tiny_config
    (tmp / "tiny.yaml").write_text(tiny_config(
        "tiny", f"root: {tmp / 'data'}, layout: bmad, image_size: 32, workers: 1",
        "batch_size: 4, epochs: 1, log_every: 1", root))
    run("train", "--config", "tiny.yaml", "-o", "runs", "-q")
    inputs = tmp / "dicom_in"
    inputs.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm"):
        shutil.copy(test_files / name, inputs / name)
    shutil.copy(test_files / "MR_small.dcm", inputs / "mr_without_extension")
    run("infer", "--checkpoint", "runs/tiny/latest", "-o", "out", str(inputs), expect=3)
    rows = {pathlib.Path(r["path"]).name: r for r in csv.DictReader(open(tmp / "out/scores.csv"))}
    assert sorted(rows) == ["CT_small.dcm", "MR_small.dcm", "mr_without_extension",
                            "rtplan.dcm"], sorted(rows)
    for name, source in (("CT_small.dcm", "CT_small.dcm"), ("MR_small.dcm", "MR_small.dcm"),
                         ("mr_without_extension", "MR_small.dcm")):
        ds = pydicom.dcmread(test_files / source)
        row = rows[name]
        assert row["score"] and not row["error"], row
        assert (row["patient_id"], row["study_uid"], row["sop_uid"]) == (
            str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)), row
        assert (tmp / "out" / row["overlay"]).is_file(), row
    assert not rows["rtplan.dcm"]["score"], rows["rtplan.dcm"]
    assert "holds no pixel data" in rows["rtplan.dcm"]["error"], rows["rtplan.dcm"]
    print("infer on DICOM: 3 images scored with pydicom's identifiers, the RT plan named")


if __name__ == "__main__":
    main()
