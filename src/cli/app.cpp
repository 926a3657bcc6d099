// Placeholder app until the subcommands land.
#include "qfae/cli/app.h"

#include <iostream>

namespace qfae::cli {
int run_app(int argc, char** argv) {
  std::cout << "qfae\n";
  return 0;
}
}  // namespace qfae::cli
