// Logging: one spdlog logger per area, printed as "[area] message" on stderr.
#pragma once
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace qfae {

// The logger for an area ("config", "backbone", "train", ...), created on first use.
std::shared_ptr<spdlog::logger> log(const std::string& area);

// -1 quiet (warnings and errors only), 0 normal, 1 verbose (debug), 2 trace.
void set_log_verbosity(int verbosity);

}  // namespace qfae
