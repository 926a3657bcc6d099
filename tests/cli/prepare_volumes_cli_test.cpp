// The real binary's `prepare --from/--volume`: a BraTS-like tree of tiny volumes becomes the BMAD
// layout with 0/255 masks and a manifest; bad input gives one line naming the file and code 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>
#include <sstream>

#include "../support/nifti_writer.h"
#include "../support/run_binary.h"
#include "qfae/data/dataset.h"

namespace fs = std::filesystem;
using qfae::test::run_qfae;
using qfae::test::TempDir;

namespace {
const char* const kCh2bet = "/usr/share/mricron/templates/ch2bet.nii.gz";
}  // namespace

#if QFAE_HAVE_NIFTI

namespace {
size_t files_in(const fs::path& dir) {
  size_t n = 0;
  if (!fs::is_directory(dir)) return 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

// root/BraTS2021_0000s/BraTS2021_0000s_{flair,t1,t1ce,t2,seg}.nii.gz, every subject with a tumour.
void write_brats_tree(const fs::path& root, int subjects) {
  for (int s = 0; s < subjects; ++s) {
    const std::string id = "BraTS2021_0000" + std::to_string(s);
    qfae::test::TinyBrain b;
    b.tumour_r = 3.0;
    b.tumour = {8.0 + s, 12, 8};
    fs::create_directories(root / id);
    for (const char* mod : {"flair", "t1", "t1ce", "t2"}) {
      qfae::test::write_nifti(b.image(), (root / id / (id + "_" + mod + ".nii.gz")).string());
    }
    qfae::test::write_nifti(b.label(), (root / id / (id + "_seg.nii.gz")).string());
  }
}
}  // namespace

TEST(PrepareVolumesCli, BratsTreeBecomesBmadLayoutWithManifest) {
  TempDir dir;
  write_brats_tree(dir.path() / "BraTS2021_Training_Data", 5);
  const fs::path out = dir.path() / "slices";
  const std::string cmd = "prepare --from '" + (dir.path() / "BraTS2021_Training_Data").string() +
                          "' --out '" + out.string() + "' --image-size 32 --split 0.6 0.2 0.2";
  auto r = run_qfae(cmd + " --modality t1 --seed 3");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* d : {"train/good/img", "valid/good/img", "test/good/img", "test/Ungood/img",
                        "test/Ungood/label"}) {
    EXPECT_GT(files_in(out / d), 0u) << d;
  }
  EXPECT_EQ(files_in(out / "test/Ungood/img"), files_in(out / "test/Ungood/label"));
  EXPECT_FALSE(fs::exists(out / "valid/Ungood"));  // val is normal slices only by default
  for (const auto& e : fs::directory_iterator(out / "test/Ungood/label")) {
    EXPECT_TRUE(fs::exists(out / "test/Ungood/img" / e.path().filename())) << e.path();
    const cv::Mat m = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
    ASSERT_EQ(m.type(), CV_8UC1) << e.path();
    EXPECT_EQ(cv::countNonZero(m) + cv::countNonZero(m == 0), m.rows * m.cols);
    EXPECT_EQ(cv::countNonZero(m == 255), cv::countNonZero(m)) << "mask is 0/255";
    EXPECT_GT(cv::countNonZero(m), 0);
  }
  const auto m = nlohmann::json::parse(qfae::test::read_text(out / "manifest.json"));
  std::map<std::string, std::set<std::string>> splits_of;
  for (const auto& f : m["files"]) {
    EXPECT_NE(f["volume"].get<std::string>().find("_t1.nii.gz"), std::string::npos);
    EXPECT_NE(f["label_volume"].get<std::string>().find("_seg.nii.gz"), std::string::npos);
    splits_of[f["subject"].get<std::string>()].insert(f["split"].get<std::string>());
  }
  EXPECT_EQ(splits_of.size(), 5u);
  for (const auto& [subject, splits] : splits_of) EXPECT_EQ(splits.size(), 1u) << subject;
  EXPECT_EQ(m["counts"]["train"]["normal"].get<size_t>(), files_in(out / "train/good/img"));
  EXPECT_EQ(m["counts"]["test"]["anomalous"].get<size_t>(), files_in(out / "test/Ungood/img"));
  EXPECT_GT(m["dropped"]["anomalous_in_train"].get<int64_t>(), 0);
  qfae::config::DataConfig cfg;
  cfg.root = out.string();
  const auto index = qfae::data::index_dataset(cfg, 1);  // layout auto -> bmad
  EXPECT_EQ(index.layout, "bmad");
  EXPECT_EQ(index.train.size(), m["counts"]["train"]["normal"].get<size_t>());
  EXPECT_EQ(index.test.size(),
            files_in(out / "test/good/img") + files_in(out / "test/Ungood/img"));

  // The same request again keeps the dataset; other inputs are refused naming the difference
  // (the dataset stays as it was) unless --force replaces it.
  r = run_qfae(cmd + " --modality t1 --seed 3");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("already holds this dataset"), std::string::npos) << r.err;
  r = run_qfae(cmd + " --modality flair --seed 3");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(r.err.find("modality: \"t1\" there, \"flair\" now"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--force"), std::string::npos) << r.err;
  EXPECT_NE(qfae::test::read_text(out / "manifest.json").find("_t1"), std::string::npos);
  r = run_qfae(cmd + " --modality flair --force");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto m2 = nlohmann::json::parse(qfae::test::read_text(out / "manifest.json"));
  EXPECT_NE(m2["files"][0]["volume"].get<std::string>().find("_flair"), std::string::npos);
}

TEST(PrepareVolumesCli, BadVolumesFailWithOneLineNamingTheFile) {
  TempDir dir;
  const fs::path root = dir.path() / "brats";
  write_brats_tree(root, 2);
  const auto out = (dir.path() / "out").string();
  auto r = run_qfae("prepare --from '" + (dir.path() / "nowhere").string() + "' --out " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("nowhere"), std::string::npos) << r.err;

  fs::remove(root / "BraTS2021_00001" / "BraTS2021_00001_seg.nii.gz");
  r = run_qfae("prepare --from '" + root.string() + "' --out " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("BraTS2021_00001_seg.nii.gz"), std::string::npos) << r.err;

  const auto corrupt = dir.write("corrupt.nii.gz", "definitely not gzip").string();
  r = run_qfae("prepare --volume '" + corrupt + "' --out " + out);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(corrupt), std::string::npos) << r.err;
  // One error line, and nothing from libnifti: every other line is qfae's own log.
  std::istringstream lines(r.err);
  int errors = 0;
  for (std::string line; std::getline(lines, line);) {
    errors += line.rfind("qfae: error: ", 0) == 0;
    EXPECT_TRUE(line.rfind("qfae: error: ", 0) == 0 || line.rfind("[prepare] ", 0) == 0) << line;
  }
  EXPECT_EQ(errors, 1) << r.err;

  r = run_qfae("prepare --volume '" + corrupt + "'");  // no --out
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
}

#endif  // QFAE_HAVE_NIFTI

TEST(PrepareVolumesCli, NeedsASourceAndSaysWhenNiftiOrDicomIsMissing) {
  auto r = run_qfae("prepare");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--synthetic"), std::string::npos) << r.err;
  r = run_qfae("prepare --synthetic /tmp/x --volume /tmp/y.nii");
  EXPECT_EQ(r.code, 2);
  r = run_qfae("prepare --help");
  EXPECT_EQ(r.code, 0);
  for (const char* flag :
       {"--from", "--volume", "--dicom", "--synthetic-lesions", "--split-by", "--gap"}) {
    EXPECT_NE(r.out.find(flag), std::string::npos) << flag;
  }
  r = run_qfae("prepare --dicom /tmp/x --volume /tmp/y.nii --out /tmp/z");
  EXPECT_EQ(r.code, 2);
  r = run_qfae("prepare --label /tmp/l.nii.gz --out /tmp/z");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--label"), std::string::npos) << r.err;
#if !QFAE_HAVE_GDCM
  r = run_qfae("prepare --dicom /tmp/x --out /tmp/z");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no DICOM support"), std::string::npos) << r.err;
#endif
#if !QFAE_HAVE_NIFTI
  TempDir dir;
  r = run_qfae("prepare --volume /tmp/a.nii.gz --out '" + dir.path().string() + "/o'");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("no NIfTI support (install libnifti2-dev and rebuild)"), std::string::npos)
      << r.err;
#endif
}

// The embedded demo's command on Debian's Colin27 brain (mricron-data), when it is installed.
TEST(PrepareVolumesCli, Ch2betBecomesADemoDatasetWhenInstalled) {
  if (!QFAE_HAVE_NIFTI || !fs::exists(kCh2bet)) GTEST_SKIP() << "needs libnifti2 and " << kCh2bet;
  TempDir dir;
  const auto out = dir.path() / "demo-mri";
  const auto r = run_qfae(std::string("prepare --volume ") + kCh2bet + " --out '" + out.string() +
                          "' --image-size 64 --synthetic-lesions");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto m = nlohmann::json::parse(qfae::test::read_text(out / "manifest.json"));
  EXPECT_EQ(m["split_by"], "slice");
  EXPECT_EQ(m["volumes"][0]["file_axes"], "RAS");
  EXPECT_GT(m["counts"]["train"]["normal"].get<int64_t>(), 50);
  EXPECT_GT(m["counts"]["valid"]["normal"].get<int64_t>(), 5);
  EXPECT_GT(m["counts"]["test"]["normal"].get<int64_t>(), 10);
  EXPECT_GT(m["counts"]["test"]["anomalous"].get<int64_t>(), 10);
  std::cerr << "[ch2bet] counts " << m["counts"].dump() << " dropped " << m["dropped"].dump()
            << "\n";
}
