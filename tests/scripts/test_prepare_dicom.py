#!/usr/bin/env python3
"""qfae prepare --dicom on a synthetic CT series must write exactly what --volume writes from the
same volume as NIfTI, and must refuse broken series naming them.

  test_prepare_dicom.py <qfae binary>

The CT (40 x 36 x 12 int16 with RescaleSlope 1.5 and RescaleIntercept -1024, a body, a bright
blob with its NIfTI label) is written twice:
  DICOM  with pydicom, one file per slice, in shuffled order under random names (some `.dcm`,
         some extension-less, some in a sub-folder) with shuffled InstanceNumbers, an oblique
         ImageOrientationPatient (12 and 10 degrees about two axes) and anisotropic spacing
         (0.7 x 0.8 mm in plane, 2.5 mm between slices), beside a file that is not DICOM
  NIfTI  with nibabel, float32 modality values, the affine being the DICOM geometry from LPS to
         RAS (first two rows negated)
once with the slices stacked towards the head (axes LPS) and once with the columns running
anterior and the slices towards the feet (LAI). `prepare --dicom D --label L` and `prepare
--volume V --label L` with the same options must give the same files, byte for byte (16-bit
PNGs, lesioned copies included), and manifests that agree on size, axes and spacing.
Then the cases that must exit 2 naming the series and its files: a duplicate position, a gap, mixed
sizes, mixed orientations, a single slice, two series with --label, a `.dcm` that is not DICOM,
a folder without DICOM; and a folder of two series without --label gives two subjects.
Exit 77 (skipped) without pydicom, numpy and nibabel, or when qfae has no DICOM or NIfTI support.
"""
import json
import math
import pathlib
import subprocess
import sys
import tempfile

try:
    import nibabel as nib
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
except ImportError as e:
    print(f"SKIP: needs pydicom, numpy and nibabel ({e}); scripts/install-torch.sh installs them")
    sys.exit(77)

W, H, D = 40, 36, 12  # columns, rows, slices
SLOPE, INTERCEPT = 1.5, -1024.0
ROW_SPACING, COL_SPACING, STEP = 0.8, 0.7, 2.5
OPTIONS = ["--bit-depth", "16", "--split-by", "slice", "--block", "2", "--gap", "0",
           "--split", "0.5", "0", "0.5", "--synthetic-lesions", "--seed", "5"]


def ct_volume():
    """Stored int16 values (D, H, W) and the lesion label (D, H, W)."""
    rng = np.random.default_rng(7)
    k, j, i = np.meshgrid(np.arange(D), np.arange(H), np.arange(W), indexing="ij")
    body = ((i - 19.5) / 17) ** 2 + ((j - 17) / 15) ** 2 < 1
    stored = np.where(body, 700 + 40 * np.sin(i / 3.0) + rng.normal(0, 15, body.shape), 0)
    blob = ((i - 26) / 4) ** 2 + ((j - 14) / 3.5) ** 2 + ((k - 6) / 1.2) ** 2 < 1
    stored = np.where(blob, 1100 + rng.normal(0, 10, body.shape), stored)
    return np.round(stored).astype(np.int16), blob.astype(np.uint8)


def rotation(deg_z, deg_x):
    z, x = math.radians(deg_z), math.radians(deg_x)
    rz = np.array([[math.cos(z), -math.sin(z), 0], [math.sin(z), math.cos(z), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, math.cos(x), -math.sin(x)], [0, math.sin(x), math.cos(x)]])
    return rz @ rx


def ds_text(x):
    return f"{x:.6f}"


class Series:
    """Where each slice lies: the DICOM strings, and the same numbers as they will be read."""

    def __init__(self, row_dir, col_dir, origin=(-14.0, -12.5, 30.0), step=STEP):
        self.iop = [ds_text(v) for v in (*row_dir, *col_dir)]
        cos = np.array([float(v) for v in self.iop])
        self.row, self.col = cos[:3], cos[3:]
        normal = np.cross(self.row, self.col)
        self.ipp = [[ds_text(v) for v in np.array(origin) + k * step * normal] for k in range(D)]
        self.uid, self.study = generate_uid(), generate_uid()

    def affine_ras(self):
        first, last = (np.array([float(v) for v in self.ipp[k]]) for k in (0, D - 1))
        lps = np.eye(4)
        lps[:3, 0] = self.row * COL_SPACING
        lps[:3, 1] = self.col * ROW_SPACING
        lps[:3, 2] = (last - first) / (D - 1)
        lps[:3, 3] = first
        return np.diag([-1, -1, 1, 1]) @ lps


def write_slice(path, pixels, series, k, instance, number=1, iop=None):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID = "CT", "qfae-test"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = series.study, series.uid
    ds.SeriesNumber, ds.InstanceNumber = number, instance
    ds.ImagePositionPatient = series.ipp[k]
    ds.ImageOrientationPatient = iop or series.iop
    ds.PixelSpacing = [ds_text(ROW_SPACING), ds_text(COL_SPACING)]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = ds_text(SLOPE), ds_text(INTERCEPT)
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_series(folder, stored, series, rng, skip=(), number=1, edit=None):
    """One file a slice, in shuffled order, random names and InstanceNumbers. `edit(k)` may return
    (pixels, iop, position k) to break a slice."""
    order = [k for k in rng.permutation(D) if k not in skip]
    instances = rng.permutation(len(order)) + 1
    names = {}
    for k, instance in zip(order, instances):
        name = f"{rng.integers(1 << 40):010x}" + (".dcm" if k % 3 else "")
        path = folder / ("sub" if k % 4 == 0 else "") / name
        pixels, iop, at = stored[k], None, k
        if edit and edit(k):
            pixels, iop, at = edit(k)
        write_slice(path, pixels, series, at, int(instance), number, iop)
        names[int(k)] = path.name
    return names


def write_nifti(path, volume_dhw, series):
    nib.save(nib.Nifti1Image(np.ascontiguousarray(volume_dhw.transpose(2, 1, 0)),
                             series.affine_ras()), str(path))


def run(qfae, *args, expect=0):
    r = subprocess.run([qfae, *map(str, args)], capture_output=True, text=True)
    if r.returncode != expect:
        sys.exit(f"FAIL: qfae {' '.join(map(str, args))} exited {r.returncode}, not {expect}:\n"
                 f"{r.stderr[-3000:]}")
    return r


def dataset_files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def same_dataset(qfae, tmp, name, row_dir, col_dir, axes):
    stored, label = ct_volume()
    series = Series(row_dir, col_dir)
    rng = np.random.default_rng(11)
    dicom = tmp / name / "case"  # subject "case" from both the folder and case.nii.gz
    write_series(dicom, stored, series, rng)
    (dicom / "notes.txt").write_text("not an image\n")
    write_nifti(tmp / name / "case.nii.gz", (stored * SLOPE + INTERCEPT).astype(np.float32),
                series)
    write_nifti(tmp / name / "case_label.nii.gz", label, series)
    a, b = tmp / name / "from_dicom", tmp / name / "from_nifti"
    run(qfae, "prepare", "--dicom", dicom, "--label", tmp / name / "case_label.nii.gz",
        "--out", a, *OPTIONS)
    run(qfae, "prepare", "--volume", tmp / name / "case.nii.gz", "--label",
        tmp / name / "case_label.nii.gz", "--out", b, *OPTIONS)
    fa, fb = dataset_files(a), dataset_files(b)
    assert sorted(fa) == sorted(fb), (sorted(set(fa) ^ set(fb)))
    assert any("Ungood/label" in f for f in fa) and any("_lesion" in f for f in fa), sorted(fa)
    different = [f for f in fa if fa[f] != fb[f]]
    assert not different, f"{name}: these differ: {different}"
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    va, vb = ma["volumes"][0], mb["volumes"][0]
    assert va["source"] == "dicom" and vb["source"] == "nifti", (va, vb)
    assert va["file_axes"] == vb["file_axes"] == axes, (va["file_axes"], vb["file_axes"])
    assert va["size_lps"] == vb["size_lps"], (va["size_lps"], vb["size_lps"])
    assert np.allclose(va["spacing_mm"], vb["spacing_mm"], atol=1e-3), (va, vb)
    assert va["series_uid"] == series.uid and va["dicom_files"] == D, va
    assert ma["counts"] == mb["counts"] and ma["dropped"] == mb["dropped"]
    for entry in ma["files"]:
        assert pathlib.Path(entry.get("dicom_file", "")).is_file(), entry
    print(f"{name}: {len(fa)} PNGs identical from DICOM and NIfTI, axes {axes}, "
          f"spacing {[round(x, 4) for x in va['spacing_mm']]}, counts {ma['counts']}")


def refused(qfae, tmp, case, folder, needles, label=None):
    args = ["prepare", "--dicom", folder, "--out", tmp / "refused"]
    if label:
        args += ["--label", label]
    err = run(qfae, *args, expect=2).stderr
    missing = [n for n in needles if n not in err]
    assert not missing, f"{case}: {missing} not in:\n{err}"
    assert "error" in err and len(err.strip().splitlines()) <= 3, err
    print(f"{case}: exit 2 naming {len(needles)} expected things")


def broken_series(qfae, tmp):
    stored, label = ct_volume()
    rng = np.random.default_rng(3)
    axial = ((1, 0, 0), (0, 1, 0))

    def series_in(case, **kw):
        s = Series(*axial)
        names = write_series(tmp / case, stored, s, rng, **kw)
        return s, names

    s, names = series_in("duplicate", edit=lambda k: k == 7 and (stored[k], None, 6))
    refused(qfae, tmp, "duplicate position", tmp / "duplicate",
            [s.uid, str(tmp / "duplicate"), "same position", names[6], names[7]])
    s, names = series_in("gap", skip=(6,))
    refused(qfae, tmp, "gap", tmp / "gap", [s.uid, "uneven slice steps", names[5], names[7]])
    s, names = series_in("sizes", edit=lambda k: k == 3 and (stored[k][:30], None, k))
    refused(qfae, tmp, "mixed sizes", tmp / "sizes", [s.uid, "mixes slice sizes", names[3]])
    tilted = Series(*(rotation(3, 0)[:, :2].T))
    s, names = series_in("orientation", edit=lambda k: k == 4 and (stored[k], tilted.iop, k))
    refused(qfae, tmp, "mixed orientations", tmp / "orientation",
            [s.uid, "mixes orientations", names[4]])
    s = Series(*axial)
    write_slice(tmp / "single" / "one.dcm", stored[0], s, 0, 1)
    refused(qfae, tmp, "single slice", tmp / "single", [s.uid, "single slice", "one.dcm"])
    s1, _ = series_in("two")
    s2 = Series(*axial)
    write_series(tmp / "two", stored, s2, rng, number=2)
    write_nifti(tmp / "label.nii.gz", label, s1)
    refused(qfae, tmp, "two series with --label", tmp / "two", [s1.uid, s2.uid, "exactly one"],
            label=tmp / "label.nii.gz")
    series_in("not_dicom")
    (tmp / "not_dicom" / "x.dcm").write_text("plain text, not DICOM\n")
    refused(qfae, tmp, "x.dcm not DICOM", tmp / "not_dicom", ["x.dcm", "not a readable DICOM"])
    (tmp / "empty").mkdir()
    (tmp / "empty" / "readme.txt").write_text("nothing here\n")
    refused(qfae, tmp, "no DICOM", tmp / "empty", ["holds no DICOM image", str(tmp / "empty")])

    out = tmp / "two_subjects"
    run(qfae, "prepare", "--dicom", tmp / "two", "--out", out, "--split", "0.5", "0", "0.5")
    m = json.loads((out / "manifest.json").read_text())
    subjects = sorted(v["subject"] for v in m["volumes"])
    assert subjects == ["two_1", "two_2"], subjects
    assert sorted(v["series_uid"] for v in m["volumes"]) == sorted([s1.uid, s2.uid])
    print(f"two series without --label: subjects {subjects}")


def supported(qfae, tmp):
    (tmp / "probe").mkdir()
    err = run(qfae, "prepare", "--dicom", tmp / "probe", "--label", tmp / "probe.nii.gz",
              "--out", tmp / "probe_out", expect=2).stderr
    for missing in ("no DICOM support", "no NIfTI support"):
        if missing in err:
            print(f"SKIP: this qfae has {missing}")
            sys.exit(77)
    assert "holds no DICOM image" in err, err


def main():
    qfae = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        supported(qfae, tmp)
        r = rotation(12, 10)
        same_dataset(qfae, tmp, "oblique", r[:, 0], r[:, 1], "LPS")
        same_dataset(qfae, tmp, "flipped", r[:, 0], -r[:, 1], "LAI")
        broken_series(qfae, tmp)


if __name__ == "__main__":
    main()
