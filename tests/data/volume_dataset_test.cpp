// Slice datasets from tiny NIfTI volumes written by the test: orientation of the written PNGs,
// slice labels from the segmentation, subject and slice splits, synthetic lesions, the manifest
// and the summary returned with it, and that the BMAD loader reads the tree back.
#include "qfae/data/volume_dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "../support/dilate.h"
#include "../support/nifti_writer.h"
#include "../support/run_binary.h"
#include "../support/user_error.h"
#include "qfae/data/dataset.h"
#include "qfae/io/image.h"

#if QFAE_HAVE_NIFTI
namespace fs = std::filesystem;
using nlohmann::json;
using qfae::test::TempDir;
using qfae::test::dilate;
using qfae::test::TinyBrain;

namespace {

using qfae::data::SliceDrop;

json volume_dataset_manifest(const fs::path& root) {
  std::ifstream in(root / "manifest.json");
  return json::parse(in);
}

// The summary write_slice_dataset returns holds the totals its manifest.json holds.
void check_summary_matches(const qfae::data::SliceDatasetSummary& s, const json& m) {
  EXPECT_EQ(m["split_by"], s.by_slice ? "slice" : "subject");
  const std::map<std::string, const qfae::data::SliceCounts*> slices = {
      {"train", &s.slices.train}, {"valid", &s.slices.valid}, {"test", &s.slices.test}};
  const std::map<std::string, int64_t> subjects = {
      {"train", s.subjects.train}, {"valid", s.subjects.valid}, {"test", s.subjects.test}};
  for (const auto& [split, counts] : slices) {
    EXPECT_EQ(m["counts"][split]["normal"], counts->normal) << split;
    EXPECT_EQ(m["counts"][split]["anomalous"], counts->anomalous) << split;
    EXPECT_EQ(m["subjects"][split], subjects.at(split)) << split;
  }
  json dropped = json::object();
  for (const auto& [reason, n] : s.dropped) dropped[qfae::data::slice_drop_name(reason)] = n;
  EXPECT_EQ(m["dropped"], dropped);
  EXPECT_EQ(m["non_finite_voxels"], s.non_finite_voxels);
  EXPECT_EQ(static_cast<int64_t>(m["volumes"].size()), s.volumes);
}

// Every manifest entry exists on disk, masks exactly for label 1, counts add up, and the BMAD
// loader indexes the same numbers.
void check_tree(const fs::path& root, const json& m) {
  std::map<std::string, int64_t> per_split;
  for (const auto& f : m["files"]) {
    EXPECT_TRUE(fs::is_regular_file(root / f["file"].get<std::string>())) << f.dump();
    EXPECT_EQ(f["mask"].is_null(), f["label"] == 0) << f.dump();
    if (!f["mask"].is_null()) {
      const auto mask = qfae::io::read_mask((root / f["mask"].get<std::string>()).string(), 0.5);
      EXPECT_EQ(mask.sum().item<float>(), f["lesion_pixels"].get<float>()) << f.dump();
      EXPECT_GT(f["lesion_pixels"].get<int64_t>(), 0);
    }
    if (f["split"] == "train") {
      EXPECT_EQ(f["label"], 0);
    }
    ++per_split[f["split"].get<std::string>()];
  }
  for (const char* s : {"train", "valid", "test"}) {
    EXPECT_EQ(per_split[s],
              m["counts"][s]["normal"].get<int64_t>() + m["counts"][s]["anomalous"].get<int64_t>())
        << s;
  }
  qfae::config::DataConfig cfg;
  cfg.root = root.string();
  cfg.layout = "bmad";
  const auto index = qfae::data::index_dataset(cfg, 1);
  EXPECT_EQ(static_cast<int64_t>(index.train.size()), per_split["train"]);
  EXPECT_EQ(static_cast<int64_t>(index.val.size()), per_split["valid"]);
  EXPECT_EQ(static_cast<int64_t>(index.test.size()), per_split["test"]);
  for (const auto& s : index.test) EXPECT_EQ(s.mask.empty(), s.label == 0) << s.image;
}

}  // namespace

TEST(VolumeDataset, WritesAnteriorUpAndTheSubjectsRightOnTheLeft) {
  TempDir dir;
  TinyBrain b;
  b.nx = b.ny = 16;
  b.nz = 4;
  auto f = b.image();
  for (int64_t k = 0; k < b.nz; ++k)  // a bright corner block at the subject's anterior right
    for (int64_t j = 11; j < 14; ++j)
      for (int64_t i = 11; i < 14; ++i) f.values[(k * 16 + j) * 16 + i] = 3000;
  qfae::test::write_nifti(f, (dir.path() / "a.nii.gz").string());
  qfae::data::SliceDatasetOptions o;
  o.split = {1, 0, 0};
  o.min_foreground = 0;
  o.normalise.high_percentile = 100;
  const auto s = qfae::data::write_slice_dataset(
      qfae::data::find_volumes({(dir.path() / "a.nii.gz").string()}, {}), o,
      (dir.path() / "out").string());
  const auto m = volume_dataset_manifest(dir.path() / "out");
  check_summary_matches(s, m);
  ASSERT_EQ(s.slices.train.normal, 4);
  const auto img = qfae::io::read_image((dir.path() / "out/train/good/img/a_z001.png").string());
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{1, 16, 16}));
  // RAS i = 11..13 (right) -> columns 15-i = 2..4; j = 11..13 (anterior) -> rows 2..4.
  EXPECT_FLOAT_EQ(img[0][3][3].item<float>(), 1.0f);
  EXPECT_LT(img[0][3][12].item<float>(), 0.99f);  // the mirror image (left) is not bright
  EXPECT_LT(img[0][12][3].item<float>(), 0.99f);  // nor the posterior side
  EXPECT_EQ(m["volumes"][0]["file_axes"], "RAS");
}

TEST(VolumeDataset, SplitsSubjectsAndLabelsSlicesFromTheSegmentation) {
  TempDir dir;
  const fs::path in = dir.path() / "volumes";
  fs::create_directories(in);
  std::map<std::string, TinyBrain> brains;
  for (int s = 0; s < 5; ++s) {
    TinyBrain b;
    b.tumour_r = s % 2 == 0 ? 3.0 : 0.0;  // subjects 0, 2, 4 have a tumour in slices 5..11
    const std::string name = "sub" + std::to_string(s);
    qfae::test::write_nifti(b.image(), (in / (name + ".nii.gz")).string());
    qfae::test::write_nifti(b.label(), (in / (name + "_seg.nii.gz")).string());
    brains[name] = b;
  }
  const auto sources = qfae::data::find_volumes({in.string()}, {});
  ASSERT_EQ(sources.size(), 5u);
  EXPECT_EQ(fs::path(sources[2].label).filename(), "sub2_seg.nii.gz");
  qfae::data::SliceDatasetOptions o;
  o.split = {0.6, 0.2, 0.2};
  o.image_size = 32;
  o.min_foreground = 0.2;
  o.val_anomalies = true;
  o.threads = 2;
  const fs::path out = dir.path() / "out";
  const auto s = qfae::data::write_slice_dataset(sources, o, out.string());
  const auto m = volume_dataset_manifest(out);
  check_summary_matches(s, m);
  EXPECT_FALSE(s.by_slice);
  EXPECT_EQ(s.subjects.train, 3);
  EXPECT_EQ(s.subjects.valid, 1);
  EXPECT_EQ(s.subjects.test, 1);
  EXPECT_EQ(s.volumes, 5);
  EXPECT_EQ(s.volumes_with_non_finite, 0);
  check_tree(out, m);
  std::map<std::string, std::set<std::string>> splits_of;
  for (const auto& f : m["files"]) {
    const auto& b = brains[f["subject"].get<std::string>()];
    const int64_t k = f["slice"];
    bool tumour = false;
    for (int64_t j = 0; j < b.ny; ++j)
      for (int64_t i = 0; i < b.nx; ++i) tumour = tumour || b.in_tumour(i, j, k);
    EXPECT_EQ(f["label"] == 1, tumour) << f.dump();
    EXPECT_EQ(f["anomaly"], tumour ? "segmentation" : "none");
    splits_of[f["subject"].get<std::string>()].insert(f["split"].get<std::string>());
  }
  for (const auto& [subject, splits] : splits_of) EXPECT_EQ(splits.size(), 1u) << subject;
  EXPECT_GT(s.dropped.at(SliceDrop::kLittleForeground), 0);
  // Deterministic: the same seed puts the same subjects in the same splits.
  qfae::data::write_slice_dataset(sources, o, (dir.path() / "again").string());
  EXPECT_EQ(volume_dataset_manifest(dir.path() / "again")["volumes"], m["volumes"]);
}

TEST(VolumeDataset, OneVolumeIsSplitBySliceWithLesionedTestCopies) {
  TempDir dir;
  TinyBrain b;
  b.nz = 64;
  qfae::test::write_nifti(b.image(), (dir.path() / "brain.nii").string());
  qfae::data::SliceDatasetOptions o;
  o.image_size = 32;
  o.block = 8;
  o.gap = 1;
  o.synthetic_lesions = true;
  o.lesion_copies = 2;
  o.lesions.min_size = 0.06;
  o.normalise.low_percentile = 0;  // only the darkest voxel becomes 0 (checked against below)
  const fs::path out = dir.path() / "out";
  const auto s = qfae::data::write_slice_dataset(
      qfae::data::find_volumes({(dir.path() / "brain.nii").string()}, {}), o, out.string());
  const auto m = volume_dataset_manifest(out);
  check_summary_matches(s, m);
  EXPECT_TRUE(s.by_slice);
  check_tree(out, m);
  const auto& c = s.slices;
  EXPECT_GT(c.train.normal, 0);
  EXPECT_GT(c.valid.normal, 0);
  EXPECT_EQ(c.valid.anomalous, 0);  // val stays normal without val_anomalies
  EXPECT_GT(c.test.normal, 0);
  const auto no_room = s.dropped.find(SliceDrop::kNoRoomForLesion);
  EXPECT_EQ(c.test.anomalous + (no_room == s.dropped.end() ? 0 : no_room->second),
            2 * c.test.normal);
  EXPECT_GT(s.dropped.at(SliceDrop::kSplitGap), 0);
  std::map<std::string, std::vector<int64_t>> slices;
  for (const auto& f : m["files"]) {
    slices[f["split"].get<std::string>()].push_back(f["slice"].get<int64_t>());
    if (f["anomaly"] != "synthetic") continue;
    // The lesioned copy differs from its normal slice only near its mask, inside the brain.
    std::string normal = f["file"];
    normal.replace(normal.find("Ungood"), 6, "good");
    normal = normal.substr(0, normal.find("_lesion")) + ".png";
    const auto a = qfae::io::read_image((out / f["file"].get<std::string>()).string())[0];
    const auto n = qfae::io::read_image((out / normal).string())[0];
    const auto mask = qfae::io::read_mask((out / f["mask"].get<std::string>()).string(), 0.5)[0];
    const auto changed = ((a - n).abs() > 0).to(torch::kFloat32);
    EXPECT_EQ((changed * (1 - dilate(mask, 2))).sum().item<float>(), 0) << f.dump();
    EXPECT_EQ((mask * (n == 0).to(torch::kFloat32)).sum().item<float>(), 0) << "on background";
    EXPECT_GT(((a - n).abs() * mask).sum().item<float>() / mask.sum().item<float>(), 0.04f);
  }
  for (const auto& [sa, ka] : slices)
    for (const auto& [sb, kb] : slices) {
      if (sa == sb) continue;
      for (int64_t x : ka)
        for (int64_t y : kb) EXPECT_GT(std::abs(x - y), 2 * o.gap) << sa << " " << sb;
    }
}

TEST(VolumeDataset, BadVolumesNameTheFile) {
  TempDir dir;
  const auto junk = dir.write("junk.nii.gz", "not a volume").string();
  const auto msg = qfae::test::user_error([&] {
    qfae::data::write_slice_dataset(qfae::data::find_volumes({junk}, {}), {},
                                    (dir.path() / "out").string());
  });
  EXPECT_NE(msg.find(junk), std::string::npos) << msg;
  const auto missing = (dir.path() / "nope.nii.gz").string();
  EXPECT_NE(qfae::test::user_error([&] { qfae::data::find_volumes({missing}, {}); }).find(missing),
            std::string::npos);
  EXPECT_NE(qfae::test::user_error([&] {
              qfae::data::find_volumes({junk, junk}, {junk});
            }).find("--label"),
            std::string::npos);
}

#endif  // QFAE_HAVE_NIFTI
