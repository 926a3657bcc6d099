// `qfae prepare`: builds datasets for qfae. Today: a small synthetic BMAD-layout dataset
// (smooth "tissue" with soft-edged lesions and exact masks) for the demo and sanity checks.
#include <filesystem>
#include <memory>

#include "qfae/cli/common.h"
#include "qfae/data/synthetic.h"
#include "qfae/util/error.h"
#include "qfae/util/log.h"

namespace qfae::cli {

namespace {
struct PrepareOptions {
  std::string synthetic;
  int64_t image_size = 64;
  int64_t n_train = 96;
  int64_t n_val = 16;
  int64_t n_test_normal = 24;
  int64_t n_test_anomalous = 24;
  int64_t seed = 42;
  bool force = false;
};
}  // namespace

Command add_prepare_command(CLI::App& app) {
  auto* sub = app.add_subcommand("prepare", "Build a dataset folder in the BMAD layout");
  auto o = std::make_shared<PrepareOptions>();
  sub->add_option("--synthetic", o->synthetic,
                  "Write a synthetic dataset (grey tissue-like images, lesions with masks) here")
      ->required();
  sub->add_option("--image-size", o->image_size, "Side of the written images in pixels")
      ->check(CLI::Range(16, 4096));
  sub->add_option("--train", o->n_train, "Normal training images")->check(CLI::Range(1, 100000));
  sub->add_option("--val", o->n_val, "Normal validation images")->check(CLI::Range(0, 100000));
  sub->add_option("--test-normal", o->n_test_normal, "Normal test images")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--test-anomalous", o->n_test_anomalous, "Test images with lesions")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--seed", o->seed, "Random seed");
  sub->add_flag("--force", o->force, "Write even if the folder already holds a dataset");
  return {sub, [o] {
            namespace fs = std::filesystem;
            const fs::path root(o->synthetic);
            if (fs::exists(root / "train") && !o->force) {
              log("prepare")->info("{} already holds a dataset; keeping it (--force rewrites)",
                                   root.string());
              return 0;
            }
            data::write_synthetic_dataset(root.string(), o->image_size, o->n_train, o->n_val,
                                          o->n_test_normal, o->n_test_anomalous,
                                          static_cast<uint64_t>(o->seed));
            log("prepare")->info("wrote a synthetic dataset to {} ({} train, {} val, {} + {} test)",
                                 root.string(), o->n_train, o->n_val, o->n_test_normal,
                                 o->n_test_anomalous);
            return 0;
          }};
}

}  // namespace qfae::cli
