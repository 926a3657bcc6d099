// Dataset layout readers on tiny generated trees, auto-detection and the validation split.
#include "qfae/data/dataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "../support/run_binary.h"
#include "../support/tree_util.h"

namespace fs = std::filesystem;
using qfae::data::DatasetIndex;
using qfae::data::index_dataset;
using qfae::data::Sample;
using qfae::test::TempDir;
using qfae::test::touch;
using qfae::test::user_error;

namespace {

qfae::config::DataConfig config_for(const fs::path& root, const std::string& layout = "auto") {
  qfae::config::DataConfig cfg;
  cfg.root = root.string();
  cfg.layout = layout;
  return cfg;
}

std::vector<std::string> names(const std::vector<Sample>& samples) {
  std::vector<std::string> out;
  for (const auto& s : samples) out.push_back(fs::path(s.image).filename().string());
  return out;
}

std::string mask_name(const std::vector<Sample>& samples, const std::string& image) {
  for (const auto& s : samples) {
    if (fs::path(s.image).filename() == image) return fs::path(s.mask).filename().string();
  }
  return "<no such image>";
}

int label_of(const std::vector<Sample>& samples, const std::string& image) {
  for (const auto& s : samples) {
    if (fs::path(s.image).filename() == image) return s.label;
  }
  return -1;
}

}  // namespace

TEST(Dataset, BmadWithValAndLabelFolders) {
  TempDir dir;
  const auto& r = dir.path();
  for (const char* f : {"b.png", "a.png", "c.PNG"}) touch(r / "train/good/img" / f);
  touch(r / "train/good/img/readme.txt");  // not an image
  touch(r / "val/good/img/v0.png");
  touch(r / "val/Ungood/img/v1.png");
  touch(r / "val/Ungood/label/v1.png");
  touch(r / "test/good/img/t0.png");
  touch(r / "test/Ungood/img/t1.png");
  touch(r / "test/Ungood/img/t2.jpg");
  touch(r / "test/Ungood/img/t3.png");  // no mask
  touch(r / "test/Ungood/label/t1.png");
  touch(r / "test/Ungood/label/t2.png");  // other extension, same stem
  const auto index = index_dataset(config_for(r), 42);
  EXPECT_EQ(index.layout, "bmad");
  EXPECT_EQ(names(index.train), (std::vector<std::string>{"a.png", "b.png", "c.PNG"}));
  EXPECT_EQ(names(index.val), (std::vector<std::string>{"v0.png", "v1.png"}));
  EXPECT_EQ(mask_name(index.val, "v1.png"), "v1.png");
  EXPECT_EQ(names(index.test), (std::vector<std::string>{"t0.png", "t1.png", "t2.jpg", "t3.png"}));
  EXPECT_EQ(label_of(index.test, "t0.png"), 0);
  EXPECT_EQ(label_of(index.test, "t3.png"), 1);
  EXPECT_EQ(mask_name(index.test, "t1.png"), "t1.png");
  EXPECT_EQ(mask_name(index.test, "t2.jpg"), "t2.png");
  EXPECT_EQ(mask_name(index.test, "t3.png"), "");
  EXPECT_EQ(mask_name(index.test, "t0.png"), "");
}

TEST(Dataset, BmadSpellingsValidAndAnomalyMaskAndGoodLabels) {
  TempDir dir;
  const auto& r = dir.path();
  touch(r / "train/good/img/a.png");
  touch(r / "valid/good/img/v0.png");
  touch(r / "valid/Ungood/img/v1.png");
  touch(r / "valid/Ungood/anomaly_mask/v1.png");
  touch(r / "test/good/img/t0.png");
  touch(r / "test/good/label/t0.png");  // optional masks of normal images
  touch(r / "test/Ungood/img/t1.png");
  touch(r / "test/Ungood/anomaly_mask/t1.png");
  const auto index = index_dataset(config_for(r, "bmad"), 1);
  EXPECT_EQ(index.layout, "bmad");
  EXPECT_EQ(names(index.val), (std::vector<std::string>{"v0.png", "v1.png"}));
  EXPECT_EQ(mask_name(index.val, "v1.png"), "v1.png");
  EXPECT_EQ(mask_name(index.test, "t1.png"), "t1.png");
  EXPECT_EQ(mask_name(index.test, "t0.png"), "t0.png");
  EXPECT_NE(index.test[1].mask.find("anomaly_mask"), std::string::npos);
}

TEST(Dataset, RescSpellings) {
  TempDir dir;
  const auto& r = dir.path();
  touch(r / "Train/train/good/img/a.png");
  touch(r / "Train/train/good/img/b.png");
  touch(r / "Val/val/good/img/v0.png");
  touch(r / "Test/test/good/img/t0.png");
  touch(r / "Test/test/Ungood/img/t1.png");
  touch(r / "Test/test_label/Ungood/t1.png");
  const auto index = index_dataset(config_for(r), 1);
  EXPECT_EQ(index.layout, "resc");
  EXPECT_EQ(names(index.train), (std::vector<std::string>{"a.png", "b.png"}));
  EXPECT_EQ(names(index.val), (std::vector<std::string>{"v0.png"}));
  EXPECT_EQ(names(index.test), (std::vector<std::string>{"t0.png", "t1.png"}));
  EXPECT_NE(mask_name(index.test, "t1.png"), "");
  EXPECT_NE(index.test[1].mask.find("test_label"), std::string::npos);
}

TEST(Dataset, IsicTask3Csv) {
  TempDir dir;
  const auto& r = dir.path();
  const std::string header = "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n";
  for (const char* id : {"ISIC_1", "ISIC_2", "ISIC_3"}) {
    touch(r / "ISIC2018_Task3_Training_Input" / (std::string(id) + ".jpg"));
  }
  qfae::test::text(
      r / "ISIC2018_Task3_Training_GroundTruth/ISIC2018_Task3_Training_GroundTruth.csv",
      header +
          "ISIC_1,0.0,1.0,0.0,0.0,0.0,0.0,0.0\n"
          "ISIC_2,1.0,0.0,0.0,0.0,0.0,0.0,0.0\n"
          "ISIC_3,0.0,1.0,0.0,0.0,0.0,0.0,0.0\n");
  touch(r / "ISIC2018_Task3_Test_Input/ISIC_8.jpg");
  touch(r / "ISIC2018_Task3_Test_Input/ISIC_9.jpg");
  qfae::test::text(r / "ISIC2018_Task3_Test_GroundTruth.csv",  // csv directly in the root
                   header + "ISIC_9,0,0,1,0,0,0,0\nISIC_8,0,1,0,0,0,0,0\n");
  const auto index = index_dataset(config_for(r), 3);
  EXPECT_EQ(index.layout, "isic");
  std::vector<std::string> all = names(index.train);
  for (const auto& n : names(index.val)) all.push_back(n);
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<std::string>{"ISIC_1.jpg", "ISIC_3.jpg"}));  // NV only
  EXPECT_EQ(names(index.test), (std::vector<std::string>{"ISIC_8.jpg", "ISIC_9.jpg"}));
  EXPECT_EQ(label_of(index.test, "ISIC_8.jpg"), 0);
  EXPECT_EQ(label_of(index.test, "ISIC_9.jpg"), 1);
}

TEST(Dataset, IsicMissingImageIsNamed) {
  TempDir dir;
  const auto& r = dir.path();
  touch(r / "ISIC2018_Task3_Training_Input/ISIC_1.jpg");
  qfae::test::text(r / "ISIC2018_Task3_Training_GroundTruth.csv",
                   "image,MEL,NV\nISIC_1,0,1\nISIC_404,0,1\n");
  EXPECT_NE(user_error([&] { index_dataset(config_for(r), 0); }).find("ISIC_404"),
            std::string::npos);
}

TEST(Dataset, RsnaDataJson) {
  TempDir dir;
  const auto& r = dir.path();
  for (const char* f : {"n1.png", "n2.png", "n3.png", "tn.png", "ta.png"}) touch(r / "images" / f);
  qfae::test::text(r / "data.json", R"({"train": {"0": ["n2.png", "n1.png", "n3.png"]},
      "test": {"0": ["tn.png"], "1": ["ta.png"]}})");
  auto cfg = config_for(r);
  cfg.val_ratio = 0.34;  // round(0.34 * 3) = 1
  const auto index = index_dataset(cfg, 5);
  EXPECT_EQ(index.layout, "rsna");
  EXPECT_EQ(index.train.size(), 2u);
  EXPECT_EQ(index.val.size(), 1u);
  EXPECT_EQ(names(index.test), (std::vector<std::string>{"tn.png", "ta.png"}));
  EXPECT_EQ(label_of(index.test, "ta.png"), 1);
  qfae::test::text(r / "data.json", R"({"train": {"0": ["gone.png"]}})");
  EXPECT_NE(user_error([&] { index_dataset(cfg, 5); }).find("gone.png"), std::string::npos);
}

TEST(Dataset, BratsFlairToSegMasksAndSubjects) {
  TempDir dir;
  const auto& r = dir.path();
  touch(r / "train/BraTS2021_00001/BraTS2021_00001_flair_70.png");
  touch(r / "train/BraTS2021_00001/BraTS2021_00001_flair_71.png");
  touch(r / "train/BraTS2021_00002_flair_70.png");
  touch(r / "test/normal/BraTS2021_00009_flair_10.png");
  touch(r / "test/tumor/BraTS2021_00009_flair_80.png");
  touch(r / "test/annotation/BraTS2021_00009_seg_80.png");
  auto cfg = config_for(r);
  cfg.val_ratio = 0.5;  // one of the two subjects, both of its slices together
  const auto index = index_dataset(cfg, 7);
  EXPECT_EQ(index.layout, "brats");
  std::set<std::string> train_subjects, val_subjects;
  for (const auto& s : index.train) train_subjects.insert(s.subject);
  for (const auto& s : index.val) val_subjects.insert(s.subject);
  EXPECT_EQ(train_subjects.size(), 1u);
  EXPECT_EQ(val_subjects.size(), 1u);
  EXPECT_NE(*train_subjects.begin(), *val_subjects.begin());
  EXPECT_EQ(index.train.size() + index.val.size(), 3u);
  EXPECT_EQ(mask_name(index.test, "BraTS2021_00009_flair_80.png"), "BraTS2021_00009_seg_80.png");
  EXPECT_EQ(label_of(index.test, "BraTS2021_00009_flair_80.png"), 1);
  EXPECT_EQ(label_of(index.test, "BraTS2021_00009_flair_10.png"), 0);
}

TEST(Dataset, GenericFolderLayout) {
  TempDir dir;
  const auto& r = dir.path();
  for (int i = 0; i < 10; ++i) touch(r / "ok" / ("n" + std::to_string(i) + ".png"));
  touch(r / "sick/s1.png");
  touch(r / "masks/s1_mask.png");
  auto cfg = config_for(r);
  cfg.normal_dir = "ok";
  cfg.abnormal_dir = "sick";
  cfg.mask_dir = "masks";
  cfg.val_ratio = 0.25;
  const auto index = index_dataset(cfg, 9);
  EXPECT_EQ(index.layout, "folder");
  EXPECT_EQ(index.test.size(), 3u);  // round(0.2 * 10) = 2 normals + 1 abnormal
  EXPECT_EQ(index.val.size(), 2u);   // round(0.25 * 8)
  EXPECT_EQ(index.train.size(), 6u);
  EXPECT_EQ(mask_name(index.test, "s1.png"), "s1_mask.png");
  cfg.normal_dir = "absent";
  EXPECT_NE(user_error([&] { index_dataset(cfg, 9); }).find("data.normal_dir"), std::string::npos);
}

TEST(Dataset, AutoDetectionFailsClearlyOnAnEmptyFolder) {
  TempDir dir;
  const auto msg = user_error([&] { index_dataset(config_for(dir.path()), 0); });
  EXPECT_NE(msg.find("matches no known dataset layout"), std::string::npos) << msg;
  for (const char* what : {"train/good", "Train/train/good", "data.json", "Training_Input",
                           "test/{normal,tumor,annotation}", "data.normal_dir"}) {
    EXPECT_NE(msg.find(what), std::string::npos) << what << " missing from: " << msg;
  }
  const auto missing = user_error([&] { index_dataset(config_for(dir.path() / "nope"), 0); });
  EXPECT_NE(missing.find("data.root"), std::string::npos) << missing;
}

TEST(Dataset, ValidationSplitIsSeededDisjointAndNeverTheTestSet) {
  TempDir dir;
  const auto& r = dir.path();
  for (int i = 0; i < 20; ++i)
    touch(r / "train/good/img" / ("n" + std::to_string(100 + i) + ".png"));
  touch(r / "test/good/img/t0.png");
  touch(r / "test/Ungood/img/t1.png");
  auto cfg = config_for(r);
  cfg.val_ratio = 0.25;
  const auto a = index_dataset(cfg, 42), b = index_dataset(cfg, 42), c = index_dataset(cfg, 43);
  EXPECT_EQ(a.val.size(), 5u);
  EXPECT_EQ(a.train.size(), 15u);
  EXPECT_EQ(names(a.val), names(b.val));
  EXPECT_NE(names(a.val), names(c.val));
  std::set<std::string> seen;
  for (const auto& n : names(a.train)) seen.insert(n);
  for (const auto& n : names(a.val)) EXPECT_TRUE(seen.insert(n).second) << n << " in both";
  EXPECT_EQ(seen.size(), 20u);
  const auto sorted = names(a.val);
  EXPECT_TRUE(std::is_sorted(sorted.begin(), sorted.end()));
  for (const auto& n : names(a.val)) EXPECT_NE(n[0], 't');  // never a test image
  const auto t = index_dataset(cfg, 42, /*test_for_val=*/true);
  EXPECT_EQ(names(t.val), (std::vector<std::string>{"t0.png", "t1.png"}));
  EXPECT_EQ(t.train.size(), 20u);
}
