// Unreadable is not missing: folders that may not be read are errors naming them (exit 2), never
// empty splits, and links that lead nowhere fail or are skipped like unreadable images in train,
// eval and infer, by name.
#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../support/run_binary.h"
#include "../support/tiny_run.h"
#include "../support/unprivileged.h"

namespace fs = std::filesystem;
using qfae::test::read_text;
using qfae::test::run_qfae;
using qfae::test::TempDir;
using qfae::test::tiny_sets;

namespace reliability_data_cli {

// The first file named `name` under `root` ("" when there is none).
fs::path find_under(const fs::path& root, const std::string& name) {
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.path().filename() == name) return e.path();
  }
  return {};
}

// A link in `dir` named `name`, in place of the file of that name if there is one, that leads to a
// file that does not exist.
fs::path add_broken_link(const fs::path& dir, const std::string& name) {
  const fs::path link = dir / name;
  fs::remove(link);
  fs::create_symlink(dir / "gone" / name, link);
  return link;
}

std::string last_line(const std::string& err) {
  const auto from = err.rfind("qfae: ");
  return from == std::string::npos ? err : err.substr(from);
}

// `qfae train` as uid 65534 on `data` (the tiny config), runs written under `runs`.
qfae::test::RunResult train_unprivileged(const fs::path& data, const fs::path& runs) {
  qfae::test::make_writable_by_all(runs);
  return qfae::test::run_qfae_unprivileged("train -o '" + runs.string() + "'" + tiny_sets(data));
}

TEST(ReliabilityData, UnreadableTestClassFolderIsAnErrorNamingIt) {
  if (!qfae::test::can_run_unprivileged()) GTEST_SKIP() << "root without setpriv";
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  const fs::path ungood = data / "test" / "Ungood";
  qfae::test::NoAccess locked(ungood);
  const auto r = train_unprivileged(data, dir.path() / "runs");
  EXPECT_EQ(r.code, 2) << r.err;
  const auto line = last_line(r.err);
  EXPECT_NE(line.find("'" + ungood.string() + "': permission denied"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("0 anomalous"), std::string::npos) << "the class must not just vanish";
}

TEST(ReliabilityData, UnreadableTrainFolderIsNotAMissingOne) {
  if (!qfae::test::can_run_unprivileged()) GTEST_SKIP() << "root without setpriv";
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  qfae::test::NoAccess locked(data / "train");
  for (const char* layout : {"bmad", "auto"}) {
    const auto r = qfae::test::run_qfae_unprivileged(
        "train -o '" + qfae::test::make_writable_by_all(dir.path() / "runs").string() + "'" +
        tiny_sets(data, {std::string("data.layout=") + layout}));
    EXPECT_EQ(r.code, 2) << layout << ": " << r.err;
    const auto line = last_line(r.err);
    EXPECT_NE(line.find("'" + (data / "train").string() + "': permission denied"),
              std::string::npos)
        << layout << ": " << r.err;
    EXPECT_EQ(line.find("has no train/good"), std::string::npos) << layout << ": " << r.err;
    EXPECT_EQ(line.find("matches no known dataset layout"), std::string::npos) << r.err;
  }
}

TEST(ReliabilityData, BrokenLinkInTrainFailsNamingItOrIsSkippedAndListed) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  // In place of an image: 16 training images make 4 full batches, so every epoch reads it.
  const auto link = add_broken_link(data / "train" / "good" / "img", "train_0003.png");

  auto r = run_qfae("train -o '" + (dir.path() / "fail").string() + "'" + tiny_sets(data));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(last_line(r.err).find(link.string()), std::string::npos) << r.err;

  r = run_qfae("train -o '" + (dir.path() / "skip").string() + "'" +
               tiny_sets(data, {"data.on_bad_image=skip", "train.epochs=1"}));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto tsv = find_under(dir.path() / "skip", "skipped_images.tsv");
  ASSERT_FALSE(tsv.empty()) << "no skipped_images.tsv";
  const auto listed = read_text(tsv);
  EXPECT_EQ(listed.rfind(link.string() + "\t", 0), 0u) << listed;
  EXPECT_NE(listed.find("broken symbolic link"), std::string::npos) << listed;
}

// One image per batch: its skipped image leaves a whole batch empty, which takes no step. The
// run still ends after its epochs (a killed run here means it went round the epoch forever),
// with one step fewer per epoch than planned.
TEST(ReliabilityData, ABatchWhoseImagesWereAllSkippedTakesNoStep) {
  TempDir dir;
  const auto data = dir.path() / "data";
  qfae::test::tiny_config(data);
  const auto link = add_broken_link(data / "train" / "good" / "img", "train_0003.png");
  const std::string sets = tiny_sets(
      data, {"data.on_bad_image=skip", "train.epochs=2", "train.batch_size=1", "train.log_every=1"});
  const auto r = run_qfae("train -o '" + (dir.path() / "runs").string() + "'" + sets, "",
                          "timeout -s KILL 300");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto metrics = read_text(find_under(dir.path() / "runs", "metrics.jsonl"));
  auto count = [&](const std::string& what) {
    int64_t n = 0;
    for (size_t at = 0; (at = metrics.find(what, at)) != std::string::npos; ++at) ++n;
    return n;
  };
  // 16 training images (tiny_config), one a broken link: 2 x 16 steps planned, 2 x 15 taken.
  EXPECT_NE(r.err.find("; 32 steps"), std::string::npos) << r.err;
  EXPECT_EQ(count("\"event\":\"train\""), 30) << metrics;
  EXPECT_EQ(count("\"event\":\"val\""), 2) << metrics;
  EXPECT_NE(r.err.find("done: 30 steps"), std::string::npos) << r.err;
  const auto skipped = read_text(find_under(dir.path() / "runs", "skipped_images.tsv"));
  EXPECT_EQ(skipped.rfind(link.string() + "\t", 0), 0u) << skipped;
}

// One tiny model trained once, shared by the eval and infer tests below.
class ReliabilityTrained : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    data_ = dir_->path() / "data";
    qfae::test::tiny_config(data_);
    const auto r = run_qfae("train -o '" + (dir_->path() / "runs").string() + "'" +
                            tiny_sets(data_, {"train.epochs=1"}));
    ASSERT_EQ(r.code, 0) << r.err;
    run_ = find_under(dir_->path() / "runs", "checkpoints").parent_path();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static TempDir* dir_;
  static fs::path data_, run_;
};
TempDir* ReliabilityTrained::dir_ = nullptr;
fs::path ReliabilityTrained::data_, ReliabilityTrained::run_;

TEST_F(ReliabilityTrained, EvalOnAnUnreadableTestClassIsAnError) {
  if (!qfae::test::can_run_unprivileged()) GTEST_SKIP() << "root without setpriv";
  const fs::path ungood = data_ / "test" / "Ungood";
  qfae::test::NoAccess locked(ungood);
  const auto out = qfae::test::make_writable_by_all(dir_->path() / "eval-locked");
  const auto r = qfae::test::run_qfae_unprivileged("eval --checkpoint '" + run_.string() +
                                                   "' -o '" + out.string() + "'");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(last_line(r.err).find("'" + ungood.string() + "': permission denied"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(out / "metrics.json"));
}

TEST_F(ReliabilityTrained, EvalFailsOnOrSkipsABrokenLinkInTheTestSplit) {
  TempDir copy;
  const auto data = copy.path() / "data";
  fs::copy(data_, data, fs::copy_options::recursive);
  const auto link = add_broken_link(data / "test" / "Ungood" / "img", "ungood_0099.png");
  const std::string base = "eval --checkpoint '" + run_.string() +
                           "' --set 'data.root=" + data.string() + "' -o '" +
                           (copy.path() / "eval").string() + "'";
  auto r = run_qfae(base);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(last_line(r.err).find(link.string()), std::string::npos) << r.err;

  r = run_qfae(base + " --set data.on_bad_image=skip");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto metrics = nlohmann::json::parse(read_text(copy.path() / "eval" / "metrics.json"));
  bool noted = false;
  for (const auto& note : metrics["notes"]) {
    noted = noted || note.get<std::string>().find("skipped " + link.string()) == 0;
  }
  EXPECT_TRUE(noted) << metrics["notes"].dump();
}

TEST_F(ReliabilityTrained, InferScoresTheOthersAndReportsABrokenLink) {
  TempDir inputs;
  fs::copy_file(data_ / "test" / "good" / "img" / "good_0000.png", inputs.path() / "a.png");
  const auto link = add_broken_link(inputs.path(), "b.png");
  struct Case {
    std::string args;  // the inputs given to infer
    std::string name;
  };
  const std::vector<Case> cases = {
      {"'" + inputs.path().string() + "'", "folder"},
      {"'" + (inputs.path() / "a.png").string() + "' '" + link.string() + "'", "files"}};
  for (const auto& c : cases) {
    const auto out = inputs.path() / ("out-" + c.name);
    const auto r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" + out.string() +
                            "' --no-maps " + c.args);
    EXPECT_EQ(r.code, 3) << c.name << ": " << r.err;
    EXPECT_NE(r.out.find("1 of 2 images scored"), std::string::npos) << c.name << ": " << r.out;
    EXPECT_NE(r.err.find(link.string()), std::string::npos) << c.name << ": " << r.err;
    const auto csv = read_text(out / "scores.csv");
    EXPECT_NE(csv.find(link.string() + ",,"), std::string::npos) << csv;
  }
}

TEST_F(ReliabilityTrained, InferReportsAnUnreadableFolderAndGoesOn) {
  if (!qfae::test::can_run_unprivileged()) GTEST_SKIP() << "root without setpriv";
  TempDir inputs;
  fs::create_directories(inputs.path() / "locked");
  fs::copy_file(data_ / "test" / "good" / "img" / "good_0000.png", inputs.path() / "a.png");
  fs::copy_file(data_ / "test" / "good" / "img" / "good_0001.png",
                inputs.path() / "locked" / "b.png");
  qfae::test::NoAccess locked(inputs.path() / "locked");
  // Results are staged beside their folder, so its parent is what the user must be able to write.
  const auto out = qfae::test::make_writable_by_all(inputs.path() / "outs") / "out";
  const auto r = qfae::test::run_qfae_unprivileged(
      "infer --checkpoint '" + run_.string() + "' -o '" + out.string() + "' --no-maps '" +
      (inputs.path() / "a.png").string() + "' '" + (inputs.path() / "locked").string() + "'");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.out.find("1 of 1 images scored"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("; 1 of 2 inputs gave no image (" + (inputs.path() / "locked").string()),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("'" + (inputs.path() / "locked").string() + "': permission denied"),
            std::string::npos)
      << r.err;
}

// A 1 x 40 strip and a 2 x 2 dot are stretched to the 32 px input: said once, naming one.
TEST_F(ReliabilityTrained, InferWarnsOnceAboutImagesFarFromTheInputShape) {
  TempDir inputs;
  fs::copy_file(data_ / "test" / "good" / "img" / "good_0000.png", inputs.path() / "a.png");
  cv::imwrite((inputs.path() / "b_strip.png").string(), cv::Mat(1, 40, CV_8UC1, cv::Scalar(90)));
  cv::imwrite((inputs.path() / "c_dot.png").string(), cv::Mat(2, 2, CV_8UC1, cv::Scalar(90)));
  const auto r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" +
                          (inputs.path() / "out").string() + "' --no-maps '" +
                          inputs.path().string() + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  const std::string warning = "far from the model's 32x32 input";
  const auto first = r.err.find(warning);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(warning, first + 1), std::string::npos) << "said once: " << r.err;
  // The loader's threads may read either first.
  EXPECT_TRUE(r.err.find("b_strip.png' is 40x1 px") != std::string::npos ||
              r.err.find("c_dot.png' is 2x2 px") != std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("3 of 3 images scored"), std::string::npos) << r.out;
}

// A missing input is not an image but it is a row: scores.csv lists it with its reason, and the
// summary counts it (exit 3).
TEST_F(ReliabilityTrained, InferListsAMissingInputInScoresCsvAndTheSummary) {
  TempDir inputs;
  fs::copy_file(data_ / "test" / "good" / "img" / "good_0000.png", inputs.path() / "a.png");
  const auto gone = inputs.path() / "gone.png";
  const auto out = inputs.path() / "out";
  const auto r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" + out.string() +
                          "' --no-maps '" + (inputs.path() / "a.png").string() + "' '" +
                          gone.string() + "'");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.out.find("1 of 1 images scored"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("; 1 of 2 inputs gave no image (" + gone.string() +
                       ": no such file or folder)"),
            std::string::npos)
      << r.out;
  const auto csv = read_text(out / "scores.csv");
  EXPECT_NE(csv.find("\n" + gone.string() + ",,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("no such file or folder"), std::string::npos) << csv;
}

// --threshold must be a number that decides something; --no-threshold says what it did.
TEST_F(ReliabilityTrained, InferThresholdFlagsSayWhatTheyDo) {
  const auto image = (data_ / "test" / "good" / "img" / "good_0000.png").string();
  const auto out = (dir_->path() / "thr").string();
  for (const char* bad : {"nan", "inf", "-inf"}) {
    const auto r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" + out +
                            "' --no-maps --threshold " + bad + " '" + image + "'");
    EXPECT_EQ(r.code, 2) << bad << ": " << r.err;
    EXPECT_NE(r.err.find("not a finite number"), std::string::npos) << r.err;
  }
  auto r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" + out +
                    "' --no-maps --no-threshold '" + image + "'");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("no threshold (--no-threshold): scores only"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("the checkpoint has"), std::string::npos) << r.err;
  r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" + out +
               "' --no-maps --no-threshold --threshold 0.5 '" + image + "'");
  EXPECT_EQ(r.code, 2) << r.err;
}

// Masks stored as 0/1 labels instead of 0/255 give the same pixel metrics as the 0/255 ones; an
// empty mask of an anomalous image is named in the notes; with every mask empty the pixel metrics
// are null (not exit 2) and the image metrics stand.
TEST_F(ReliabilityTrained, MaskConventionsAndEmptyMasksKeepTheReportTruthful) {
  TempDir copy;
  const auto root = copy.path() / "data";
  fs::copy(data_, root, fs::copy_options::recursive);
  const auto eval = [&](const fs::path& data, const std::string& out) {
    const auto r = run_qfae("eval --checkpoint '" + run_.string() + "' -o '" +
                            (copy.path() / out).string() + "' --set eval.save_maps=false " +
                            "--set 'data.root=" + data.string() + "'");
    EXPECT_EQ(r.code, 0) << r.err;
    return nlohmann::json::parse(read_text(copy.path() / out / "metrics.json"));
  };
  const auto as_255 = eval(data_, "a");
  ASSERT_TRUE(as_255["pixel"].is_object()) << as_255.dump();
  std::vector<fs::path> masks;
  for (const auto& e : fs::directory_iterator(root / "test" / "Ungood" / "label")) {
    masks.push_back(e.path());
  }
  std::sort(masks.begin(), masks.end());
  ASSERT_EQ(masks.size(), 4u);
  for (const auto& m : masks) {
    cv::Mat grey = cv::imread(m.string(), cv::IMREAD_GRAYSCALE), labels;
    cv::threshold(grey, labels, 127, 1, cv::THRESH_BINARY);
    ASSERT_TRUE(cv::imwrite(m.string(), labels));
  }
  const auto as_01 = eval(root, "b");
  for (const char* key : {"auroc", "ap", "best_dice", "aupro", "positives"}) {
    EXPECT_EQ(as_01["pixel"][key], as_255["pixel"][key]) << key;
  }

  const cv::Mat empty = cv::Mat::zeros(cv::imread(masks[0].string()).size(), CV_8UC1);
  ASSERT_TRUE(cv::imwrite(masks[0].string(), empty));
  const auto one_empty = eval(root, "c");
  ASSERT_TRUE(one_empty["pixel"].is_object());
  const auto image_of_mask = root / "test" / "Ungood" / "img" / masks[0].filename();
  EXPECT_NE(one_empty["notes"].dump().find("1 of 4 anomalous images have an empty mask (e.g. the "
                                           "mask of " + image_of_mask.string()),
            std::string::npos)
      << one_empty["notes"].dump();

  for (const auto& m : masks) ASSERT_TRUE(cv::imwrite(m.string(), empty));
  const auto all_empty = eval(root, "d");
  EXPECT_TRUE(all_empty["pixel"].is_null());
  EXPECT_EQ(all_empty["image"]["auroc"], as_255["image"]["auroc"]);
  EXPECT_NE(all_empty["notes"].dump().find("every mask of the 4 anomalous images is empty"),
            std::string::npos)
      << all_empty["notes"].dump();
}

// One finiteness rule for eval and infer: a float image with a NaN pixel gives a map that is not
// finite. infer writes an error row for it (no score, no decision, exit 3) and scores the others;
// eval refuses the split naming the image.
TEST_F(ReliabilityTrained, AMapThatIsNotFiniteIsAnErrorRowInInferAndAnErrorInEval) {
  TempDir inputs;
  fs::copy_file(data_ / "test" / "good" / "img" / "good_0000.png", inputs.path() / "a.png");
  cv::Mat nan_image(32, 32, CV_32FC1, cv::Scalar(0.5));
  nan_image.at<float>(3, 4) = std::numeric_limits<float>::quiet_NaN();
  const auto tiff = inputs.path() / "b.tiff";
  ASSERT_TRUE(cv::imwrite(tiff.string(), nan_image));
  const auto out = inputs.path() / "out";
  auto r = run_qfae("infer --checkpoint '" + run_.string() + "' -o '" + out.string() +
                    "' --threshold 0 '" + inputs.path().string() + "'");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_NE(r.out.find("1 of 2 images scored"), std::string::npos) << r.out;
  const auto csv = read_text(out / "scores.csv");
  // path,score,anomalous,overlay,error: no score, no decision, no overlay for b.tiff.
  EXPECT_NE(csv.find(tiff.string() + ",,,,the anomaly map is not finite"), std::string::npos)
      << csv;
  EXPECT_NE(csv.find((inputs.path() / "a.png").string() + ",0."), std::string::npos) << csv;

  TempDir copy;
  const auto data = copy.path() / "data";
  fs::copy(data_, data, fs::copy_options::recursive);
  const auto planted = data / "test" / "good" / "img" / "good_nan.tiff";
  ASSERT_TRUE(cv::imwrite(planted.string(), nan_image));
  r = run_qfae("eval --checkpoint '" + run_.string() + "' --set 'data.root=" + data.string() +
               "' -o '" + (copy.path() / "eval").string() + "'");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_NE(last_line(r.err).find("the anomaly map of " + planted.string() + " is not finite"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(copy.path() / "eval" / "metrics.json"));
}

// Weights that hold NaN are refused when the checkpoint is loaded, naming the file and the
// tensor, even with checksums not verified (--no-verify: weights edited on purpose).
TEST_F(ReliabilityTrained, ACheckpointWhoseWeightsAreNotFiniteIsRefused) {
  TempDir copy;
  const auto run = copy.path() / "run";
  fs::copy(run_, run, fs::copy_options::recursive);
  // safetensors: an 8-byte little-endian header length, the JSON header, then the data; the
  // first four data bytes become a float32 NaN (the checkpoint's weights are float32), in every
  // checkpoint of the run.
  int planted = 0;
  for (const auto& e : fs::recursive_directory_iterator(run)) {
    if (e.path().filename() != "model.safetensors") continue;
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    uint64_t header = 0;
    f.read(reinterpret_cast<char*>(&header), sizeof header);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    f.seekp(static_cast<std::streamoff>(8 + header));
    f.write(reinterpret_cast<const char*>(&nan), sizeof nan);
    ++planted;
  }
  ASSERT_GT(planted, 0);
  for (const char* command : {"eval", "infer"}) {
    std::string args = std::string(command) + " --no-verify --checkpoint '" + run.string() +
                       "' -o '" + (copy.path() / command).string() + "'";
    if (std::string(command) == "infer") {
      args += " '" + (data_ / "test" / "good" / "img").string() + "'";
    }
    const auto r = run_qfae(args);
    EXPECT_EQ(r.code, 2) << command << ": " << r.err;
    EXPECT_NE(last_line(r.err).find("model.safetensors: the weights '"), std::string::npos)
        << command << ": " << r.err;
    EXPECT_NE(last_line(r.err).find("hold NaN or infinity"), std::string::npos) << r.err;
  }
}

}  // namespace reliability_data_cli
