// Run folders, JSON-lines logs, stop signals and atomic small-file writes.
#include "qfae/engine/run_dir.h"

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <filesystem>

#include "qfae/util/error.h"

namespace fs = std::filesystem;

namespace qfae::engine {
namespace {
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }
}  // namespace

std::string create_run_dir(const std::string& output_dir, const std::string& name) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  const fs::path parent = fs::path(output_dir) / name;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw UserError("output_dir: cannot create '" + parent.string() + "': " + ec.message());
  fs::path dir = parent / stamp;
  for (int n = 2; fs::exists(dir); ++n) dir = parent / (std::string(stamp) + "-" + std::to_string(n));
  fs::create_directories(dir);
  const fs::path latest = parent / "latest";
  fs::remove(latest, ec);
  fs::create_directory_symlink(dir.filename(), latest, ec);  // best effort: some filesystems refuse
  return dir.string();
}

JsonlWriter::JsonlWriter(const std::string& path) : out_(path, std::ios::app) {
  if (!out_) throw UserError("cannot write '" + path + "'");
}

void JsonlWriter::write(const nlohmann::json& event) {
  out_ << event.dump() << "\n";
  out_.flush();
}

void install_stop_handlers() {
  g_stop_signal.store(0);
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int stop_signal() { return g_stop_signal.load(); }
void set_stop_signal(int signal) { g_stop_signal.store(signal); }

}  // namespace qfae::engine
