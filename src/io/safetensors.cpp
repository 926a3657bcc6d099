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

// One header entry being parsed, for its messages: the file, "tensor '<name>'", and the length of
// the data after the header.
struct EntryContext {
  const std::string& path;
  std::string where;
  uint64_t buffer_size;
};

[[noreturn]] void fail_entry(const EntryContext& at, const std::string& problem) {
  fail(at.path, at.where + ": " + problem);
}

// An entry's three fields, each there and of the right kind.
struct EntryFields {
  const json* dtype;
  const json* shape;
  const json* offsets;
};

EntryFields entry_fields(const EntryContext& at, const json& value) {
  if (!value.is_object()) fail_entry(at, "header entry is not an object");
  const auto dtype_it = value.find("dtype");
  const auto shape_it = value.find("shape");
  const auto offsets_it = value.find("data_offsets");
  if (dtype_it == value.end() || !dtype_it->is_string()) {
    fail_entry(at, "missing string field 'dtype'");
  }
  if (shape_it == value.end() || !shape_it->is_array()) {
    fail_entry(at, "missing array field 'shape'");
  }
  if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
    fail_entry(at, "'data_offsets' must be an array [begin, end]");
  }
  return {&*dtype_it, &*shape_it, &*offsets_it};
}

torch::ScalarType parse_entry_dtype(const EntryContext& at, const std::string& dtype) {
  const auto known = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                                  [&](const DtypeName& d) { return dtype == d.name; });
  if (known == std::end(kDtypes)) {
    fail_entry(at, "unknown or unsupported dtype '" + dtype +
                       "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 or BOOL)");
  }
  return known->type;
}

// The sizes of `shape`; `numel` their product, or more than the buffer size where it would be.
std::vector<int64_t> parse_entry_shape(const EntryContext& at, const json& shape, uint64_t* numel) {
  std::vector<int64_t> sizes;
  *numel = 1;
  bool has_zero_dim = false;
  for (const auto& dim : shape) {
    if (!dim.is_number_unsigned() ||
        dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail_entry(at, "shape " + shape.dump() + " must hold non-negative integers");
    }
    const uint64_t d = dim.get<uint64_t>();
    sizes.push_back(static_cast<int64_t>(d));
    // Anything larger than the buffer cannot match; cap there so the product cannot overflow.
    if (d == 0) {
      has_zero_dim = true;
    } else if (*numel <= at.buffer_size) {
      *numel = *numel > at.buffer_size / d ? at.buffer_size + 1 : *numel * d;
    }
  }
  if (has_zero_dim) *numel = 0;
  return sizes;
}

// Sets the entry's byte range from `offsets`, which must lie inside the data buffer.
void parse_entry_offsets(const EntryContext& at, const json& offsets, Entry* entry) {
  const json& begin = offsets[0];
  const json& end = offsets[1];
  if (!begin.is_number_unsigned() || !end.is_number_unsigned()) {
    fail_entry(at, "data_offsets " + offsets.dump() + " must be non-negative integers");
  }
  entry->begin = begin.get<uint64_t>();
  entry->end = end.get<uint64_t>();
  if (entry->begin > entry->end || entry->end > at.buffer_size) {
    fail_entry(at, "data_offsets " + offsets.dump() + " lie outside the data buffer of " +
                       std::to_string(at.buffer_size) + " bytes");
  }
}

// The entry's byte range must hold exactly its `numel` elements of `dtype`.
void check_entry_span(const EntryContext& at, const json& offsets, const Entry& entry,
                      const std::string& dtype, uint64_t numel) {
  const uint64_t element_size = c10::elementSize(entry.type);
  if (numel > at.buffer_size || numel * element_size != entry.end - entry.begin) {
    fail_entry(at, "data_offsets " + offsets.dump() + " span " +
                       std::to_string(entry.end - entry.begin) + " bytes, but shape " +
                       shape_text(entry.shape) + " of " + dtype + " needs " +
                       (numel > at.buffer_size ? std::string("more than the whole buffer")
                                               : std::to_string(numel * element_size)));
  }
}

// Parses and checks one header entry; `buffer_size` is the length of the data after the header.
Entry parse_entry(const std::string& path, const std::string& name, const json& value,
                  uint64_t buffer_size) {
  const EntryContext at{path, "tensor '" + name + "'", buffer_size};
  const EntryFields fields = entry_fields(at, value);
  Entry entry;
  entry.name = name;
  const std::string dtype = fields.dtype->get<std::string>();
  entry.type = parse_entry_dtype(at, dtype);
  uint64_t numel = 0;
  entry.shape = parse_entry_shape(at, *fields.shape, &numel);
  parse_entry_offsets(at, *fields.offsets, &entry);
  check_entry_span(at, *fields.offsets, entry, dtype, numel);
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

// The length of the JSON header, from the file's first 8 bytes (little-endian); it must fit in
// the file.
uint64_t read_header_length(const std::string& path, std::ifstream& in, uint64_t file_size) {
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
  return header_size;
}

// The header that follows the length: a JSON object.
json read_header_json(const std::string& path, std::ifstream& in, uint64_t header_size) {
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
  return header;
}

// The header's tensor entries, checked against the data buffer and against each other; its
// metadata goes to `metadata`.
std::vector<Entry> parse_header_entries(const std::string& path, const json& header,
                                        uint64_t buffer_size,
                                        std::map<std::string, std::string>* metadata) {
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      *metadata = parse_metadata(path, value);
    } else {
      entries.push_back(parse_entry(path, name, value, buffer_size));
    }
  }
  check_no_overlap(path, entries);
  return entries;
}

// The entry's tensor, read straight into its own memory; the data buffer starts at `data_start`.
torch::Tensor read_entry_tensor(const std::string& path, std::ifstream& in, uint64_t data_start,
                                const Entry& entry) {
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
  return tensor;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  require_little_endian(path);
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail(path, "cannot read safetensors file (" + ec.message() + ")");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open safetensors file");
  const uint64_t header_size = read_header_length(path, in, file_size);
  const json header = read_header_json(path, in, header_size);

  SafetensorsFile file;
  const auto entries =
      parse_header_entries(path, header, file_size - 8 - header_size, &file.metadata);
  for (const auto& entry : entries) {
    file.tensors.emplace(entry.name, read_entry_tensor(path, in, 8 + header_size, entry));
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
