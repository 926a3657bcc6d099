// Checkpoint folders: model weights in safetensors under the reference's names (readable with
// safetensors.torch.load_file), optimizer state, progress, and the resolved config. A folder is
// written beside its final name and swapped in by renames, so a crash never leaves half of one.
#pragma once
#include <torch/torch.h>

#include <limits>
#include <string>
#include <vector>

#include "qfae/config/config.h"

namespace qfae::run {

inline constexpr int kCheckpointFormat = 1;
// Each file's SHA-256 as `sha256sum` writes it ("<hex>  <name>" lines; `sha256sum -c` in the
// folder checks them too), written last into every checkpoint folder.
inline constexpr const char* kChecksumsFile = "checksums.sha256";

// Where training stands. Together with the seed this fixes every random draw still to come:
// per-step seeds for dropout, per-epoch seeds for shuffling, per-sample seeds for augmentation.
struct TrainProgress {
  int64_t step = 0;           // optimizer steps done
  int64_t epoch = 0;          // current epoch (0-based)
  int64_t batch = 0;          // batches of `epoch` already done
  double best_val_loss = std::numeric_limits<double>::infinity();
  int64_t best_step = -1;
  // From the latest validation of the normal images (test-time settings), NaN when none yet:
  double threshold = std::numeric_limits<double>::quiet_NaN();  // eval.threshold_percentile of
                                                                // their image scores
  double map_scale = std::numeric_limits<double>::quiet_NaN();  // max of their pixel maps (the
                                                                // overlays' colour scale)
};

// Writes <dir>/{model.safetensors, optimizer.pt (when given), state.json, config.yaml} and then
// <dir>/checksums.sha256 with the digest of each as written. When a
// file cannot be written (full disk, no permission): UserError naming it, the previous <dir>
// intact and nothing temporary left.
void save_checkpoint(const std::string& dir, const torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainProgress& progress,
                     const config::Config& config);

// Loads the model strictly (names and shapes must match) and, when given, the optimizer, whose
// state lands on `device` (the run's, whatever device the checkpoint was saved from). First the
// files it uses (model.safetensors, state.json, config.yaml, and optimizer.pt when loaded) are
// verified against checksums.sha256 (verify_checkpoint_files).
// Weights that hold NaN or infinity are refused. Throws UserError naming the folder or file and
// what is wrong with it.
TrainProgress load_checkpoint(const std::string& dir, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer,
                              torch::Device device = torch::kCPU);

// The folder holding a run's checkpoint `which` (or the folder itself when it is one). After a
// crash between the two renames of save_checkpoint that is "<dir>.old": every reader (train
// --resume, eval, infer) goes through here and recovers the same way.
std::string find_checkpoint(const std::string& run_or_checkpoint_dir,
                            const std::string& which = "last");

// The weights file behind `path` for train.init_from: `path` itself when it is a file, else the
// model.safetensors of the checkpoint folder (an imported model's folder is one) or of the run's
// checkpoint `which`. UserError when there is none.
std::string find_weights(const std::string& path, const std::string& which = "last");

// Whether loads verify checksums (default true); `--no-verify` turns it off for the process, for a
// user who edits weights on purpose.
void set_verify_checksums(bool verify);

// Checks `files` of the checkpoint folder `dir` against its checksums.sha256: UserError naming
// the first file that differs, is missing, or was added after saving. Returns false (with a log
// line saying so) when nothing was verified: a folder written before qfae recorded checksums, or
// verification turned off.
bool verify_checkpoint_files(const std::string& dir, const std::vector<std::string>& files);

// Loads only the weights of `file` into `model`, name by name and shape by shape (UserError naming
// the file and the first tensor that differs or is not finite, nothing copied then). A file with a
// checksums.sha256 beside it (a checkpoint or an imported model folder) is verified first.
void load_weights(const std::string& file, torch::nn::Module& model);

}  // namespace qfae::run
