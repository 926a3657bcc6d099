// safetensors reader/writer: validates every header entry before touching the data, reads each
// tensor straight into its own memory, and writes through "<path>.tmp" + rename.
#include "qfae/io/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "qfae/util/error.h"
#include "shape_text.h"

namespace qfae::io {
namespace {

using nlohmann::json;
constexpr char kMetadataKey[] = "__metadata__";

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
constexpr DtypeName kDtypes[] = {{"F64", torch::kFloat64}, {"F32", torch::kFloat32},
                                 {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
                                 {"I64", torch::kInt64},   {"I32", torch::kInt32},
                                 {"I16", torch::kInt16},   {"I8", torch::kInt8},
                                 {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};

// One tensor entry of the header, already checked against the data buffer.
struct Entry {
  std::string name;
  torch::ScalarType type;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

bool host_is_little_endian() {
  const uint16_t probe = 1;
  return *reinterpret_cast<const unsigned char*>(&probe) == 1;
}

void require_little_endian(const std::string& path) {
  if (!host_is_little_endian()) {
    throw std::runtime_error(path + ": safetensors I/O needs a little-endian host");
  }
}

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw UserError(path + ": " + problem);
}

// Parses and checks one header entry; `buffer_size` is the length of the data after the header.
Entry parse_entry(const std::string& path, const std::string& name, const json& value,
                  uint64_t buffer_size) {
  const std::string where = "tensor '" + name + "'";
  if (!value.is_object()) fail(path, where + ": header entry is not an object");
  const auto dtype_it = value.find("dtype");
  const auto shape_it = value.find("shape");
  const auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    fail(path, where + ": missing string field 'dtype'");
  }
  if (shape_it == value.end() || !shape_it->is_array()) {
    fail(path, where + ": missing array field 'shape'");
  }
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    fail(path, where + ": 'data_offsets' must be an array [begin, end]");
  }

  Entry entry;
  entry.name = name;
  const std::string dtype = dtype_it->get<std::string>();
  const auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                  [&](const DtypeName& d) { return dtype == d.name; });
  if (known == std::end(kDtypes)) {
    fail(path, where + ": unknown or unsupported dtype '" + dtype +
                   "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
  }
  entry.type = known->type;

  const uint64_t element_size = c10::elementSize(entry.type);
  uint64_t numel = 1;
  bool has_zero_dim = false;
  for (const auto& dim : *shape_it) {
    if (!dim.is_number_unsigned() ||
        dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(path, where + ": shape " + shape_it->dump() + " must hold non-negative integers");
    }
    const uint64_t d = dim.get<uint64_t>();
    entry.shape.push_back(static_cast<int64_t>(d));
    // Anything larger than the buffer cannot match; cap there so the product cannot overflow.
    if (d == 0) {
      has_zero_dim = true;
    } else if (numel <= buffer_size) {
      numel = numel > buffer_size / d ? buffer_size + 1 : numel * d;
    }
  }
  if (has_zero_dim) numel = 0;

  const json& begin = (*offsets_it)[0];
  const json& end = (*offsets_it)[1];
  if (!begin.is_number_unsigned() || !end.is_number_unsigned()) {
    fail(path, where + ": data_offsets " + offsets_it->dump() + " must be non-negative integers");
  }
  entry.begin = begin.get<uint64_t>();
  entry.end = end.get<uint64_t>();
  if (entry.begin > entry.end || entry.end > buffer_size) {
    fail(path, where + ": data_offsets " + offsets_it->dump() + " lie outside the data buffer of " +
                   std::to_string(buffer_size) + " bytes");
  }
  if (numel > buffer_size || numel * element_size != entry.end - entry.begin) {
    fail(path, where + ": data_offsets " + offsets_it->dump() + " span " +
                   std::to_string(entry.end - entry.begin) + " bytes, but shape " +
                   shape_text(entry.shape) + " of " + dtype + " needs " +
                   (numel > buffer_size ? std::string("more than the whole buffer")
                                        : std::to_string(numel * element_size)));
  }
  return entry;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& value) {
  std::map<std::string, std::string> metadata;
  if (!value.is_object()) fail(path, "'__metadata__' is not an object of strings");
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) fail(path, "'__metadata__." + key + "' is not a string");
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

// Overlapping byte ranges would alias two tensors; empty tensors occupy no bytes.
void check_no_overlap(const std::string& path, std::vector<Entry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  const Entry* previous = nullptr;
  for (const auto& entry : entries) {
    if (entry.begin == entry.end) continue;
    if (previous && entry.begin < previous->end) {
      fail(path,
           "tensors '" + previous->name + "' and '" + entry.name + "' overlap in the data buffer");
    }
    previous = &entry;
  }
}

const char* dtype_name(torch::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d.name;
  }
  return nullptr;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  require_little_endian(path);
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read safetensors file (" + ec.message() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open safetensors file");
  if (file_size < 8) {
    fail(path, "file is " + std::to_string(file_size) +
                   " bytes, shorter than the 8-byte header "
                   "length of a safetensors file");
  }

  unsigned char length_bytes[8];
  in.read(reinterpret_cast<char*>(length_bytes), 8);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | length_bytes[i];
  if (header_size > file_size - 8) {
    fail(path, "header length " + std::to_string(header_size) + " is larger than the file (" +
                   std::to_string(file_size) + " bytes); not a safetensors file or truncated");
  }
  std::string header_text(header_size, '\0');
  in.read(header_text.data(), static_cast<std::streamsize>(header_size));
  if (!in) fail(path, "cannot read the " + std::to_string(header_size) + "-byte header");

  json header;
  try {
    header = json::parse(header_text);
  } catch (const json::exception& e) {
    fail(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  SafetensorsFile file;
  const uint64_t buffer_size = file_size - 8 - header_size;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      file.metadata = parse_metadata(path, value);
    } else {
      entries.push_back(parse_entry(path, name, value, buffer_size));
    }
  }
  check_no_overlap(path, entries);

  const uint64_t data_start = 8 + header_size;
  for (const auto& entry : entries) {
    // BOOL is read as bytes first so that values other than 0/1 are caught, not undefined.
    const auto read_type = entry.type == torch::kBool ? torch::kUInt8 : entry.type;
    torch::Tensor tensor = torch::empty(entry.shape, torch::TensorOptions().dtype(read_type));
    const uint64_t nbytes = entry.end - entry.begin;
    if (nbytes > 0) {
      in.seekg(static_cast<std::streamoff>(data_start + entry.begin));
      in.read(static_cast<char*>(tensor.data_ptr()), static_cast<std::streamsize>(nbytes));
      if (!in) fail(path, "cannot read the data of tensor '" + entry.name + "'");
    }
    if (entry.type == torch::kBool) {
      if (tensor.numel() > 0 && tensor.max().item<int64_t>() > 1) {
        fail(path, "tensor '" + entry.name + "': BOOL data holds bytes other than 0 and 1");
      }
      tensor = tensor.to(torch::kBool);
    }
    file.tensors.emplace(entry.name, std::move(tensor));
  }
  return file;
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  require_little_endian(path);
  json header = json::object();
  if (!metadata.empty()) header[kMetadataKey] = metadata;

  std::vector<torch::Tensor> ordered;  // std::map order: sorted by name, as the offsets are
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == kMetadataKey) {
      throw std::invalid_argument(path + ": a tensor cannot be named '__metadata__'");
    }
    if (!tensor.defined())
      throw std::invalid_argument(path + ": tensor '" + name + "' is undefined");
    const char* dtype = dtype_name(tensor.scalar_type());
    if (!dtype) {
      throw std::invalid_argument(path + ": tensor '" + name + "' has dtype " +
                                  std::string(c10::toString(tensor.scalar_type())) +
                                  ", which safetensors I/O does not support");
    }
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(cpu.numel()) * cpu.element_size();
    header[name] = {{"dtype", dtype},
                    {"shape", cpu.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    ordered.push_back(std::move(cpu));
  }

  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');
  unsigned char length_bytes[8];
  for (int i = 0; i < 8; ++i)
    length_bytes[i] = static_cast<unsigned char>(header_text.size() >> (8 * i));

  const std::string tmp_path = path + ".tmp";
  std::FILE* out = std::fopen(tmp_path.c_str(), "wb");
  if (!out) fail(path, "cannot open '" + tmp_path + "' for writing");
  bool ok = std::fwrite(length_bytes, 1, 8, out) == 8 &&
            std::fwrite(header_text.data(), 1, header_text.size(), out) == header_text.size();
  for (const auto& tensor : ordered) {
    const size_t nbytes = static_cast<size_t>(tensor.numel()) * tensor.element_size();
    if (ok && nbytes > 0) ok = std::fwrite(tensor.data_ptr(), 1, nbytes, out) == nbytes;
  }
  // Flush to disk before the rename, so the new name never points at unwritten data.
  ok = ok && std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
  ok = std::fclose(out) == 0 && ok;
  std::error_code ec;
  if (ok) std::filesystem::rename(tmp_path, path, ec);
  if (!ok || ec) {
    std::filesystem::remove(tmp_path, ec);
    fail(path, "cannot write safetensors file (disk full or no permission?)");
  }
}

}  // namespace qfae::io
