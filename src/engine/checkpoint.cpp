// Checkpoint folders: written to "<dir>.tmp", then swapped in with renames.
#include "qfae/engine/checkpoint.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "qfae/config/loader.h"
#include "qfae/io/safetensors.h"
#include "qfae/io/state_dict.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace qfae::engine {
namespace {

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

}  // namespace

void save_checkpoint(const std::string& dir, const torch::nn::Module& model,
                     torch::optim::Optimizer* optimizer, const TrainProgress& progress,
                     const config::Config& config) {
  const fs::path final_dir(dir), tmp(dir + ".tmp"), old(dir + ".old");
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  const json state = to_json(progress);
  io::save_safetensors((tmp / "model.safetensors").string(), io::module_state(model),
                       {{"format", "qfae-" + std::to_string(kCheckpointFormat)},
                        {"step", std::to_string(progress.step)}});
  if (optimizer) torch::save(*optimizer, (tmp / "optimizer.pt").string());
  write_file_atomic((tmp / "state.json").string(), state.dump(1) + "\n");
  config::save_yaml(config, (tmp / "config.yaml").string());
  // Swap: the old folder stays until the new one is in place.
  fs::remove_all(old);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fs::remove_all(old);
}

TrainProgress load_checkpoint(const std::string& dir, torch::nn::Module& model,
                              torch::optim::Optimizer* optimizer, torch::Device device) {
  fs::path d(dir);
  // A crash between the two renames of save_checkpoint leaves only "<dir>.old".
  if (!fs::exists(d) && fs::exists(dir + ".old")) d = dir + ".old";
  const fs::path weights = d / "model.safetensors", state = d / "state.json";
  if (!fs::is_regular_file(weights) || !fs::is_regular_file(state)) {
    throw UserError("checkpoint '" + dir + "': expected model.safetensors and state.json in it");
  }
  const auto file = io::load_safetensors(weights.string());
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
    torch::load(*optimizer, opt.string(), device);
  }
  return progress;
}

std::string find_checkpoint(const std::string& run_or_checkpoint_dir, const std::string& which) {
  const fs::path p(run_or_checkpoint_dir);
  if (fs::is_regular_file(p / "model.safetensors")) return p.string();
  for (const fs::path& candidate : {p / "checkpoints" / which, p / which}) {
    if (fs::is_regular_file(candidate / "model.safetensors") ||
        fs::exists(candidate.string() + ".old")) {
      return candidate.string();
    }
  }
  throw UserError("'" + run_or_checkpoint_dir + "' holds no checkpoint (looked for model.safetensors"
                  " in it and in checkpoints/" + which + "/)");
}

}  // namespace qfae::engine
