// report.html of a training run folder: loss and learning rate against step, validation loss (and
// image AUROC where the validation split has anomalous images) against epoch with the best
// checkpoint marked, images/s, and the resolved config; read from metrics.jsonl, config.yaml and
// checkpoints/*/state.json. The Trainer rewrites it at each validation and at the end.
#pragma once
#include <string>

namespace qfae::report {

// Writes <run_dir>/report.html (atomically) and returns its path. `running`: the page says the run
// is in progress and reloads itself every minute. A last line of metrics.jsonl that is cut short
// (being written) is left out; UserError naming the file when metrics.jsonl is missing.
std::string write_run_page(const std::string& run_dir, bool running);

}  // namespace qfae::report
