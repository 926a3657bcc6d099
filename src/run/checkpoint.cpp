// Checkpoint folders: written to "<dir>.tmp", then swapped in with renames.
#include "qfae/run/checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <vector>
#include <fstream>
#include <sstream>

#include "qfae/config/loader.h"
#include "qfae/io/safetensors.h"
#include "qfae/io/state_dict.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"
#include "qfae/util/log.h"
#include "qfae/util/sha256.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::run {
namespace {

// UserError naming the file and the first tensor (in name order) that holds NaN or infinity:
// such weights give maps that are not finite for every image, so they are refused at load.
void require_finite_weights(const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& file) {
  for (const auto& [name, t] : tensors) {
    if (t.is_floating_point() && !torch::isfinite(t).all().item<bool>()) {
      throw UserError(file + ": the weights '" + name + "' hold NaN or infinity (did training "
                      "diverge?); qfae loads only finite weights");
    }
  }
}

bool g_verify = true;

// The files of a checkpoint folder, in the order written; checksums.sha256 lists those present.
const std::vector<std::string> kFiles = {"model.safetensors", "optimizer.pt", "state.json",
                                         "config.yaml"};

// The "<hex>  <name>" lines of `sha256sum` for the files of `dir` that exist.
std::string checksum_lines(const fs::path& dir) {
  std::string text;
  for (const auto& name : kFiles) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / name, ec)) continue;
    text += sha256_file((dir / name).string()) + "  " + name + "\n";
  }
  return text;
}

// name -> recorded digest, from <dir>/checksums.sha256; empty when the folder has none.
std::map<std::string, std::string> recorded_checksums(const fs::path& dir) {
  std::map<std::string, std::string> out;
  const fs::path file = dir / kChecksumsFile;
  std::error_code ec;
  if (!fs::exists(file, ec)) return out;
  std::ifstream in(file);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    // sha256sum writes "<64 hex>  <name>" ("<64 hex> *<name>" in binary mode).
    const bool ok = line.size() > 66 && line[64] == ' ' && (line[65] == ' ' || line[65] == '*') &&
                    line.find_first_not_of("0123456789abcdef") >= 64;
    if (!ok) {
      throw UserError(file.string() + ":" + std::to_string(number) + ": not a 'sha256  file' "
                      "line; the checkpoint's checksums are damaged (--no-verify loads it anyway)");
    }
    out[line.substr(66)] = line.substr(0, 64);
  }
  if (out.empty()) {
    throw UserError(file.string() + " is empty; the checkpoint's checksums are damaged "
                    "(--no-verify loads it anyway)");
  }
  return out;
}

json to_json(const TrainProgress& p) {
  json j = {{"format", kCheckpointFormat}, {"qfae_version", QFAE_VERSION},
            {"step", p.step}, {"epoch", p.epoch}, {"batch", p.batch}, {"best_step", p.best_step}};
  // JSON has no infinity or NaN: absent means "none yet".
  if (std::isfinite(p.best_val_loss)) j["best_val_loss"] = p.best_val_loss;
  if (std::isfinite(p.threshold)) j["threshold"] = p.threshold;
  if (std::isfinite(p.map_scale)) j["map_scale"] = p.map_scale;
  return j;
}

TrainProgress from_json(const json& j) {
  TrainProgress p;
  p.step = j.at("step").get<int64_t>();
  p.epoch = j.at("epoch").get<int64_t>();
  p.batch = j.at("batch").get<int64_t>();
  p.best_step = j.value("best_step", int64_t{-1});
  if (j.contains("best_val_loss")) p.best_val_loss = j["best_val_loss"].get<double>();
  if (j.contains("threshold")) p.threshold = j["threshold"].get<double>();
  if (j.contains("map_scale")) p.map_scale = j["map_scale"].get<double>();
  return p;
}

// Writes every file of the checkpoint into `tmp`. Any failure is a UserError naming the file.
void write_checkpoint_files(const fs::path& tmp, const torch::nn::Module& model,
                            torch::optim::Optimizer* optimizer, const TrainProgress& progress,
                            const config::Config& config) {
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) throw UserError("cannot create '" + tmp.string() + "': " + ec.message());
  io::save_safetensors((tmp / "model.safetensors").string(), io::module_state(model),
                       {{"format", "qfae-" + std::to_string(kCheckpointFormat)},
                        {"step", std::to_string(progress.step)}});
  if (optimizer) {
    // Serialised in memory first: LibTorch's file writer reports a failed write from its
    // destructor, which ends the process instead of throwing.
    std::ostringstream bytes;
    torch::save(*optimizer, bytes);
    write_file_atomic((tmp / "optimizer.pt").string(), bytes.str());
  }
  write_file_atomic((tmp / "state.json").string(), to_json(progress).dump(1) + "\n");
  config::save_yaml(config, (tmp / "config.yaml").string());
  // Last: read back from the files as written, so a later change to any of them shows.
  write_file_atomic((tmp / kChecksumsFile).string(), checksum_lines(tmp));
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) throw UserError("cannot rename '" + from.string() + "' to '" + to.string() + "': " +
                          ec.message());
}

// The folder that holds the checkpoint `dir` names: itself, or "<dir>.old" after a crash
// between the two renames of save_checkpoint (then "<dir>" is missing and "<dir>.tmp" may be
// incomplete). "" when neither holds one.
fs::path recover_checkpoint_dir(const fs::path& dir) {
  for (const fs::path& candidate : {dir, fs::path(dir.string() + ".old")}) {
    std::error_code ec;
    if (fs::is_regular_file(candidate / "model.safetensors", ec)) return candidate;
  }
  return {};
}

}  // namespace

void save_checkpoint(const std::string& dir, const torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainProgress& progress,
                     const config::Config& config) {
  const fs::path final_dir(dir), tmp(dir + ".tmp"), old(dir + ".old");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  // A crash between the renames of an earlier save left only "<dir>.old": put it back first, so
  // that the only good copy is never the one removed below.
  if (!fs::exists(final_dir) && fs::is_directory(old)) rename_or_throw(old, final_dir);
  try {
    write_checkpoint_files(tmp, model, optimizer, progress, config);
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);  // the previous checkpoint in `dir` is untouched
    if (dynamic_cast<const UserError*>(&e)) throw;
    throw UserError("cannot write checkpoint '" + dir + "': " + first_line(e.what()));
  }
  // Swap: the old folder stays until the new one is in place; every reader of a checkpoint
  // (recover_checkpoint_dir) takes "<dir>.old" when a crash came between the two renames.
  fs::remove_all(old, ec);
  if (fs::exists(final_dir)) rename_or_throw(final_dir, old);
  rename_or_throw(tmp, final_dir);
  fs::remove_all(old, ec);
}

void set_verify_checksums(bool verify) { g_verify = verify; }

bool verify_checkpoint_files(const std::string& dir, const std::vector<std::string>& files) {
  const fs::path d(dir);
  if (!g_verify) {
    log("checkpoint")->warn("{}: checksums not verified (--no-verify)", dir);
    return false;
  }
  const auto recorded = recorded_checksums(d);
  if (recorded.empty()) {
    log("checkpoint")->info("{}: no {} (written before qfae recorded checksums): not verified",
                            dir, kChecksumsFile);
    return false;
  }
  for (const auto& name : files) {
    const auto it = recorded.find(name);
    std::error_code ec;
    const bool present = fs::is_regular_file(d / name, ec);
    if (it == recorded.end()) {
      if (!present) continue;  // neither written nor recorded (an optimizer-less folder)
      throw UserError("checkpoint '" + dir + "': " + name + " is not in its " + kChecksumsFile +
                      ", so it was added after saving; remove it, or load with --no-verify");
    }
    if (!present) {
      throw UserError("checkpoint '" + dir + "': " + name + " is missing (" + kChecksumsFile +
                      " records it): the folder was copied or synced only in part");
    }
    const auto found = sha256_file((d / name).string());
    if (found != it->second) {
      throw UserError("checkpoint '" + dir + "': " + name + " differs from the file saved (sha256 " +
                      found.substr(0, 12) + "..., recorded " + it->second.substr(0, 12) +
                      "...): changed after saving by a bad copy, a partial sync or a failing disk; "
                      "copy it again, or load with --no-verify if it was edited on purpose");
    }
  }
  return true;
}

TrainProgress load_checkpoint(const std::string& dir, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer, torch::Device device) {
  fs::path d = recover_checkpoint_dir(dir);
  if (d.empty()) d = dir;
  // Every file this load and the config reader use; optimizer.pt only when it is loaded.
  std::vector<std::string> used = {"model.safetensors", "state.json", "config.yaml"};
  if (optimizer) used.push_back("optimizer.pt");
  verify_checkpoint_files(d.string(), used);
  const fs::path weights = d / "model.safetensors", state = d / "state.json";
  if (!fs::is_regular_file(weights) || !fs::is_regular_file(state)) {
    throw UserError("checkpoint '" + dir + "': expected model.safetensors and state.json in it");
  }
  const auto file = io::load_safetensors(weights.string());
  require_finite_weights(file.tensors, weights.string());
  io::load_module_state(model, file.tensors, "", /*strict=*/true, weights.string());
  TrainProgress progress;
  try {
    std::ifstream in(state);
    const json j = json::parse(in);
    if (j.value("format", 0) > kCheckpointFormat) {
      throw UserError(state.string() + ": format " + std::to_string(j.value("format", 0)) +
                      " is newer than this qfae reads (" + std::to_string(kCheckpointFormat) + ")");
    }
    progress = from_json(j);
  } catch (const json::exception& e) {
    throw UserError(state.string() + ": not a valid checkpoint state: " + e.what());
  }
  if (optimizer) {
    const fs::path opt = d / "optimizer.pt";
    if (!fs::is_regular_file(opt)) {
      throw UserError("checkpoint '" + dir + "' has no optimizer.pt: it cannot be resumed");
    }
    try {
      torch::load(*optimizer, opt.string(), device);
    } catch (const c10::Error& e) {
      throw UserError(opt.string() + ": not a readable optimizer state for this model (" +
                      first_line(e.what_without_backtrace()) + "); resume needs the run's own "
                      "optimizer.pt");
    }
  }
  return progress;
}

std::string find_checkpoint(const std::string& run_or_checkpoint_dir, const std::string& which) {
  const fs::path p(run_or_checkpoint_dir);
  for (const fs::path& candidate : {p, p / "checkpoints" / which, p / which}) {
    const auto found = recover_checkpoint_dir(candidate);
    if (!found.empty()) return found.string();
  }
  throw UserError("'" + run_or_checkpoint_dir +
                  "' holds no checkpoint (looked for model.safetensors"
                  " in it and in checkpoints/" +
                  which + "/)");
}

std::string find_weights(const std::string& path, const std::string& which) {
  if (fs::is_regular_file(path)) return path;
  if (!fs::is_directory(path)) {
    throw UserError("'" + path + "' is neither a weights file nor a folder");
  }
  return (fs::path(find_checkpoint(path, which)) / "model.safetensors").string();
}

void load_weights(const std::string& file, torch::nn::Module& model) {
  // A checkpoint's or imported model's weights are verified against their folder's checksums.
  const fs::path path(file);
  std::error_code ec;
  if (fs::exists(path.parent_path() / kChecksumsFile, ec) || !g_verify) {
    verify_checkpoint_files(path.parent_path().string(), {path.filename().string()});
  }
  const auto weights = io::load_safetensors(file);
  require_finite_weights(weights.tensors, file);
  io::load_module_state(model, weights.tensors, "", /*strict=*/true, file);
}

}  // namespace qfae::run
