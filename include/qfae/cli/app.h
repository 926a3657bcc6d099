// The qfae command line: builds the CLI11 app with every subcommand and runs it.
#pragma once

namespace qfae::cli {

// Parses argv, runs the chosen subcommand, turns every exception into one line and an exit code:
// 0 success, 1 internal error, 2 user error (bad config, bad path, not yet implemented).
int run_app(int argc, char** argv);

}  // namespace qfae::cli
