#!/usr/bin/env python3
"""A small synthetic copy of the RSNA Pneumonia Detection Challenge folder, with pydicom.

  make_rsna_fixture.py OUT [--normal 24] [--opacity 12] [--not-normal 6] [--size 48] [--seed 0]

Writes what the challenge distributes, in its own formats:
  OUT/stage_2_train_images/<patientId>.dcm   8-bit MONOCHROME2 secondary captures, one per patient
  OUT/stage_2_train_labels.csv               patientId,x,y,width,height,Target (a row per box;
                                              one row with empty box fields for other patients)
  OUT/stage_2_detailed_class_info.csv        patientId,class (a row per box, as the original)
  OUT/expected.json                          per patient: class, boxes, identifiers (for tests)
Normal patients are smooth noise; "Lung Opacity" patients have a brighter rectangle in each box;
the second of them has two boxes, the third a box reaching past the image's right edge.
Every file also carries a PatientName and a PatientBirthDate, which qfae must never write out.
"""
import argparse
import json
import pathlib

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

NORMAL, OPACITY, NOT_NORMAL = "Normal", "Lung Opacity", "No Lung Opacity / Not Normal"
PATIENT_NAME, BIRTH_DATE = "Fixture^Never^Written", "19700101"


def write_dicom(path, pixels, patient_id, rng):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = PATIENT_NAME
    ds.PatientBirthDate = BIRTH_DATE
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return {"patient_id": patient_id, "study_uid": str(ds.StudyInstanceUID),
            "sop_uid": str(ds.SOPInstanceUID)}


def make(out, normal=24, opacity=12, not_normal=6, size=48, seed=0):
    out = pathlib.Path(out)
    images = out / "stage_2_train_images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = [NORMAL] * normal + [OPACITY] * opacity + [NOT_NORMAL] * not_normal
    order = rng.permutation(len(classes))  # the CSVs list patients in no particular class order
    expected, label_rows, class_rows = {}, [], []
    opacity_seen = 0
    for n, i in enumerate(order):
        category = classes[i]
        patient_id = f"{int(rng.integers(1 << 32)):08x}-{n:04d}-rsna"
        yy, xx = np.mgrid[0:size, 0:size]
        base = 90 + 40 * np.sin(xx / size * np.pi) + rng.normal(0, 6, (size, size))
        boxes = []
        if category == OPACITY:
            opacity_seen += 1
            boxes.append([int(rng.integers(2, size // 2)), int(rng.integers(2, size // 2)),
                          int(rng.integers(6, size // 3)), int(rng.integers(6, size // 3))])
            if opacity_seen == 2:
                boxes.append([size - 14, size - 12, 10, 8])
            if opacity_seen == 3:
                boxes[0] = [size - 6, 4, 12, 9]  # past the right edge: clipped
            for x, y, w, h in boxes:
                base[y:y + h, x:x + w] += 70
        pixels = np.clip(np.round(base), 0, 255)
        ids = write_dicom(images / f"{patient_id}.dcm", pixels, patient_id, rng)
        expected[patient_id] = {"class": category, "boxes": boxes, **ids}
        for box in boxes or [None]:
            fields = ",".join(f"{float(v)}" for v in box) if box else ",,,"  # 264.0, as RSNA
            label_rows.append(f"{patient_id},{fields},{1 if box else 0}")
            class_rows.append(f"{patient_id},{category}")
    (out / "stage_2_train_labels.csv").write_text(
        "patientId,x,y,width,height,Target\n" + "\n".join(label_rows) + "\n")
    (out / "stage_2_detailed_class_info.csv").write_text(
        "patientId,class\n" + "\n".join(class_rows) + "\n")
    (out / "expected.json").write_text(json.dumps(
        {"size": size, "patient_name": PATIENT_NAME, "birth_date": BIRTH_DATE,
         "patients": expected}, indent=1))
    return expected


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--normal", type=int, default=24)
    p.add_argument("--opacity", type=int, default=12)
    p.add_argument("--not-normal", type=int, default=6)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    made = make(a.out, a.normal, a.opacity, a.not_normal, a.size, a.seed)
    print(f"{len(made)} patients written to {a.out} (pydicom {pydicom.__version__})")
