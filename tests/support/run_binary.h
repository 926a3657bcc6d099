// Test support: runs the real qfae binary and captures its exit code and output.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qfae::test {

struct RunResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs the shell command line `cmd` (sh -c), capturing its exit code, stdout and stderr.
inline RunResult run_shell(const std::string& cmd) {
  namespace fs = std::filesystem;
  static int counter = 0;
  const fs::path dir = fs::temp_directory_path() /
                       ("qfae_run_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::create_directories(dir);
  const std::string full = "( " + cmd + " ) >'" + (dir / "out").string() + "' 2>'" +
                           (dir / "err").string() + "' </dev/null";
  const int status = std::system(full.c_str());
  RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text(dir / "out");
  r.err = read_text(dir / "err");
  fs::remove_all(dir);
  return r;
}

// Runs `QFAE_BINARY <args>` through the shell (args are shell words, quote them yourself), in
// `workdir` when given, after the shell words `prefix` (e.g. "ulimit -f 64; exec").
inline RunResult run_qfae(const std::string& args, const std::string& workdir = "",
                          const std::string& prefix = "") {
  const std::string cd = workdir.empty() ? "" : "cd '" + workdir + "' && ";
  return run_shell(cd + prefix + (prefix.empty() ? "" : " ") + "'" + std::string(QFAE_BINARY) +
                   "' " + args);
}

// A fresh empty temporary folder, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("qfae_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& name, const std::string& text) const {
    const auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace qfae::test
