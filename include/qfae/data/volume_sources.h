// Finding the volumes to slice: BraTS2021 subject folders as distributed, or NIfTI files and
// folders named on the command line, each with its optional label volume.
#pragma once
#include <string>
#include <vector>

namespace qfae::data {

struct VolumeSource {
  std::string subject;  // split unit and file-name prefix
  std::string image;    // NIfTI path
  std::string label;    // NIfTI path of the segmentation, "" = none (every slice is normal)
};

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

// The file name without its directory and .nii / .nii.gz / .hdr extension.
std::string volume_stem(const std::string& path);

}  // namespace qfae::data
