// Internal: the flat list of config fields (key path, typed pointer), built from each struct's
// visit(), shared by the loader, the printer and the validator.
#pragma once
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "qfae/config/config.h"

namespace qfae::config::detail {

using FieldPtr = std::variant<bool*, int64_t*, double*, std::string*, std::vector<int64_t>*,
                              std::vector<double>*, std::vector<std::string>*>;

struct FieldRef {
  std::string key;   // "train.lr"
  FieldPtr ptr;
  bool is_path;      // resolved against the folder of the file that sets it
};

class Collector {
 public:
  Collector(std::string prefix, std::vector<FieldRef>* out) : prefix_(std::move(prefix)), out_(out) {}
  template <class T>
  void operator()(const char* key, T& value) { out_->push_back({prefix_ + key, &value, false}); }
  template <class T>
  void path(const char* key, T& value) { out_->push_back({prefix_ + key, &value, true}); }
  template <class S>
  void section(const char* key, S& section) {
    Collector inner(prefix_ + key + ".", out_);
    section.visit(inner);
  }

 private:
  std::string prefix_;
  std::vector<FieldRef>* out_;
};

inline std::vector<FieldRef> fields_of(Config& config) {
  std::vector<FieldRef> out;
  Collector collector("", &out);
  config.visit(collector);
  return out;
}

// "expected an integer", "expected a list of numbers", ...
std::string type_name(const FieldPtr& ptr);

// Closest keys to `key` for "did you mean" hints, best first.
std::vector<std::string> nearest_keys(const std::string& key, const std::vector<FieldRef>& fields,
                                      size_t count = 3);

}  // namespace qfae::config::detail
