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

std::string reserve_run_dir(const std::string& output_dir, const std::string& name) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof(stamp), "%Y%m%d-%H%M%S", &tm);
  const fs::path parent = fs::path(output_dir) / name;
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw UserError("output_dir: cannot create '" + parent.string() + "': " + ec.message());
  // create_directory is true only for the process that made the folder: two runs started in the
  // same second get -2, -3, ... and never share one.
  fs::path dir = parent / stamp;
  for (int n = 2; !fs::create_directory(dir, ec); ++n) {
    if (ec) throw UserError("output_dir: cannot create '" + dir.string() + "': " + ec.message());
    dir = parent / (std::string(stamp) + "-" + std::to_string(n));
  }
  return dir.string();
}

void point_latest(const std::string& dir) {
  const fs::path d(dir);
  const fs::path latest = d.parent_path() / "latest";
  std::error_code ec;
  fs::remove(latest, ec);
  fs::create_directory_symlink(d.filename(), latest, ec);  // best effort: some filesystems refuse
}

std::string create_run_dir(const std::string& output_dir, const std::string& name) {
  const std::string dir = reserve_run_dir(output_dir, name);
  point_latest(dir);
  return dir;
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

StopRequested::StopRequested(int signal)
    : std::runtime_error(signal == SIGINT    ? "stopped by SIGINT"
                         : signal == SIGTERM ? "stopped by SIGTERM"
                                             : "stopped by signal " + std::to_string(signal)),
      signal_(signal) {}

void throw_if_stopped() {
  if (const int signal = stop_signal()) throw StopRequested(signal);
}

}  // namespace qfae::engine
