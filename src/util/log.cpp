// Area loggers sharing one stderr sink and one level.
#include "qfae/util/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace qfae {
namespace {

std::mutex g_mutex;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr shared_sink() {
  static auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  return sink;
}

}  // namespace

std::shared_ptr<spdlog::logger> log(const std::string& area) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (auto existing = spdlog::get(area)) return existing;
  auto logger = std::make_shared<spdlog::logger>(area, shared_sink());
  logger->set_pattern("%^[%n]%$ %v");
  logger->set_level(g_level);
  spdlog::register_logger(logger);
  return logger;
}

void set_log_verbosity(int verbosity) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_level = verbosity < 0    ? spdlog::level::warn
            : verbosity == 0 ? spdlog::level::info
            : verbosity == 1 ? spdlog::level::debug
                             : spdlog::level::trace;
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->set_level(g_level); });
}

}  // namespace qfae
