// The scoring pass: rounds of batches through the scorer, rows checked, gathered and filed in
// position order.
#include "qfae/scoring/scoring_pass.h"

#include <unistd.h>

#include <cstdio>
#include <map>
#include <utility>

#include "qfae/run/stop_signal.h"
#include "qfae/scoring/one_in_flight.h"

namespace qfae::scoring {
namespace {

// Normalised images (B, 3, S, S) -> the 8-bit images a person sees, on the CPU.
torch::Tensor display_bytes(const torch::Tensor& images, const config::DataConfig& data) {
  return (images * data.std + data.mean).clamp(0, 1).mul(255).round().to(torch::kUInt8).cpu();
}

// The columns of a round's rows as one float64 table (so that ranks can gather them):
// position, score, finite (0/1), map maximum.
enum Column : int64_t { kPosition, kScore, kFinite, kMapMax, kColumns };

// One round on its way: the rank's batch and its output still on the device.
struct InFlight {
  RoundBatch batch;
  anomaly::PendingOutput out;
};

// This rank's rows of a round (and the image tensors when asked), before any gathering.
struct RoundRows {
  torch::Tensor table = torch::empty({0, kColumns}, torch::kDouble);
  torch::Tensor maps, masks, display;
};

RoundRows local_rows(InFlight& item, const config::DataConfig& data, bool images) {
  RoundRows r;
  const int64_t s = data.image_size;
  if (images) {
    r.maps = torch::empty({0, s, s}, torch::kFloat);
    r.masks = torch::empty({0, s, s}, torch::kUInt8);
    r.display = torch::empty({0, 3, s, s}, torch::kUInt8);
  }
  const auto& batch = item.batch;
  if (!batch.images.defined()) return r;
  const auto out = item.out.get();
  const int64_t n = out.scores.size(0);
  TORCH_CHECK(static_cast<int64_t>(batch.positions.size()) == n,
              "score_rounds: a batch of ", n, " images came with ", batch.positions.size(),
              " positions");
  const auto flat = out.maps.reshape({n, -1});
  const auto finite = torch::isfinite(out.scores).logical_and(torch::isfinite(flat).all(1));
  r.table = torch::stack({torch::tensor(batch.positions, torch::kInt64).to(torch::kDouble),
                          out.scores.to(torch::kDouble), finite.to(torch::kDouble),
                          std::get<0>(flat.max(1)).to(torch::kDouble)},
                         1);
  if (images) {
    r.maps = out.maps.to(torch::kFloat).contiguous();
    r.masks = batch.masks.defined()
                  ? (batch.masks.select(1, 0) > 0.5).to(torch::kUInt8).cpu()
                  : torch::zeros({n, s, s}, torch::kUInt8);
    r.display = display_bytes(batch.images, data);
  }
  return r;
}

// Whether this rank receives the rows: rank 0, or every rank with options.everyone (comm null:
// one process, which does).
bool files_rows(const dist::Communicator* comm, const PassOptions& options) {
  return !comm || options.everyone || comm->leader();
}

ScoredRows to_scored(RoundRows&& r) {
  ScoredRows scored;
  const auto t = r.table.accessor<double, 2>();
  for (int64_t i = 0; i < r.table.size(0); ++i) {
    scored.rows.push_back(
        {static_cast<int64_t>(t[i][kPosition]), t[i][kScore], t[i][kFinite] != 0, t[i][kMapMax]});
  }
  scored.maps = std::move(r.maps);
  scored.masks = std::move(r.masks);
  scored.display = std::move(r.display);
  return scored;
}

}  // namespace

void score_rounds(const std::function<bool(RoundBatch&)>& next, const Submit& submit,
                  const config::DataConfig& data, dist::Communicator* comm,
                  const PassOptions& options, int64_t total, const File& file) {
  TORCH_CHECK(!(options.everyone && options.images),
              "score_rounds: image tensors are gathered to rank 0 only");
  if (comm && comm->size() <= 1) comm = nullptr;
  const bool filing = files_rows(comm, options);
  const bool tty = filing && !options.progress.empty() && isatty(STDERR_FILENO);
  int64_t filed = 0;
  OneInFlight<InFlight> in_flight([&](InFlight& item) {
    auto r = local_rows(item, data, options.images);
    if (comm) {  // every rank takes part, in the same order, whether it scored or not
      if (options.everyone) {
        r.table = comm->all_gather_rows(r.table);
      } else {
        r.table = comm->gather_rows(r.table);
        if (options.images) {
          r.maps = comm->gather_rows(r.maps);
          r.masks = comm->gather_rows(r.masks);
          r.display = comm->gather_rows(r.display);
        }
      }
    }
    if (!filing) return;
    auto scored = to_scored(std::move(r));
    filed += static_cast<int64_t>(scored.rows.size());
    file(scored);
    if (tty) {
      std::fprintf(stderr, "\r[%s] scoring %lld/%lld images", options.progress.c_str(),
                   static_cast<long long>(filed), static_cast<long long>(total));
    }
  });
  for (;;) {
    if (options.stoppable) {  // the rounds before this one are filed; the rest is dropped
      if (comm) {
        if (const int signal = comm->agree_stop(run::stop_signal())) {
          throw run::StopRequested(signal);
        }
      } else {
        run::throw_if_stopped();
      }
    }
    InFlight item;
    if (!next(item.batch)) break;
    if (item.batch.images.defined() && item.batch.images.size(0) == 0) {
      item.batch.images = torch::Tensor();
    }
    if (item.batch.images.defined()) item.out = submit(item.batch.images);
    in_flight.push(std::move(item));
  }
  in_flight.flush();
  if (tty) std::fprintf(stderr, "\n");
}

ScoringPass::ScoringPass(std::vector<data::Sample> samples, const config::DataConfig& data,
                         data::LoaderOptions loader, dist::Communicator* comm)
    : samples_(std::move(samples)),
      data_(data),
      comm_(comm && comm->size() > 1 ? comm : nullptr),
      batch_(std::max<int64_t>(1, loader.batch_size)) {
  const int64_t n = static_cast<int64_t>(samples_.size());
  const int64_t w = comm_ ? comm_->size() : 1, rank = comm_ ? comm_->rank() : 0;
  std::vector<data::Sample> mine;
  for (int64_t first = rank * batch_; first < n; first += batch_ * w) {
    for (int64_t i = first; i < std::min(n, first + batch_); ++i) {
      mine_.push_back(i);
      mine.push_back(samples_[i]);
    }
  }
  loader.batch_size = batch_;
  loader.shuffle = false;
  loader.augment = false;
  loader.drop_last = false;
  loader.shard = 0;
  loader.shards = 1;
  loader.keep_empty = true;  // one batch per block, so the ranks stay in step
  loader_ = std::make_unique<data::Loader>(std::move(mine), data_, loader);
}

ScoringPass::~ScoringPass() = default;

std::vector<data::SkippedImage> ScoringPass::skipped() const { return loader_->skipped(); }

std::vector<Unread> ScoringPass::run(const Submit& submit, const PassOptions& options,
                                     const File& file) {
  const int64_t n = static_cast<int64_t>(samples_.size());
  const int64_t w = comm_ ? comm_->size() : 1, rank = comm_ ? comm_->rank() : 0;
  const int64_t rounds = (n + batch_ * w - 1) / (batch_ * w);
  loader_->start_epoch(0);
  int64_t round = 0;
  const auto next = [&](RoundBatch& out) {
    if (round >= rounds) return false;
    const int64_t first = round * batch_ * w + rank * batch_;
    ++round;
    data::Batch batch;
    if (first < n && loader_->next(batch) && batch.images.defined()) {
      out.images = std::move(batch.images);
      out.masks = std::move(batch.masks);
      for (const auto index : batch.indices) out.positions.push_back(mine_[index]);
    }
    return true;
  };
  const bool filing = files_rows(comm_, options);
  std::vector<char> seen(filing ? n : 0, 0);
  score_rounds(next, submit, data_, comm_, options, n, [&](const ScoredRows& scored) {
    for (const auto& row : scored.rows) seen[row.position] = 1;
    file(scored);
  });
  std::vector<Unread> unread;
  if (!filing) return unread;
  std::map<std::string, std::string> reasons;
  for (const auto& s : loader_->skipped()) reasons.emplace(s.path, s.reason);
  for (int64_t i = 0; i < n; ++i) {
    if (seen[i]) continue;
    const auto it = reasons.find(samples_[i].image);
    unread.push_back({i, it != reasons.end() ? it->second
                                              : std::string("see the log of the rank that read it")});
  }
  return unread;
}

}  // namespace qfae::scoring
