// The one scoring pass: batches through the AnomalyScorer, one row per image out, in the order of
// the images, the same for one process as for N ranks. `qfae eval`, `qfae infer`, validation
// during training and `qfae bench`'s eval phase all run it, so they score, check and order images
// by one set of rules:
//  - an image's row is finite when its score and every value of its map are (NaN or infinity
//    anywhere make it not finite; what that means is the caller's to say: eval refuses the
//    split, infer writes an error row, validation counts the run as diverged);
//  - rows reach the caller in position order, whatever rank scored them;
//  - one batch is queued on the device while the host files the one before (OneInFlight).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "qfae/anomaly/anomaly_scorer.h"
#include "qfae/config/config.h"
#include "qfae/data/dataset.h"
#include "qfae/data/loader.h"
#include "qfae/dist/communicator.h"

// Legend: n images of a round, S image side.
namespace qfae::scoring {

// One scored image.
struct Row {
  int64_t position = 0;  // in the images of the pass
  double score = 0;
  bool finite = true;  // the score and every map value are finite
  double map_max = 0;  // the largest value of its map
};

// One round's rows as the filing rank receives them, in position order. The tensors are defined
// when PassOptions::images asks for them, one entry per row, on the CPU.
struct ScoredRows {
  std::vector<Row> rows;
  torch::Tensor maps;     // (n, S, S) float32
  torch::Tensor masks;    // (n, S, S) uint8 0/1
  torch::Tensor display;  // (n, 3, S, S) uint8: the input as a person sees it
};

// How one batch is scored: by default the scorer's submit(); validation also sums its loss.
using Submit = std::function<anomaly::PendingOutput(const torch::Tensor& images)>;
// What the caller does with a round's rows (writes files, keeps scores). Called on the filing
// ranks only: rank 0, or every rank with PassOptions::everyone.
using File = std::function<void(const ScoredRows&)>;

struct PassOptions {
  bool everyone = false;  // every rank receives every row (validation); else rank 0 alone
  bool images = false;    // gather maps, masks and display images too (not with everyone)
  bool stoppable = true;  // a stop signal (run/stop_signal.h) ends the pass with StopRequested
                          // after the current round; validation leaves that to the Trainer
  std::string progress;   // a progress line "[<progress>] scoring i/n images" on a terminal
};

// A rank's batch of one round. Every rank goes through the same number of rounds; a rank with
// nothing to score in one leaves `images` undefined.
struct RoundBatch {
  torch::Tensor images;            // (B, 3, S, S) normalised, any device
  torch::Tensor masks;             // (B, 1, S, S) 0/1; undefined: no masks
  std::vector<int64_t> positions;  // the images' positions, ascending
};

// The core of the pass: rounds from `next` until it returns false, each submitted, its rows
// checked, gathered to the filing ranks (comm null or of one rank: as they are), and filed.
// `data` gives the normalisation the display images undo; `total` is the progress line's count.
void score_rounds(const std::function<bool(RoundBatch&)>& next, const Submit& submit,
                  const config::DataConfig& data, dist::Communicator* comm,
                  const PassOptions& options, int64_t total, const File& file);

// An image the pass could not read (data.on_bad_image: skip, or LoaderOptions::skip_bad_images).
struct Unread {
  int64_t position = 0;
  std::string reason;
};

// A fixed list of images dealt out to the ranks for scoring, ready to be scored any number of
// times (validation runs it after every few epochs). Round k covers the images k*B*W ..
// (k+1)*B*W - 1 (B the batch size, W the ranks); rank r scores its block of B of them, which is
// the batch one process would score there, so N ranks compute what one process computes.
class ScoringPass {
 public:
  // `loader` gives the batch size, pinning and skipping; shard, shards, shuffle, augment and
  // drop_last are the pass's to set. comm null or of one rank: one process.
  ScoringPass(std::vector<data::Sample> samples, const config::DataConfig& data,
              data::LoaderOptions loader, dist::Communicator* comm);
  ~ScoringPass();

  // Scores every image once. Returns, on the filing ranks, the images that could not be read, in
  // position order; the reason is the loader's where this rank read the image.
  std::vector<Unread> run(const Submit& submit, const PassOptions& options, const File& file);

  const std::vector<data::Sample>& samples() const { return samples_; }
  // The images this rank skipped so far (for skipped_images.tsv).
  std::vector<data::SkippedImage> skipped() const;

 private:
  std::vector<data::Sample> samples_;
  config::DataConfig data_;
  dist::Communicator* comm_;
  int64_t batch_;
  std::vector<int64_t> mine_;  // this rank's images' positions, block after block
  std::unique_ptr<data::Loader> loader_;
};

}  // namespace qfae::scoring
