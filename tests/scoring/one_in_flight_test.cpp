// OneInFlight, the ordering of every scoring pass: batch k is filed when batch k+1 is pushed (or
// at flush), in the order pushed, each exactly once; items are moved, never copied.
#include "qfae/scoring/one_in_flight.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

using qfae::scoring::OneInFlight;

namespace {

// Move-only, like a batch holding its pending device output: a copy would not compile.
struct QueuedBatch {
  std::unique_ptr<int> id;
};

QueuedBatch queued(int id) { return {std::make_unique<int>(id)}; }

}  // namespace

TEST(OneInFlight, FilesEachBatchWhenTheNextIsPushedAndTheLastAtFlush) {
  std::vector<int> filed;
  OneInFlight<QueuedBatch> flight([&](QueuedBatch& b) { filed.push_back(*b.id); });
  flight.push(queued(1));
  EXPECT_EQ(filed, std::vector<int>{});  // batch 1 is still on the device
  flight.push(queued(2));
  EXPECT_EQ(filed, std::vector<int>({1}));
  flight.push(queued(3));
  EXPECT_EQ(filed, std::vector<int>({1, 2}));
  flight.flush();
  EXPECT_EQ(filed, std::vector<int>({1, 2, 3}));
  flight.flush();  // nothing pending: nothing filed twice
  EXPECT_EQ(filed, std::vector<int>({1, 2, 3}));
}

TEST(OneInFlight, FlushWithNothingPushedFilesNothingAndTheQueueCanBeUsedAgain) {
  std::vector<int> filed;
  OneInFlight<QueuedBatch> flight([&](QueuedBatch& b) { filed.push_back(*b.id); });
  flight.flush();
  EXPECT_TRUE(filed.empty());
  flight.push(queued(7));
  flight.flush();
  flight.push(queued(8));  // a second pass after a flush starts afresh
  EXPECT_EQ(filed, std::vector<int>({7}));
  flight.flush();
  EXPECT_EQ(filed, std::vector<int>({7, 8}));
}

TEST(OneInFlight, TheFilerSeesTheItemPushedNotACopy) {
  // The filer may take the batch's contents (move them out): it gets the object pushed.
  std::vector<std::unique_ptr<int>> taken;
  OneInFlight<QueuedBatch> flight([&](QueuedBatch& b) { taken.push_back(std::move(b.id)); });
  auto first = queued(1);
  const int* address = first.id.get();
  flight.push(std::move(first));
  flight.push(queued(2));
  flight.flush();
  ASSERT_EQ(taken.size(), 2u);
  EXPECT_EQ(taken[0].get(), address);
  EXPECT_EQ(*taken[1], 2);
}
