// `qfae prepare` warns instead of writing something useless: NaN voxels are counted and reported,
// a split that leaves training empty is an error naming the options to change, and a bad --out, an
// unreadable folder or a full disk are one-line errors (exit 2) that leave no half dataset behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "../support/nifti_writer.h"
#include "../support/run_binary.h"
#include "../support/unprivileged.h"

namespace fs = std::filesystem;
using qfae::test::read_text;
using qfae::test::run_qfae;
using qfae::test::TempDir;

namespace reliability_prepare_cli {

std::string last_error_line(const std::string& err) {
  const auto from = err.rfind("qfae: ");
  return from == std::string::npos ? err : err.substr(from);
}

// One "qfae: error: ..." line (the last), and no crash report from the C++ runtime.
void expect_one_line_error(const qfae::test::RunResult& r, const std::string& names) {
  EXPECT_EQ(r.code, 2) << r.err;
  const auto line = last_error_line(r.err);
  EXPECT_EQ(line.rfind("qfae: error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << r.err;
  EXPECT_NE(line.find(names), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

#if QFAE_HAVE_NIFTI

// A brain-like volume of `nz` slices (48: enough blocks of 16 for train, val and test).
qfae::test::NiftiFile brain(int64_t nz = 48) {
  qfae::test::TinyBrain b;
  b.nz = nz;
  return b.image();
}

fs::path write_brain(const fs::path& path, int64_t nz = 48) {
  qfae::test::write_nifti(brain(nz), path.string());
  return path;
}

// A label marking a tube of radius 3 through every slice of the brain: no slice is lesion-free.
fs::path write_tube_label(const fs::path& path, int64_t nz) {
  qfae::test::TinyBrain b;
  b.nz = nz;
  qfae::test::NiftiFile f;
  f.dims = {b.nx, b.ny, b.nz};
  f.datatype = DT_UINT8;
  for (int64_t k = 0; k < b.nz; ++k)
    for (int64_t j = 0; j < b.ny; ++j)
      for (int64_t i = 0; i < b.nx; ++i) {
        const double di = i - b.nx / 2.0, dj = j - b.ny / 2.0;
        f.values.push_back(di * di + dj * dj <= 9 && b.in_brain(i, j, k) ? 1 : 0);
      }
  qfae::test::write_nifti(f, path.string());
  return path;
}

TEST(ReliabilityPrepare, NanVoxelsAreCountedWarnedAndInTheManifest) {
  TempDir dir;
  auto f = brain();
  const size_t centre = (24 * 24 + 12) * 20 + 10;  // k 24, j 12, i 10: inside the brain
  for (size_t v = 0; v < 5; ++v) f.values[centre + v] = std::numeric_limits<double>::quiet_NaN();
  f.values[centre + 40] = std::numeric_limits<double>::infinity();
  f.values[centre + 41] = -std::numeric_limits<double>::infinity();
  const auto volume = dir.path() / "speckled.nii.gz";
  qfae::test::write_nifti(f, volume.string());
  const auto out = dir.path() / "out";
  const auto r = run_qfae("prepare --volume '" + volume.string() + "' --out '" + out.string() +
                          "' --image-size 32");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("'" + volume.string() + "': 7 NaN or infinite voxels"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("7 NaN or infinite voxels in 1 of 1 volumes"), std::string::npos) << r.err;
  const auto m = nlohmann::json::parse(read_text(out / "manifest.json"));
  EXPECT_EQ(m["non_finite_voxels"], 7);
  EXPECT_EQ(m["volumes"][0]["non_finite_voxels"], 7);
}

TEST(ReliabilityPrepare, NoTrainingSliceIsAnErrorNamingTheOptionsAndWritesNothing) {
  TempDir dir;
  const auto volume = write_brain(dir.path() / "scan.nii.gz", 40);
  const auto label = write_tube_label(dir.path() / "scan_seg.nii.gz", 40);
  const auto out = dir.path() / "out";
  const std::string cmd = "prepare --volume '" + volume.string() + "' --label '" + label.string() +
                          "' --image-size 32 --out '" + out.string() + "'";
  auto r = run_qfae(cmd);
  expect_one_line_error(r, "no training slice");
  const auto line = last_error_line(r.err);
  for (const char* option : {"--split (now 0.7 0.1 0.2)", "--block (now 16", "show a lesion"}) {
    EXPECT_NE(line.find(option), std::string::npos) << option << ": " << r.err;
  }
  EXPECT_FALSE(fs::exists(out)) << "a refused dataset leaves nothing behind";

  // Over an existing dataset with --force, the refused one leaves the old one as it was.
  const auto good = write_brain(dir.path() / "good.nii.gz");
  r = run_qfae("prepare --volume '" + good.string() + "' --image-size 32 --out '" + out.string() +
               "'");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto before = read_text(out / "manifest.json");
  r = run_qfae(cmd + " --force");
  expect_one_line_error(r, "no training slice");
  EXPECT_EQ(read_text(out / "manifest.json"), before);
  EXPECT_FALSE(fs::exists(out / ".partial"));
}

TEST(ReliabilityPrepare, AnUnreadableVolumeMidwayLeavesNoHalfDataset) {
  TempDir dir;
  const auto volumes = dir.path() / "volumes";
  fs::create_directories(volumes);
  write_brain(volumes / "a.nii.gz");
  dir.write("volumes/b.nii.gz", "not a volume");
  const auto out = dir.path() / "out";
  const auto r = run_qfae("prepare --volume '" + volumes.string() + "' --threads 1 --out '" +
                          out.string() + "' --image-size 32");
  expect_one_line_error(r, (volumes / "b.nii.gz").string());
  EXPECT_FALSE(fs::exists(out));
}

TEST(ReliabilityPrepare, AnUnreadableVolumeFolderIsPermissionDenied) {
  if (!qfae::test::can_run_unprivileged()) GTEST_SKIP() << "root without setpriv";
  TempDir dir;
  const auto volumes = dir.path() / "volumes";
  fs::create_directories(volumes);
  write_brain(volumes / "a.nii.gz");
  qfae::test::NoAccess locked(volumes);
  const auto outs = qfae::test::make_writable_by_all(dir.path() / "outs");
  const auto r = qfae::test::run_qfae_unprivileged("prepare --volume '" + volumes.string() +
                                                   "' --out '" + (outs / "o").string() + "'");
  expect_one_line_error(r, "'" + volumes.string() + "': permission denied");
  EXPECT_FALSE(fs::exists(outs / "o"));
}

TEST(ReliabilityPrepare, AFullDiskIsAOneLineErrorAndLeavesNothing) {
  TempDir dir;
  const auto volume = write_brain(dir.path() / "scan.nii.gz");
  const auto out = dir.path() / "out";
  // SIGXFSZ ignored: a write past the 4 KiB file size limit fails with EFBIG, as on a full disk.
  const auto r =
      qfae::test::run_shell("bash -c \"trap '' XFSZ; ulimit -f 4; exec " + qfae::test::qfae_word() +
                            " prepare --volume '" + volume.string() +
                            "' --image-size 64 --bit-depth 16 --out '" + out.string() + "'\"");
  expect_one_line_error(r, out.string());
  EXPECT_FALSE(fs::exists(out));
}

#endif  // QFAE_HAVE_NIFTI

TEST(ReliabilityPrepare, OutOnAFileIsBadInputNamingIt) {
  TempDir dir;
  const auto file = dir.write("taken", "a file, not a folder");
  auto r = run_qfae("prepare --volume '" + (dir.path() / "scan.nii.gz").string() + "' --out '" +
                    file.string() + "'");
#if QFAE_HAVE_NIFTI
  expect_one_line_error(r, "--out: '" + file.string() + "'");
#endif
  r = run_qfae("prepare --synthetic '" + file.string() + "' --image-size 32 --train 2");
  expect_one_line_error(r, "--synthetic: '" + file.string() + "'");
  EXPECT_EQ(read_text(file), "a file, not a folder");
}

TEST(ReliabilityPrepare, AFullDiskForSyntheticDataIsAOneLineErrorAndLeavesNothing) {
  TempDir dir;
  const auto out = dir.path() / "synthetic";
  const auto r = qfae::test::run_shell("bash -c \"trap '' XFSZ; ulimit -f 1; exec " +
                                       qfae::test::qfae_word() + " prepare --synthetic '" +
                                       out.string() + "' --image-size 128 --train 4\"");
  expect_one_line_error(r, out.string());
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace reliability_prepare_cli
