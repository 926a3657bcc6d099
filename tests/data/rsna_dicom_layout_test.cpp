// The rsna-dicom layout (the RSNA Pneumonia Detection Challenge as distributed) on tiny trees of
// empty .dcm files (the indexer reads only the CSVs and names), and boxes_to_mask by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "qfae/data/dataset.h"
#include "qfae/data/load_sample.h"
#include "../support/run_binary.h"
#include "../support/tree_util.h"

namespace fs = std::filesystem;
using qfae::data::Box;
using qfae::data::index_dataset;
using qfae::data::Sample;
using qfae::test::TempDir;
using qfae::test::text;
using qfae::test::touch;
using qfae::test::user_error;

namespace {

const char* const kOpacity = "Lung Opacity";
const char* const kOther = "No Lung Opacity / Not Normal";

// n0 Normal patients n0..., n1 Lung Opacity (one box each, l1 with two), n2 third class.
struct Tree {
  TempDir dir;
  std::string labels = "patientId,x,y,width,height,Target\n";
  std::string classes = "patientId,class\n";

  Tree(int normal, int opacity, int other) {
    for (int i = 0; i < normal; ++i) add("n" + std::to_string(i), "Normal", {});
    for (int i = 0; i < opacity; ++i) {
      std::vector<Box> boxes = {{10.0 + i, 20, 30, 40}};
      if (i == 1) boxes.push_back({100, 110.5, 20, 25});
      add("l" + std::to_string(i), kOpacity, boxes);
    }
    for (int i = 0; i < other; ++i) add("o" + std::to_string(i), kOther, {});
  }
  void add(const std::string& id, const std::string& category, const std::vector<Box>& boxes) {
    touch(dir.path() / "stage_2_train_images" / (id + ".dcm"));
    for (const auto& b : boxes) {
      labels += id + "," + std::to_string(b.x) + "," + std::to_string(b.y) + "," +
                std::to_string(b.width) + "," + std::to_string(b.height) + ",1\n";
      classes += id + "," + category + "\n";
    }
    if (boxes.empty()) {
      labels += id + ",,,,,0\n";
      classes += id + "," + category + "\n";
    }
  }
  qfae::config::DataConfig config() {
    text(dir.path() / "stage_2_train_labels.csv", labels);
    text(dir.path() / "stage_2_detailed_class_info.csv", classes);
    qfae::config::DataConfig cfg;
    cfg.root = dir.path().string();
    cfg.layout = "rsna-dicom";
    cfg.test_size = {3, 2};
    cfg.val_size = {2, 1};
    return cfg;
  }
};

std::set<std::string> subjects(const std::vector<Sample>& v) {
  std::set<std::string> out;
  for (const auto& s : v) out.insert(s.subject);
  return out;
}

}  // namespace

TEST(RsnaDicomLayout, SplitsByPatientWithTheSizesAskedAndKeepsBoxes) {
  Tree t(12, 3, 3);  // every Lung Opacity patient is drawn: 2 test + 1 val
  const auto index = index_dataset(t.config(), /*seed=*/11);
  EXPECT_EQ(index.layout, "rsna-dicom");
  ASSERT_EQ(index.test.size(), 5u);
  ASSERT_EQ(index.val.size(), 3u);
  ASSERT_EQ(index.train.size(), 12u - 3 - 2);
  std::map<std::string, int> labels_in_test;
  for (const auto& s : index.test) ++labels_in_test[std::to_string(s.label)];
  EXPECT_EQ(labels_in_test["0"], 3);
  EXPECT_EQ(labels_in_test["1"], 2);
  for (const auto& s : index.train) {
    EXPECT_EQ(s.label, 0);
    EXPECT_EQ(s.category, "Normal");
    EXPECT_TRUE(s.boxes.empty());
  }
  // No patient in two splits; the third class is nowhere (data.rsna_abnormal: lung_opacity).
  std::set<std::string> all;
  for (const auto* split : {&index.train, &index.val, &index.test}) {
    for (const auto& id : subjects(*split)) EXPECT_TRUE(all.insert(id).second) << id;
  }
  for (const auto& id : all) EXPECT_NE(id[0], 'o') << id;
  for (const auto* split : {&index.val, &index.test}) {
    for (const auto& s : *split) {
      EXPECT_EQ(fs::path(s.image).stem().string(), s.subject);
      if (s.label == 0) continue;
      EXPECT_EQ(s.category, kOpacity);
      // l<i> has the box (10 + i, 20, 30, 40); l1 also (100, 110.5, 20, 25).
      const int i = std::stoi(s.subject.substr(1));
      ASSERT_EQ(s.boxes.size(), i == 1 ? 2u : 1u) << s.subject;
      EXPECT_DOUBLE_EQ(s.boxes[0].x, 10.0 + i);
      EXPECT_DOUBLE_EQ(s.boxes[0].height, 40.0);
      if (i == 1) EXPECT_DOUBLE_EQ(s.boxes[1].y, 110.5);
    }
  }
  // The summary says what is left out and that the masks are boxes.
  std::string notes;
  for (const auto& n : index.notes) notes += n + "\n";
  EXPECT_NE(notes.find("is left out (3 patients"), std::string::npos) << notes;
  EXPECT_NE(notes.find("boxes, not outlines"), std::string::npos) << notes;
  // The same seed draws the same split; split.csv lists it with the boxes.
  const auto again = index_dataset(t.config(), 11);
  EXPECT_EQ(subjects(again.test), subjects(index.test));
  const std::string table = qfae::data::split_table(index);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 1 + 7 + 3 + 5);
  EXPECT_NE(table.find(",l1,Lung Opacity,,11 20 30 40;100 110.5 20 25\n"), std::string::npos)
      << table;
}

TEST(RsnaDicomLayout, SeedsDrawDifferentTestSets) {
  Tree t(30, 6, 0);
  auto cfg = t.config();
  cfg.test_size = {8, 3};
  std::set<std::set<std::string>> seen;
  for (uint64_t seed = 0; seed < 4; ++seed) seen.insert(subjects(index_dataset(cfg, seed).test));
  EXPECT_GT(seen.size(), 1u);
}

TEST(RsnaDicomLayout, NotNormalCountsAsAnomalousWhenAsked) {
  Tree t(10, 2, 4);
  auto cfg = t.config();
  cfg.rsna_abnormal = "not_normal";
  cfg.test_size = {3, 6};
  cfg.val_size = {1, 0};
  const auto index = index_dataset(cfg, 3);
  int other = 0;
  for (const auto& s : index.test) {
    if (s.category != kOther) continue;
    ++other;
    EXPECT_EQ(s.label, 1);
    EXPECT_FALSE(s.has_mask());
  }
  EXPECT_EQ(other, 4);
}

TEST(RsnaDicomLayout, DetectedByItsFiles) {
  Tree t(4, 1, 0);
  auto cfg = t.config();
  cfg.layout = "auto";
  cfg.test_size = {1, 1};
  cfg.val_size = {1, 0};
  EXPECT_EQ(index_dataset(cfg, 0).layout, "rsna-dicom");
}

TEST(RsnaDicomLayout, BadFilesAreErrorsNamingThem) {
  {
    Tree t(6, 2, 0);
    auto cfg = t.config();
    cfg.test_size = {5, 1};
    cfg.val_size = {1, 1};
    const auto e = user_error([&] { index_dataset(cfg, 0); });
    EXPECT_NE(e.find("data.test_size [5, 1]"), std::string::npos) << e;
  }
  {
    Tree t(6, 2, 0);
    t.classes += "zz,Pneumonia\n";
    const auto e = user_error([&] { index_dataset(t.config(), 0); });
    EXPECT_NE(e.find("stage_2_detailed_class_info.csv' line"), std::string::npos) << e;
    EXPECT_NE(e.find("'Pneumonia'"), std::string::npos) << e;
  }
  {
    Tree t(6, 2, 0);
    t.labels += "n0,1,2,3,4,1\n";  // a box for a Normal patient
    const auto e = user_error([&] { index_dataset(t.config(), 0); });
    EXPECT_NE(e.find("patient n0 has Target 1 but class 'Normal'"), std::string::npos) << e;
  }
  {
    Tree t(6, 2, 0);
    t.labels += "l0,1,two,3,4,1\n";
    const auto e = user_error([&] { index_dataset(t.config(), 0); });
    EXPECT_NE(e.find("stage_2_train_labels.csv' line"), std::string::npos) << e;
    EXPECT_NE(e.find("y 'two' is not a number"), std::string::npos) << e;
  }
}

TEST(RsnaDicomLayout, MissingAndUnlistedImagesStopOrAreSkippedByName) {
  Tree t(8, 3, 0);
  auto cfg = t.config();
  const fs::path gone = t.dir.path() / "stage_2_train_images" / "n3.dcm";
  fs::remove(gone);
  touch(t.dir.path() / "stage_2_train_images" / "stray.dcm");
  auto e = user_error([&] { index_dataset(cfg, 0); });
  EXPECT_NE(e.find(gone.string()), std::string::npos) << e;
  fs::remove(t.dir.path() / "stage_2_train_images" / "stray.dcm");
  touch(gone);
  touch(t.dir.path() / "stage_2_train_images" / "stray.dcm");
  e = user_error([&] { index_dataset(cfg, 0); });
  EXPECT_NE(e.find("stray.dcm' is in no row"), std::string::npos) << e;

  fs::remove(gone);
  cfg.on_bad_image = "skip";
  const auto index = index_dataset(cfg, 0);
  ASSERT_EQ(index.skipped.size(), 2u);
  EXPECT_EQ(index.skipped[0].path, gone.string());
  EXPECT_NE(index.skipped[1].path.find("stray.dcm"), std::string::npos);
  EXPECT_EQ(index.train.size() + index.val.size() + index.test.size(), 8u + 3u - 1u);
}

// A hand-worked mask: 6 x 5 image, boxes (1, 1, 2, 3) and (3.6, 0.2, 9, 1.2).
// Box 1 covers columns 1..2 and rows 1..3. Box 2: columns whose centre c + 0.5 lies in
// [3.6, 12.6) are 4 and 5 (clipped at the width 6); rows whose centre lies in [0.2, 1.4) are 0.
TEST(RsnaDicomLayout, BoxesToMaskByHand) {
  const auto mask =
      qfae::data::boxes_to_mask({Box{1, 1, 2, 3}, Box{3.6, 0.2, 9, 1.2}}, /*height=*/5, 6);
  const int expected[5][6] = {{0, 0, 0, 0, 1, 1},
                              {0, 1, 1, 0, 0, 0},
                              {0, 1, 1, 0, 0, 0},
                              {0, 1, 1, 0, 0, 0},
                              {0, 0, 0, 0, 0, 0}};
  ASSERT_EQ(mask.sizes(), (std::vector<int64_t>{1, 5, 6}));
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 6; ++c) {
      EXPECT_EQ(mask[0][r][c].item<float>(), expected[r][c]) << "row " << r << " col " << c;
    }
  }
}
