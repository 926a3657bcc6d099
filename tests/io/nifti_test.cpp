// NIfTI reading: files written by libnifti2 in several orientations come out in LPS order, every
// supported datatype with scl_slope/inter, and bad files give a UserError naming them.
#include "qfae/io/nifti.h"

#include <gtest/gtest.h>

#include <fstream>

#include "../support/nifti_writer.h"
#include "../support/run_binary.h"
#include "../support/user_error.h"

using qfae::test::TempDir;
using qfae::test::user_error;

#if QFAE_HAVE_NIFTI
using qfae::test::Affine;
using qfae::test::NiftiFile;
using qfae::test::write_nifti;

namespace {

// A 5 x 4 x 3 volume given in RAS (i -> Right, j -> Anterior, k -> Superior): every voxel unique.
constexpr int64_t kX = 5, kY = 4, kZ = 3;
double ras_value(int64_t x, int64_t y, int64_t z) { return 100.0 * z + 10.0 * y + x; }

// The value LPS voxel (i, j, k) must hold: i -> Left is x = kX-1-i, j -> Posterior is y = kY-1-j.
double expected_lps(int64_t i, int64_t j, int64_t k) {
  return ras_value(kX - 1 - i, kY - 1 - j, k);
}

NiftiFile ras_file() {
  NiftiFile f;
  f.dims = {kX, kY, kZ};
  for (int64_t z = 0; z < kZ; ++z)
    for (int64_t y = 0; y < kY; ++y)
      for (int64_t x = 0; x < kX; ++x) f.values.push_back(ras_value(x, y, z));
  return f;
}

void expect_lps_content(const qfae::io::Volume& v) {
  ASSERT_EQ(v.width, kX);
  ASSERT_EQ(v.height, kY);
  ASSERT_EQ(v.depth, kZ);
  for (int64_t k = 0; k < kZ; ++k)
    for (int64_t j = 0; j < kY; ++j)
      for (int64_t i = 0; i < kX; ++i)
        ASSERT_EQ(v.voxels[(k * kY + j) * kX + i], expected_lps(i, j, k)) << i << j << k;
}

}  // namespace

TEST(Nifti, RasVolumeComesOutAnteriorUpRadiological) {
  TempDir dir;
  const auto path = (dir.path() / "ras.nii.gz").string();
  write_nifti(ras_file(), path);
  const auto v = qfae::io::read_nifti(path);
  EXPECT_EQ(v.file_axes, "RAS");
  EXPECT_EQ(v.transform, "qform");
  expect_lps_content(v);
  // Row 0 of an axial slice is the most anterior row, column 0 the subject's rightmost column.
  EXPECT_EQ(v.slice(1)[0], ras_value(kX - 1, kY - 1, 1));
  EXPECT_EQ(v.file_slice(2), 2);
}

TEST(Nifti, LasSformAndPermutedAxesGiveTheSameVolume) {
  TempDir dir;
  // LAS in the sform (i -> Left), with a qform that disagrees: the sform wins.
  NiftiFile las;
  las.dims = {kX, kY, kZ};
  for (int64_t z = 0; z < kZ; ++z)
    for (int64_t y = 0; y < kY; ++y)
      for (int64_t i = 0; i < kX; ++i) las.values.push_back(ras_value(kX - 1 - i, y, z));
  las.sform_code = 2;
  las.sform = Affine{{{-1, 0, 0, 4}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}};
  las.qform = Affine{{{0, 0, 1, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}}};
  write_nifti(las, (dir.path() / "las.nii").string());
  auto v = qfae::io::read_nifti((dir.path() / "las.nii").string());
  EXPECT_EQ(v.file_axes, "LAS");
  EXPECT_EQ(v.transform, "sform");
  expect_lps_content(v);

  // A sagittal-style file: i -> Anterior, j -> Superior, k -> Left (qform only, with 2 mm slices).
  NiftiFile asl;
  asl.dims = {kY, kZ, kX};
  for (int64_t k = 0; k < kX; ++k)
    for (int64_t j = 0; j < kZ; ++j)
      for (int64_t i = 0; i < kY; ++i) asl.values.push_back(ras_value(kX - 1 - k, i, j));
  asl.qform = Affine{{{0, 0, -2, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 0, 1}}};
  write_nifti(asl, (dir.path() / "asl.nii.gz").string());
  v = qfae::io::read_nifti((dir.path() / "asl.nii.gz").string());
  EXPECT_EQ(v.file_axes, "ASL");
  expect_lps_content(v);
  EXPECT_DOUBLE_EQ(v.spacing[0], 2.0);  // the Left axis is the file's k with 2 mm voxels
  EXPECT_EQ(v.slice_axis_in_file, 1);
  EXPECT_FALSE(v.slice_flipped);

  // Superior-to-inferior slices (RAI): k is flipped and file_slice maps back.
  NiftiFile rai;
  rai.dims = {kX, kY, kZ};
  for (int64_t k = 0; k < kZ; ++k)
    for (int64_t y = 0; y < kY; ++y)
      for (int64_t x = 0; x < kX; ++x) rai.values.push_back(ras_value(x, y, kZ - 1 - k));
  rai.qform = Affine{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, -1, 0}, {0, 0, 0, 1}}};
  write_nifti(rai, (dir.path() / "rai.nii").string());
  v = qfae::io::read_nifti((dir.path() / "rai.nii").string());
  EXPECT_EQ(v.file_axes, "RAI");
  expect_lps_content(v);
  EXPECT_TRUE(v.slice_flipped);
  EXPECT_EQ(v.file_slice(0), kZ - 1);

  // Neither transform set: taken as RAS.
  auto none = ras_file();
  none.qform_code = 0;
  write_nifti(none, (dir.path() / "none.nii").string());
  v = qfae::io::read_nifti((dir.path() / "none.nii").string());
  EXPECT_EQ(v.transform, "none");
  expect_lps_content(v);
}

TEST(Nifti, ReadsEveryDatatypeWithSlopeAndIntercept) {
  TempDir dir;
  for (int dt : {DT_UINT8, DT_INT16, DT_UINT16, DT_INT32, DT_FLOAT32, DT_FLOAT64}) {
    for (const double slope : {0.0, 2.5}) {
      auto f = ras_file();
      for (auto& x : f.values) x = std::fmod(x, 250.0);  // fits every type
      if (dt == DT_INT16) f.values[3] = -7;
      f.datatype = dt;
      f.slope = slope;
      f.inter = slope ? -3.0 : 0.0;
      const auto path = (dir.path() / ("dt" + std::to_string(dt) + ".nii.gz")).string();
      write_nifti(f, path);
      const auto v = qfae::io::read_nifti(path);
      for (int64_t k = 0; k < kZ; ++k)
        for (int64_t j = 0; j < kY; ++j)
          for (int64_t i = 0; i < kX; ++i) {
            double raw = std::fmod(expected_lps(i, j, k), 250.0);
            if (dt == DT_INT16 && kX - 1 - i == 3 && kY - 1 - j == 0 && k == 0) raw = -7;
            const double want = slope ? raw * slope - 3.0 : raw;
            ASSERT_FLOAT_EQ(v.voxels[(k * kY + j) * kX + i], want)
                << nifti_datatype_string(dt) << " slope " << slope;
          }
    }
  }
}

TEST(Nifti, BadFilesNameTheFile) {
  TempDir dir;
  const auto missing = (dir.path() / "missing.nii.gz").string();
  EXPECT_NE(user_error([&] { qfae::io::read_nifti(missing); }).find(missing), std::string::npos);
  const auto empty = dir.write("empty.nii", "").string();
  EXPECT_NE(user_error([&] { qfae::io::read_nifti(empty); }).find("empty.nii"), std::string::npos);
  const auto junk = dir.write("junk.nii", std::string(600, 'x')).string();
  EXPECT_NE(user_error([&] { qfae::io::read_nifti(junk); }).find(junk), std::string::npos);

  // A gzipped volume cut in half: the header reads, the data does not.
  auto big = ras_file();
  big.dims = {40, 40, 40};
  big.values.assign(40 * 40 * 40, 0.0);
  for (size_t i = 0; i < big.values.size(); ++i) big.values[i] = static_cast<double>(i % 997);
  const auto whole = (dir.path() / "whole.nii.gz").string();
  write_nifti(big, whole);
  std::ifstream in(whole, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto cut = dir.write("cut.nii.gz", bytes.substr(0, bytes.size() / 2)).string();
  EXPECT_NE(user_error([&] { qfae::io::read_nifti(cut); }).find(cut), std::string::npos);

  // Two volumes in one 4-D file, and an unsupported datatype.
  auto four = ras_file();
  four.dims = {kX, kY, kZ, 2};
  four.values.resize(four.values.size() * 2, 1.0);
  const auto four_path = (dir.path() / "four.nii").string();
  write_nifti(four, four_path);
  const auto msg = user_error([&] { qfae::io::read_nifti(four_path); });
  EXPECT_NE(msg.find(four_path), std::string::npos) << msg;
  EXPECT_NE(msg.find("single 3-D volume"), std::string::npos) << msg;
  auto complex = ras_file();
  complex.datatype = DT_COMPLEX64;
  const auto complex_path = (dir.path() / "complex.nii").string();
  write_nifti(complex, complex_path);
  const auto cmsg = user_error([&] { qfae::io::read_nifti(complex_path); });
  EXPECT_NE(cmsg.find(complex_path), std::string::npos) << cmsg;
  EXPECT_NE(cmsg.find("COMPLEX"), std::string::npos) << cmsg;
}

#else  // no libnifti2 in this build

TEST(Nifti, WithoutLibniftiReadingSaysSo) {
  EXPECT_FALSE(qfae::io::have_nifti());
  const auto msg = user_error([] { qfae::io::read_nifti("/x/a.nii.gz"); });
  EXPECT_NE(msg.find("no NIfTI support"), std::string::npos) << msg;
  EXPECT_NE(msg.find("/x/a.nii.gz"), std::string::npos) << msg;
}

#endif

TEST(Nifti, RecognisesNiftiFileNames) {
  EXPECT_TRUE(qfae::io::is_nifti_file("/a/b_flair.nii.gz"));
  EXPECT_TRUE(qfae::io::is_nifti_file("b.NII"));
  EXPECT_TRUE(qfae::io::is_nifti_file("b.hdr"));
  EXPECT_FALSE(qfae::io::is_nifti_file("b.png"));
  EXPECT_FALSE(qfae::io::is_nifti_file(".nii"));
}
