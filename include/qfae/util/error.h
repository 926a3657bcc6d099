// Error types: a UserError is a problem with what the user gave us (config, paths, data), reported
// as one clear line with exit code 2, never as a crash.
#pragma once
#include <stdexcept>
#include <string>

namespace qfae {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Exit codes of the qfae binary (the README's "Exit codes" lists them for users).
inline constexpr int kExitInternalError = 1;  // a bug in qfae
inline constexpr int kExitBadInput = 2;       // config, paths, data, disk: what the user can fix
inline constexpr int kExitUnreadable = 3;     // qfae infer: some images could not be read
inline constexpr int kExitDiverged = 4;       // qfae train: the loss became NaN or infinite
inline constexpr int kExitRankLost = 5;       // data-parallel: another rank died or hung

// Runs `f` and returns what it returns; a UserError from it comes back with "key: " in front.
// Lower layers state the fact ("<file> offers patch sizes [8, 16], not 32"); the caller that knows
// which config key gave the value names it with this.
template <class F>
auto with_key(const std::string& key, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const UserError& e) {
    throw UserError(key + ": " + e.what());
  }
}

// The first line of an exception message: LibTorch's carry a multi-line backtrace after it.
inline std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace qfae
