// The qfae command line: subcommands, and one clear line plus an exit code for every failure.
#include "qfae/cli/app.h"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <new>

#include "qfae/cli/common.h"
#include "qfae/dist/world.h"
#include "qfae/util/error.h"

namespace qfae::cli {
namespace {
std::vector<std::string> g_command_line;
}  // namespace

const std::vector<std::string>& command_line() { return g_command_line; }

int run_app(int argc, char** argv) {
  g_command_line.assign(argv, argv + argc);
  CLI::App app{"qfae: Q-Former autoencoder for unsupervised anomaly detection in medical images.\n"
               "Train on normal scans only; anomaly maps show what the model cannot reconstruct."};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", std::string("qfae ") + QFAE_VERSION);
  app.footer("Exit codes: 0 success, 1 internal error (a bug: please report it), 2 bad input\n"
             "(config, paths, data, a full disk, not enough memory), 3 qfae infer: some images\n"
             "could not be read, 4 qfae train: diverged (loss NaN or infinite; the last good\n"
             "checkpoint is kept), 5 data-parallel: another rank died or hung (the message names\n"
             "it), 130/143 stopped by SIGINT/SIGTERM (train saved, resume it).\n"
             "Run 'qfae <command> --help' for a command's options.");

  std::vector<Command> commands = {add_train_command(app), add_eval_command(app),
                                   add_infer_command(app), add_prepare_command(app),
                                   add_config_command(app), add_bench_command(app),
                                   add_report_command(app), add_version_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and usage hint
    return kExitBadInput;
  }
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return kExitBadInput;  // unreachable: require_subcommand(1)
  } catch (const UserError& e) {
    std::cerr << "qfae: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const dist::RankLost& e) {
    std::cerr << "qfae: error: " << e.what() << "\n";
    return kExitRankLost;
  } catch (const std::filesystem::filesystem_error& e) {
    // The environment, not qfae: a file in the way, a read-only folder, a full disk. The message
    // names the path(s).
    std::cerr << "qfae: error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::bad_alloc&) {
    std::cerr << "qfae: error: out of memory; lower train.batch_size / eval.batch_size or the "
                 "model's sizes\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    const std::string what = first_line(e.what());
    if (what.find("can't allocate memory") != std::string::npos ||
        what.find("out of memory") != std::string::npos) {
      std::cerr << "qfae: error: out of memory (" << what << "); lower train.batch_size / "
                   "eval.batch_size or the model's sizes\n";
      return kExitBadInput;
    }
    std::cerr << "qfae: internal error: " << what << "\n";
    return kExitInternalError;
  }
}

}  // namespace qfae::cli
