// qfae's DICOM reader against pydicom on pydicom's own test files (cases written by
// tests/scripts/test_dicom_pydicom.py into $QFAE_DICOM_CASES; skipped without it). Each file
// loads with pydicom's values and identifiers, or (where allowed) is refused with a UserError
// naming it; the lossless twins of MR_small load exactly as MR_small. All in one process: no file may crash it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "qfae/io/dicom.h"
#include "qfae/io/image.h"
#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace {

std::vector<double> read_doubles(const fs::path& file, size_t count) {
  std::vector<double> v(count);
  std::ifstream in(file, std::ios::binary);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(double)));
  return v;
}

}  // namespace

TEST(DicomPydicom, EveryTestFileLoadsAsPydicomDecodesItOrIsRefusedByName) {
  const char* dir = std::getenv("QFAE_DICOM_CASES");
  if (!dir) GTEST_SKIP() << "QFAE_DICOM_CASES not set: run tests/scripts/test_dicom_pydicom.py";
  if (!qfae::io::dicom_supported()) GTEST_SKIP() << "built without GDCM";
  std::ifstream in(fs::path(dir) / "cases.json");
  const auto cases = nlohmann::json::parse(in);
  int loaded = 0, equal = 0, refused = 0;
  for (const auto& c : cases) {
    const std::string file = c["file"];
    const std::string expect = c["expect"];
    SCOPED_TRACE(file);
    qfae::io::DicomImage image;
    try {
      image = qfae::io::read_dicom(file);
    } catch (const qfae::UserError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(file), std::string::npos) << "the error names the file: " << what;
      EXPECT_NE(expect, "twin") << "a lossless twin of MR_small must load: " << what;
      ++refused;
      std::printf("refused %s: %s\n", fs::path(file).filename().c_str(), what.c_str());
      continue;
    }
    ++loaded;
    EXPECT_FALSE(image.values.empty());
    if (c.contains("ids")) {
      const auto id = qfae::io::read_dicom_identifiers(file);
      EXPECT_EQ(id.patient_id, c["ids"][0].get<std::string>());
      EXPECT_EQ(id.study_uid, c["ids"][1].get<std::string>());
      EXPECT_EQ(id.sop_uid, c["ids"][2].get<std::string>());
    }
    if (expect == "either") continue;
    const std::vector<int64_t> shape = c["shape"];
    ASSERT_EQ(shape.size(), 3u);
    ASSERT_EQ(image.channels, shape[0]);
    ASSERT_EQ(image.height, shape[1]);
    ASSERT_EQ(image.width, shape[2]);
    const auto expected =
        read_doubles(fs::path(dir) / c["values"].get<std::string>(), image.values.size());
    // pydicom rounds its YBR-to-RGB conversion to integers; everything else is exact.
    const double tolerance = c["colour"].get<bool>() ? 1.0 + 1e-9 : 0.0;
    double worst = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      worst = std::max(worst, std::abs(image.values[i] - expected[i]));
    }
    EXPECT_LE(worst, tolerance) << expect;
    equal += worst <= tolerance;
  }
  std::printf("%zu files: %d loaded (%d checked equal to pydicom), %d refused by name\n",
              cases.size(), loaded, equal, refused);
}

// The windows of data.dicom_window on pydicom's MR_small (its file window: center 600, width 1600)
// and CT_small (none: percentiles), worked out from pydicom's values with the standard's linear
// VOI function, PS3.3 C.11.2.1.2.1: y = ((x - (c - 0.5)) / (w - 1) + 0.5) clipped to [0, 1].
TEST(DicomPydicom, WindowsFollowTheStandardsLinearFunction) {
  const char* dir = std::getenv("QFAE_DICOM_CASES");
  if (!dir) GTEST_SKIP() << "QFAE_DICOM_CASES not set: run tests/scripts/test_dicom_pydicom.py";
  if (!qfae::io::dicom_supported()) GTEST_SKIP() << "built without GDCM";
  std::ifstream in(fs::path(dir) / "cases.json");
  const auto cases = nlohmann::json::parse(in);
  const auto expected_of = [&](const std::string& name, std::string& file) {
    for (const auto& c : cases) {
      if (fs::path(c["file"].get<std::string>()).filename() != name) continue;
      file = c["file"];
      const std::vector<int64_t> shape = c["shape"];
      return read_doubles(fs::path(dir) / c["values"].get<std::string>(),
                          static_cast<size_t>(shape[0] * shape[1] * shape[2]));
    }
    ADD_FAILURE() << name << " is not among the cases";
    return std::vector<double>{};
  };
  std::string mr_file, ct_file;
  const auto mr = expected_of("MR_small.dcm", mr_file);
  const auto ct = expected_of("CT_small.dcm", ct_file);
  ASSERT_FALSE(mr.empty());
  ASSERT_FALSE(ct.empty());

  // The largest difference between qfae's windowed image of `file` and f(pydicom's values).
  const auto worst = [](const std::string& file, const qfae::io::DicomWindow& window,
                        const std::vector<double>& values, const auto& f) {
    const auto unit = qfae::io::read_dicom_image(file, window).flatten().to(torch::kFloat64);
    EXPECT_EQ(unit.numel(), static_cast<int64_t>(values.size()));
    double most = 0;
    for (size_t i = 0; i < values.size() && static_cast<int64_t>(i) < unit.numel(); ++i) {
      const double y = std::clamp(f(values[i]), 0.0, 1.0);
      most = std::max(most, std::abs(unit[static_cast<int64_t>(i)].item<double>() - y));
    }
    return most;
  };
  qfae::io::DicomWindow file_window;  // mode "file"
  EXPECT_LT(worst(mr_file, file_window, mr,
                  [](double x) { return (x - 599.5) / 1599.0 + 0.5; }),
            1e-6)
      << "float32 of the exact value";

  // Fixed [-160, 240] on CT_small's Hounsfield units.
  qfae::io::DicomWindow fixed;
  fixed.mode = "fixed";
  fixed.lo = -160;
  fixed.hi = 240;
  EXPECT_LT(worst(ct_file, fixed, ct, [](double x) { return (x + 160) / 400; }), 1e-6);

  // No file window: the 0.5th and 99.5th percentiles (nearest rank of the sorted values) map to
  // 0 and 1.
  auto sorted = ct;
  std::sort(sorted.begin(), sorted.end());
  const auto rank = [&](double q) {
    return sorted[static_cast<size_t>(std::llround(q * static_cast<double>(sorted.size() - 1)))];
  };
  const double lo = rank(0.005), hi = rank(0.995);
  EXPECT_LT(worst(ct_file, file_window, ct, [&](double x) { return (x - lo) / (hi - lo); }), 1e-6);
}
