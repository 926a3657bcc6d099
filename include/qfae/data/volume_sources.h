// Finding the volumes to slice: BraTS2021 subject folders as distributed, NIfTI files and folders
// or folders of DICOM series named on the command line, each with its optional label volume.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "qfae/io/dicom_series.h"
#include "qfae/io/volume.h"

namespace qfae::data {

struct VolumeSource {
  std::string subject;  // split unit and file-name prefix
  std::string image;    // NIfTI path, or the folder the DICOM series was found in
  std::string label;    // NIfTI path of the segmentation, "" = none (every slice is normal)
  std::optional<io::DicomSeries> dicom;  // set when the image is this DICOM series
};

// The source's image as a volume: its NIfTI file, or its DICOM series.
io::Volume read_source_image(const VolumeSource& source);

// BraTS2021_Training_Data as distributed: every sub-folder S of `root` holding S_<modality>.nii.gz
// (or .nii) is a subject, with label S_seg.nii.gz. Sorted by subject. UserError when `root` is
// missing, holds no subject, the modality is not flair|t1|t1ce|t2, or a subject folder lacks its
// modality or segmentation file (naming it).
std::vector<VolumeSource> find_brats_subjects(const std::string& root, const std::string& modality);

// Each path is a NIfTI file or a folder of them (not recursive, sorted). In a folder, a file named
// <stem>_seg, _label, _labels or _mask (.nii or .nii.gz) is the label of <stem> and not a volume.
// `labels`, when given, pairs one label with each path in order and then every path must be a
// file. The subject is the file name without .nii/.nii.gz. UserError when a path does not exist,
// a folder holds no volume, the counts differ, or two volumes share a subject name.
std::vector<VolumeSource> find_volumes(const std::vector<std::string>& paths,
                                       const std::vector<std::string>& labels);

// Every DICOM series under each folder (io::find_dicom_series) is a subject: named after the
// folder when it holds one series, else <folder>_<SeriesNumber> (<folder>_<last 8 digits of the
// UID> where the number is missing or shared). `labels`, when given, pairs one NIfTI label with
// each folder in order, and then each folder must hold exactly one series. UserError (with
// "--dicom: " or "--label: " in front) for what io::find_dicom_series refuses, a label count
// that differs, a missing label file, a labelled folder with several series, or two subjects of
// one name.
std::vector<VolumeSource> find_dicom_volumes(const std::vector<std::string>& folders,
                                             const std::vector<std::string>& labels);

// The file name without its directory and .nii / .nii.gz / .hdr extension.
std::string volume_stem(const std::string& path);

}  // namespace qfae::data
