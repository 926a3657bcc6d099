// The qfae command line: builds the CLI11 app with every subcommand and runs it.
#pragma once
#include <string>
#include <vector>

namespace qfae::cli {

// Parses argv, runs the chosen subcommand, turns every exception into one line and an exit code
// (util/error.h): 0 success, 1 internal error, 2 bad input, 3 infer's unreadable images, 4 a
// diverged training; 130/143 for a stop by SIGINT/SIGTERM.
int run_app(int argc, char** argv);

// The command line run_app was given (argv[0] first): what `--nproc` starts again per rank.
const std::vector<std::string>& command_line();

}  // namespace qfae::cli
