// The qfae command line: subcommands, and one clear line plus an exit code for every failure.
#include "qfae/cli/app.h"

#include <CLI/CLI.hpp>

#include <iostream>

#include "qfae/cli/common.h"
#include "qfae/util/error.h"

namespace qfae::cli {

int run_app(int argc, char** argv) {
  CLI::App app{"qfae: Q-Former autoencoder for unsupervised anomaly detection in medical images.\n"
               "Train on normal scans only; anomaly maps show what the model cannot reconstruct."};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", std::string("qfae ") + QFAE_VERSION);
  app.footer("Exit codes: 0 success, 1 internal error, 2 bad input or not yet implemented.\n"
             "Run 'qfae <command> --help' for a command's options.");

  std::vector<Command> commands = {add_train_command(app), add_eval_command(app),
                                   add_infer_command(app), add_prepare_command(app),
                                   add_config_command(app), add_bench_command(app),
                                   add_version_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help, --version
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the message and usage hint
    return 2;
  }
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return 2;  // unreachable: require_subcommand(1)
  } catch (const UserError& e) {
    std::cerr << "qfae: error: " << e.what() << "\n";
    return 2;
  } catch (const NotImplementedError& e) {
    std::cerr << "qfae: not yet implemented: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    // LibTorch errors carry a multi-line backtrace; the first line says what went wrong.
    std::string what = e.what();
    const auto nl = what.find('\n');
    std::cerr << "qfae: internal error: " << what.substr(0, nl) << "\n";
    return 1;
  }
}

}  // namespace qfae::cli
