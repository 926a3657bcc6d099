// Communicator's collectives with two ranks in this process (two threads, c10d's TCPStore and
// Gloo on 127.0.0.1, as Debian's LibTorch 1.13 has them): each against the values worked out by
// hand from what each rank put in, and a rank that never joins named by the other.
#include "qfae/dist/communicator.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "../support/loopback_port.h"
#include "qfae/dist/world.h"

using qfae::dist::Communicator;

namespace {

qfae::dist::World two_rank_world(int rank, int port) {
  qfae::dist::World world;
  world.rank = rank;
  world.size = 2;
  world.master_addr = "127.0.0.1";
  world.master_port = port;
  return world;
}

// Runs `body(comm)` on ranks 0 and 1, one thread each; "" or the error of each rank.
std::vector<std::string> on_two_ranks(const std::function<void(Communicator&)>& body) {
  const int port = qfae::test::free_loopback_port();
  std::vector<std::string> errors(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      try {
        Communicator comm(two_rank_world(r, port), torch::kCPU, std::chrono::seconds(30));
        body(comm);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  return errors;
}

}  // namespace

TEST(Communicator, AllGatherRowsStacksEveryRanksRowsInRankOrderOnEveryRank) {
  std::vector<torch::Tensor> got(2), got_empty(2);
  const auto errors = on_two_ranks([&](Communicator& comm) {
    const int r = comm.rank();
    // Rank 0 has two rows, rank 1 three: the gather pads and cuts them back.
    const auto mine = r == 0 ? torch::tensor({{1.0, 2.0}, {3.0, 4.0}}, torch::kDouble)
                             : torch::tensor({{5.0, 6.0}, {7.0, 8.0}, {9.0, 10.0}}, torch::kDouble);
    got[r] = comm.all_gather_rows(mine);
    // A rank left with no rows (every image of its part skipped).
    got_empty[r] = comm.all_gather_rows(r == 0 ? torch::zeros({0, 2}, torch::kDouble)
                                               : torch::tensor({{-1.0, -2.0}}, torch::kDouble));
  });
  ASSERT_EQ(errors, std::vector<std::string>(2));
  const auto expected =
      torch::tensor({{1.0, 2.0}, {3.0, 4.0}, {5.0, 6.0}, {7.0, 8.0}, {9.0, 10.0}}, torch::kDouble);
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::equal(got[r], expected)) << "rank " << r << "\n" << got[r];
    EXPECT_TRUE(torch::equal(got_empty[r], torch::tensor({{-1.0, -2.0}}, torch::kDouble)))
        << "rank " << r << "\n"
        << got_empty[r];
  }
}

TEST(Communicator, GatherRowsStacksOnTheRootOnlyWhateverTheDtype) {
  std::vector<torch::Tensor> to_zero(2), to_one(2);
  const auto errors = on_two_ranks([&](Communicator& comm) {
    const int r = comm.rank();
    // int64 rows of shape (n, 2, 2): rank 0 one of them, rank 1 two.
    const auto mine = r == 0 ? torch::arange(4, torch::kLong).reshape({1, 2, 2})
                             : torch::arange(10, 18, torch::kLong).reshape({2, 2, 2});
    to_zero[r] = comm.gather_rows(mine);
    to_one[r] = comm.gather_rows(mine, /*root=*/1);
  });
  ASSERT_EQ(errors, std::vector<std::string>(2));
  const auto expected =
      torch::tensor({0, 1, 2, 3, 10, 11, 12, 13, 14, 15, 16, 17}, torch::kLong).reshape({3, 2, 2});
  EXPECT_TRUE(torch::equal(to_zero[0], expected)) << to_zero[0];
  EXPECT_FALSE(to_zero[1].defined());
  EXPECT_TRUE(torch::equal(to_one[1], expected)) << to_one[1];
  EXPECT_FALSE(to_one[0].defined());
}

TEST(Communicator, SumAndAllReduceSumAddTheRanksValues) {
  std::vector<std::vector<double>> sums(2);
  std::vector<torch::Tensor> reduced(2);
  const auto errors = on_two_ranks([&](Communicator& comm) {
    const int r = comm.rank();
    sums[r] = comm.sum(r == 0 ? std::vector<double>{1.5, 2.0, 0.0}
                              : std::vector<double>{2.5, -4.0, 1e-3});
    auto flat = r == 0 ? torch::tensor({1.0f, 2.0f}) : torch::tensor({10.0f, 20.0f});
    auto pending = comm.all_reduce_sum(flat);
    pending.wait();
    reduced[r] = flat;
  });
  ASSERT_EQ(errors, std::vector<std::string>(2));
  for (int r = 0; r < 2; ++r) {
    // 1.5 + 2.5, 2 - 4, 0 + 0.001: exact in float64.
    EXPECT_EQ(sums[r], (std::vector<double>{4.0, -2.0, 1e-3})) << "rank " << r;
    EXPECT_TRUE(torch::equal(reduced[r], torch::tensor({11.0f, 22.0f}))) << reduced[r];
  }
}

TEST(Communicator, AgreeStopGivesEveryRankTheHighestSignal) {
  std::vector<std::vector<int>> agreed(2);
  const auto errors = on_two_ranks([&](Communicator& comm) {
    const int r = comm.rank();
    agreed[r].push_back(comm.agree_stop(0));                // no signal anywhere
    agreed[r].push_back(comm.agree_stop(r == 1 ? 15 : 0));  // SIGTERM on rank 1 only
    agreed[r].push_back(comm.agree_stop(r == 0 ? 2 : 15));  // SIGINT and SIGTERM: the higher
  });
  ASSERT_EQ(errors, std::vector<std::string>(2));
  EXPECT_EQ(agreed[0], (std::vector<int>{0, 15, 15}));
  EXPECT_EQ(agreed[1], (std::vector<int>{0, 15, 15}));
}

TEST(Communicator, BroadcastGivesEveryRankTheRootsTensorsInPlace) {
  std::vector<std::vector<torch::Tensor>> got(2);
  const auto errors = on_two_ranks([&](Communicator& comm) {
    const int r = comm.rank();
    auto weights = torch::full({2, 3}, static_cast<float>(r + 1));
    auto counts = torch::tensor({r * 100 + 1, r * 100 + 2}, torch::kLong);
    comm.broadcast({weights, counts});  // root 0
    auto marker = torch::full({1}, static_cast<double>(r + 7), torch::kDouble);
    comm.broadcast({marker}, /*root=*/1);
    comm.barrier();
    got[r] = {weights, counts, marker};
  });
  ASSERT_EQ(errors, std::vector<std::string>(2));
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(torch::equal(got[r][0], torch::ones({2, 3}))) << "rank " << r;
    EXPECT_TRUE(torch::equal(got[r][1], torch::tensor({1, 2}, torch::kLong))) << "rank " << r;
    EXPECT_TRUE(torch::equal(got[r][2], torch::full({1}, 8.0, torch::kDouble))) << "rank " << r;
  }
}

TEST(Communicator, ARankThatNeverJoinsIsNamed) {
  // Rank 1 never starts: rank 0 hosts the store, waits its timeout and names rank 1.
  const auto world = two_rank_world(0, qfae::test::free_loopback_port());
  std::string error;
  try {
    Communicator comm(world, torch::kCPU, std::chrono::seconds(1));
  } catch (const qfae::dist::RankLost& e) {
    error = e.what();
  }
  EXPECT_NE(error.find("rank 1 of 2 never joined the job at 127.0.0.1:" +
                       std::to_string(world.master_port)),
            std::string::npos)
      << error;
  EXPECT_NE(error.find("(joined: rank 0;"), std::string::npos) << error;
}
