// Fixed-size binary records in a temporary file.
#include "qfae/evaluate/map_spill.h"

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "qfae/util/error.h"

namespace qfae::evaluate {

MapSpill::MapSpill(std::string path, int64_t side) : path_(std::move(path)), side_(side) {
  file_.open(path_, std::ios::binary | std::ios::in | std::ios::out | std::ios::trunc);
  if (!file_) throw UserError("cannot create the temporary map file '" + path_ + "'");
}

MapSpill::~MapSpill() {
  file_.close();
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void MapSpill::write(const torch::Tensor& map, const torch::Tensor& mask,
                     const torch::Tensor& image) {
  TORCH_CHECK(map.dim() == 2 && map.size(0) == side_ && map.size(1) == side_,
              "MapSpill: map must be (", side_, ", ", side_, "), got ", map.sizes());
  TORCH_CHECK(mask.sizes() == map.sizes(), "MapSpill: mask ", mask.sizes(), " vs map ",
              map.sizes());
  TORCH_CHECK(image.dim() == 3 && image.size(0) == 3 && image.size(1) == side_ &&
                  image.size(2) == side_,
              "MapSpill: image must be (3, ", side_, ", ", side_, "), got ", image.sizes());
  const auto m = map.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto k = mask.to(torch::kCPU, torch::kUInt8).contiguous();
  const auto x = image.to(torch::kCPU, torch::kUInt8).contiguous();
  errno = 0;
  file_.write(reinterpret_cast<const char*>(m.data_ptr<float>()), m.numel() * sizeof(float));
  file_.write(reinterpret_cast<const char*>(k.data_ptr<uint8_t>()), k.numel());
  file_.write(reinterpret_cast<const char*>(x.data_ptr<uint8_t>()), x.numel());
  if (!file_) write_failed();
  ++count_;
}

void MapSpill::write_failed() const {
  throw UserError("cannot write the temporary map file '" + path_ + "': " +
                  (errno ? std::strerror(errno) : "write failed (disk full?)"));
}

void MapSpill::rewind() {
  errno = 0;
  file_.flush();  // a write the buffer held back can fail only here
  if (!file_) write_failed();
  file_.clear();
  file_.seekg(0);
}

bool MapSpill::read(SpilledImage& out) {
  if (file_.peek() == std::char_traits<char>::eof()) return false;
  out.map = torch::empty({side_, side_}, torch::kFloat32);
  out.mask = torch::empty({side_, side_}, torch::kUInt8);
  out.image = torch::empty({3, side_, side_}, torch::kUInt8);
  file_.read(reinterpret_cast<char*>(out.map.data_ptr<float>()), out.map.numel() * sizeof(float));
  file_.read(reinterpret_cast<char*>(out.mask.data_ptr<uint8_t>()), out.mask.numel());
  file_.read(reinterpret_cast<char*>(out.image.data_ptr<uint8_t>()), out.image.numel());
  if (!file_) throw UserError("the temporary map file '" + path_ + "' is truncated");
  return true;
}

}  // namespace qfae::evaluate
