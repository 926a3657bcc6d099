// The rsna-dicom layout on a synthetic challenge tree written with pydicom by
// scripts/fixtures/make_rsna_fixture.py (tests/scripts/test_rsna_dicom.py sets $QFAE_RSNA_TREE;
// skipped without it): every anomalous patient's mask equals the union of its boxes as numpy drew
// them, and every image equals pydicom's pixels / 255 under data.dicom_window: stored.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "qfae/data/dataset.h"
#include "qfae/data/load_sample.h"
#include "qfae/io/dicom.h"

namespace fs = std::filesystem;

namespace {

torch::Tensor read_u8(const fs::path& file, int64_t size) {
  std::ifstream in(file, std::ios::binary);
  auto t = torch::zeros({size, size}, torch::kUInt8);
  in.read(reinterpret_cast<char*>(t.data_ptr<uint8_t>()), size * size);
  EXPECT_TRUE(in.good()) << file;
  return t.to(torch::kFloat32);
}

}  // namespace

TEST(RsnaDicomPydicom, MasksAreTheBoxesAndImagesArePydicomsPixels) {
  const char* dir = std::getenv("QFAE_RSNA_TREE");
  if (!dir) GTEST_SKIP() << "QFAE_RSNA_TREE not set: run tests/scripts/test_rsna_dicom.py";
  if (!qfae::io::dicom_supported()) GTEST_SKIP() << "built without GDCM";
  std::ifstream in(fs::path(dir) / "expected.json");
  const auto expected = nlohmann::json::parse(in);
  const int64_t size = expected["size"];
  qfae::config::DataConfig cfg;
  cfg.root = dir;
  cfg.layout = "rsna-dicom";
  cfg.image_size = size;  // no resizing: the mask must be the boxes pixel for pixel
  cfg.dicom_window = "stored";
  int opacity = 0, other = 0;
  for (const auto& [id, p] : expected["patients"].items()) {
    opacity += p["class"] == "Lung Opacity";
    other += p["class"] == "No Lung Opacity / Not Normal";
  }
  cfg.test_size = {4, opacity - 2};
  cfg.val_size = {2, 2};
  const auto index = qfae::data::index_dataset(cfg, /*seed=*/5);
  int checked = 0, two_boxes = 0;
  for (const auto* split : {&index.train, &index.val, &index.test}) {
    for (const auto& s : *split) {
      SCOPED_TRACE(s.image);
      const auto& p = expected["patients"][s.subject];
      EXPECT_EQ(s.category, p["class"].get<std::string>());
      EXPECT_EQ(s.label, p["class"] == "Normal" ? 0 : 1);
      ASSERT_EQ(s.boxes.size(), p["boxes"].size());
      const auto loaded = qfae::data::load_sample(s, cfg, /*augment=*/false, 0);
      const auto pixels = read_u8(fs::path(dir) / "pixels" / (s.subject + ".u8"), size);
      const auto image = loaded.image[0] * cfg.std + cfg.mean;
      EXPECT_LT((image - pixels / 255).abs().max().item<float>(), 1e-5);
      const auto mask = read_u8(fs::path(dir) / "masks" / (s.subject + ".u8"), size);
      EXPECT_TRUE(torch::equal(loaded.mask[0], mask))
          << "mask differs at " << (loaded.mask[0] != mask).nonzero().slice(0, 0, 5);
      EXPECT_EQ(mask.sum().item<float>() > 0, s.label == 1);
      two_boxes += s.boxes.size() == 2;
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(expected["patients"].size()) - other);  // third class out
  EXPECT_EQ(two_boxes, 1);
}
