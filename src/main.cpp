// qfae entry point: dispatches to the subcommands in src/cli/.
#include "qfae/cli/app.h"

int main(int argc, char** argv) { return qfae::cli::run_app(argc, argv); }
