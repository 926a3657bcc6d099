// Test support: runs the qfae binary where permission bits apply (as uid/gid 65534 through setpriv
// when the tests run as root, who ignores them) or under a shell prologue (ulimit), and takes
// permissions away from a path for the length of a test.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "run_binary.h"

namespace qfae::test {

// The qfae binary as one quoted shell word.
inline std::string qfae_word() { return "'" + std::string(QFAE_BINARY) + "'"; }

// True when a test can run qfae without the power to ignore permissions: as a normal user, or as
// root with util-linux's setpriv to become uid/gid 65534, and that user can start the binary
// (a LibTorch in root's home, as the wheel build's, is out of its reach).
inline bool can_run_unprivileged() {
  if (::geteuid() != 0) return true;
  static const bool ok =
      std::system("command -v setpriv >/dev/null 2>&1") == 0 &&
      std::system(("setpriv --reuid=65534 --regid=65534 --clear-groups " + qfae_word() +
                   " version >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

// Runs `qfae <args>` as uid/gid 65534 when we are root, else as ourselves. Its inputs must be
// readable by others and its outputs go to a folder anyone may write (make_writable_by_all).
inline RunResult run_qfae_unprivileged(const std::string& args) {
  const std::string prefix =
      ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  return run_shell(prefix + qfae_word() + " " + args);
}

// A folder (created) that the unprivileged run may write into: create result folders (which are
// staged beside themselves) inside it.
inline std::filesystem::path make_writable_by_all(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::all);
  return dir;
}

// Takes every permission from `path` until destruction, then gives back rwxr-xr-x (folders) or
// rw-r--r-- (files), so the temporary tree can be removed.
class NoAccess {
 public:
  explicit NoAccess(std::filesystem::path path) : path_(std::move(path)) {
    std::filesystem::permissions(path_, std::filesystem::perms::none);
  }
  ~NoAccess() {
    namespace fs = std::filesystem;
    std::error_code ec;
    const auto back = fs::is_directory(path_, ec) ? fs::perms(0755) : fs::perms(0644);
    fs::permissions(path_, back, ec);
  }
  NoAccess(const NoAccess&) = delete;
  NoAccess& operator=(const NoAccess&) = delete;

 private:
  std::filesystem::path path_;
};

}  // namespace qfae::test
