// YAML config files and --set overrides into the typed Config; the resolved config back to YAML.
#include "qfae/config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "fields.h"
#include "qfae/util/error.h"
#include "qfae/util/files.h"

namespace fs = std::filesystem;

namespace qfae::config {
namespace detail {

std::string type_name(const FieldPtr& ptr) {
  struct Namer {
    std::string operator()(bool*) const { return "true or false"; }
    std::string operator()(int64_t*) const { return "an integer"; }
    std::string operator()(double*) const { return "a number"; }
    std::string operator()(std::string*) const { return "a string"; }
    std::string operator()(std::vector<int64_t>*) const { return "a list of integers"; }
    std::string operator()(std::vector<double>*) const { return "a list of numbers"; }
    std::string operator()(std::vector<std::string>*) const { return "a list of strings"; }
  };
  return std::visit(Namer{}, ptr);
}

namespace {
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1] ? 1u : 0u)});
      diag = up;
    }
  }
  return row[b.size()];
}
}  // namespace

std::vector<std::string> nearest_keys(const std::string& key, const std::vector<FieldRef>& fields,
                                      size_t count) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& f : fields) scored.emplace_back(edit_distance(key, f.key), f.key);
  std::stable_sort(scored.begin(), scored.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && i < count; ++i) out.push_back(scored[i].second);
  return out;
}

}  // namespace detail

namespace {
using detail::FieldPtr;
using detail::FieldRef;

std::string scalar_text(const YAML::Node& node) {
  if (node.IsScalar()) return node.Scalar();
  std::ostringstream out;
  out << YAML::Dump(node);
  std::string text = out.str();
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

template <class T>
T parse_scalar(const YAML::Node& node) {
  if (!node.IsScalar()) throw YAML::BadConversion(node.Mark());
  return node.as<T>();
}

// No config list is longer than this; a longer one is a mistake, refused before it is converted.
constexpr size_t kMaxListLength = 256;

struct ListTooLong {
  size_t length;
};

template <class T>
std::vector<T> parse_list(const YAML::Node& node) {
  std::vector<T> out;
  if (node.IsNull()) return out;
  if (node.IsScalar()) return {node.as<T>()};  // a single value is a list of one
  if (!node.IsSequence()) throw YAML::BadConversion(node.Mark());
  if (node.size() > kMaxListLength) throw ListTooLong{node.size()};
  for (const auto& item : node) out.push_back(parse_scalar<T>(item));
  return out;
}

std::string resolve_path(const std::string& value, const fs::path& base) {
  if (value.empty()) return value;
  fs::path p(value);
  if (p.is_relative()) p = base / p;
  return p.lexically_normal().string();
}

// Sets one field from a YAML node; `where` names the file or flag for errors.
void assign(const FieldRef& field, const YAML::Node& node, const fs::path& base,
            const std::string& where) {
  try {
    struct Setter {
      const YAML::Node& node;
      void operator()(bool* p) const { *p = parse_scalar<bool>(node); }
      void operator()(int64_t* p) const { *p = parse_scalar<int64_t>(node); }
      void operator()(double* p) const { *p = parse_scalar<double>(node); }
      void operator()(std::string* p) const { *p = node.IsNull() ? "" : parse_scalar<std::string>(node); }
      void operator()(std::vector<int64_t>* p) const { *p = parse_list<int64_t>(node); }
      void operator()(std::vector<double>* p) const { *p = parse_list<double>(node); }
      void operator()(std::vector<std::string>* p) const { *p = parse_list<std::string>(node); }
    };
    // A null is an empty string or list, but no number or boolean.
    const bool scalar = std::holds_alternative<bool*>(field.ptr) ||
                        std::holds_alternative<int64_t*>(field.ptr) ||
                        std::holds_alternative<double*>(field.ptr);
    if (node.IsNull() && scalar) {
      throw UserError(where + ": " + field.key + ": no value given; expected " +
                      detail::type_name(field.ptr));
    }
    std::visit(Setter{node}, field.ptr);
  } catch (const ListTooLong& e) {
    throw UserError(where + ": " + field.key + ": a list of " + std::to_string(e.length) +
                    " entries; at most " + std::to_string(kMaxListLength) + " are accepted");
  } catch (const YAML::Exception&) {
    // A number too large for its type is said as such, not as "not a number".
    const std::string text = scalar_text(node);
    errno = 0;
    char* end = nullptr;
    if (std::holds_alternative<double*>(field.ptr)) {
      std::strtod(text.c_str(), &end);
    } else if (std::holds_alternative<int64_t*>(field.ptr)) {
      std::strtoll(text.c_str(), &end, 10);
    }
    if (errno == ERANGE && end && end != text.c_str() && *end == '\0') {
      throw UserError(where + ": " + field.key + ": '" + text.substr(0, 40) +
                      (text.size() > 40 ? "..." : "") + "' is out of the range of " +
                      (std::holds_alternative<double*>(field.ptr) ? "a number (about 1.8e308)"
                                                                  : "a 64-bit integer"));
    }
    throw UserError(where + ": " + field.key + ": '" + text + "' is not " +
                    detail::type_name(field.ptr));
  }
  if (field.is_path) {
    if (auto* s = std::get_if<std::string*>(&field.ptr)) **s = resolve_path(**s, base);
    if (auto* v = std::get_if<std::vector<std::string>*>(&field.ptr)) {
      for (auto& item : **v) item = resolve_path(item, base);
    }
  }
}

// Keys that set several fields at once. `model.mlp_ratio` is one ratio for the Q-Former's and the
// decoder's MLPs alike, as configs written before the two were split say it.
const std::vector<std::string>* shorthand_targets(const std::string& key) {
  static const std::map<std::string, std::vector<std::string>> kShorthands = {
      {"model.mlp_ratio", {"model.qformer_mlp_ratio", "model.decoder_mlp_ratio"}}};
  const auto it = kShorthands.find(key);
  return it == kShorthands.end() ? nullptr : &it->second;
}

// Sets `key` (a field, or a shorthand for several) from `node`; false when no such key exists.
bool assign_key(LoadedConfig& loaded, const std::string& key, const YAML::Node& node,
                const fs::path& base, const std::string& where, const std::string& source,
                const std::vector<FieldRef>& fields) {
  const auto set = [&](const std::string& name) {
    const auto it = std::find_if(fields.begin(), fields.end(),
                                 [&](const FieldRef& f) { return f.key == name; });
    if (it == fields.end()) return false;
    assign(*it, node, base, where);
    loaded.sources[name] = source;
    return true;
  };
  if (const auto* targets = shorthand_targets(key)) {
    for (const auto& t : *targets) set(t);
    return true;
  }
  return set(key);
}

[[noreturn]] void unknown_key(const std::string& key, const std::vector<FieldRef>& fields,
                              const std::string& where) {
  std::string msg = where + ": unknown key '" + key + "'; did you mean ";
  const auto near = detail::nearest_keys(key, fields);
  for (size_t i = 0; i < near.size(); ++i) msg += (i ? ", " : "") + near[i];
  msg += "? (qfae config --keys lists them all)";
  throw UserError(msg);
}

void merge_map(LoadedConfig& loaded, const YAML::Node& map, const std::string& prefix,
               const fs::path& base, const std::string& where,
               const std::vector<FieldRef>& fields) {
  std::map<std::string, int> first_line;  // key -> the 1-based line that set it
  for (const auto& item : map) {
    const std::string key = prefix + item.first.as<std::string>();
    const int line = item.first.Mark().line + 1;
    if (const auto [it, fresh] = first_line.emplace(key, line); !fresh) {
      throw UserError(where + ": line " + std::to_string(line) + ": '" + key +
                      "' is given twice (first on line " + std::to_string(it->second) +
                      "); give each key and section once");
    }
    if (assign_key(loaded, key, item.second, base, where, where, fields)) continue;
    const bool is_section = std::any_of(fields.begin(), fields.end(), [&](const FieldRef& f) {
      return f.key.rfind(key + ".", 0) == 0;
    });
    if (!is_section) unknown_key(key, fields, where);
    if (!item.second.IsMap()) {
      throw UserError(where + ": '" + key + "' is a section and must hold keys, not '" +
                      scalar_text(item.second) + "'");
    }
    merge_map(loaded, item.second, key + ".", base, where, fields);
  }
}

std::string format_double(double x) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s(buf);
  // %g switches to an exponent for round integers (10 -> "1e+01"): write those out in full.
  if (s.find('e') != std::string::npos && x == std::floor(x) && std::fabs(x) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.1f", x);
    s = buf;
  }
  // Keep the YAML type visibly a float ("25.0", not "25").
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

void emit_value(YAML::Emitter& out, const FieldPtr& ptr) {
  struct Emit {
    YAML::Emitter& out;
    void operator()(bool* p) const { out << *p; }
    void operator()(int64_t* p) const { out << std::to_string(*p); }
    void operator()(double* p) const { out << format_double(*p); }
    void operator()(std::string* p) const { out << YAML::DoubleQuoted << *p; }
    void operator()(std::vector<int64_t>* p) const {
      out << YAML::Flow << YAML::BeginSeq;
      for (auto v : *p) out << std::to_string(v);
      out << YAML::EndSeq;
    }
    void operator()(std::vector<double>* p) const {
      out << YAML::Flow << YAML::BeginSeq;
      for (auto v : *p) out << format_double(v);
      out << YAML::EndSeq;
    }
    void operator()(std::vector<std::string>* p) const {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& v : *p) out << YAML::DoubleQuoted << v;
      out << YAML::EndSeq;
    }
  };
  std::visit(Emit{out}, ptr);
}

}  // namespace

void apply_file(LoadedConfig& loaded, const std::string& path) {
  if (!fs::is_regular_file(path)) throw UserError("config file '" + path + "' does not exist");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw UserError(path + ": not valid YAML: " + e.what());
  }
  if (root.IsNull()) return;  // an empty file changes nothing
  if (!root.IsMap()) throw UserError(path + ": expected a mapping of keys at the top level");
  const auto fields = detail::fields_of(loaded.config);
  const fs::path base = fs::absolute(path).parent_path();
  merge_map(loaded, root, "", base, path, fields);
}

void apply_assignment(LoadedConfig& loaded, const std::string& assignment,
                      const std::string& source) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw UserError(source + " " + assignment + ": expected key.path=value");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  const auto fields = detail::fields_of(loaded.config);
  const std::string where = source + " " + assignment;
  const bool known = shorthand_targets(key) != nullptr ||
                     std::any_of(fields.begin(), fields.end(),
                                 [&](const FieldRef& f) { return f.key == key; });
  if (!known) unknown_key(key, fields, where);
  YAML::Node node;
  try {
    node = YAML::Load(text);
  } catch (const YAML::Exception&) {
    node = YAML::Node(text);  // not YAML: take it as a plain string, the type check decides
  }
  assign_key(loaded, key, node, fs::current_path(), where, source, fields);
}

LoadedConfig load_config(const std::vector<std::string>& files,
                         const std::vector<std::string>& assignments) {
  LoadedConfig loaded;
  for (const auto& f : files) apply_file(loaded, f);
  for (const auto& a : assignments) apply_assignment(loaded, a);
  return loaded;
}

std::string to_yaml(const Config& config) {
  Config copy = config;  // fields_of needs mutable pointers; we only read through them
  const auto fields = detail::fields_of(copy);
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string open_section;
  for (const auto& f : fields) {
    const auto dot = f.key.find('.');
    const std::string section = dot == std::string::npos ? "" : f.key.substr(0, dot);
    if (section != open_section) {
      if (!open_section.empty()) out << YAML::EndMap;
      if (!section.empty()) out << YAML::Key << section << YAML::Value << YAML::BeginMap;
      open_section = section;
    }
    out << YAML::Key << (dot == std::string::npos ? f.key : f.key.substr(dot + 1)) << YAML::Value;
    emit_value(out, f.ptr);
  }
  if (!open_section.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void save_yaml(const Config& config, const std::string& path) {
  write_file_atomic(path, "# resolved qfae config\n" + to_yaml(config));
}

std::vector<std::string> config_keys() {
  Config config;
  std::vector<std::string> keys;
  for (const auto& f : detail::fields_of(config)) keys.push_back(f.key);
  return keys;
}

std::vector<KeyDifference> differing_keys(const Config& a, const Config& b,
                                          const std::vector<std::string>& selection) {
  Config ca = a, cb = b;  // fields_of needs mutable pointers; we only read through them
  const auto fa = detail::fields_of(ca), fb = detail::fields_of(cb);
  const auto selected = [&](const std::string& key) {
    return std::any_of(selection.begin(), selection.end(), [&](const std::string& s) {
      return s.back() == '.' ? key.rfind(s, 0) == 0 : key == s;
    });
  };
  const auto text = [](const FieldPtr& ptr) {
    YAML::Emitter out;
    emit_value(out, ptr);
    return std::string(out.c_str());
  };
  std::vector<KeyDifference> out;
  for (size_t i = 0; i < fa.size(); ++i) {
    if (!selected(fa[i].key)) continue;
    auto ta = text(fa[i].ptr), tb = text(fb[i].ptr);
    if (ta != tb) out.push_back({fa[i].key, std::move(ta), std::move(tb)});
  }
  return out;
}

}  // namespace qfae::config
