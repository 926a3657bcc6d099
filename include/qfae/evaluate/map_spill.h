// A temporary file of fixed-size records (anomaly map float32, mask and display image as bytes),
// written in the scoring pass and read back in order by the metrics-and-figures pass, so the
// evaluation keeps no full-precision maps in memory however large the test set is.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <string>

// Legend: H = W map side.
namespace qfae::evaluate {

struct SpilledImage {
  torch::Tensor map;    // (H, W) float32
  torch::Tensor mask;   // (H, W) uint8 0/1
  torch::Tensor image;  // (3, H, W) uint8, the input as a person sees it
};

class MapSpill {
 public:
  // Creates (truncates) `path`; the file is removed by the destructor.
  MapSpill(std::string path, int64_t side);
  ~MapSpill();
  MapSpill(const MapSpill&) = delete;
  MapSpill& operator=(const MapSpill&) = delete;

  // Appends one record; shapes must be as in SpilledImage (any dtype; converted).
  void write(const torch::Tensor& map, const torch::Tensor& mask, const torch::Tensor& image);
  // Switches from writing to reading from the first record.
  void rewind();
  // Reads record `i` in order (0, 1, ...); false past the end.
  bool read(SpilledImage& out);
  int64_t size() const { return count_; }

 private:
  [[noreturn]] void write_failed() const;  // UserError naming the file and errno's reason

  std::string path_;
  int64_t side_;
  int64_t count_ = 0;
  std::fstream file_;
};

}  // namespace qfae::evaluate
