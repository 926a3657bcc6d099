// Error types: a UserError is a problem with what the user gave us (config, paths, data), reported
// as one clear line with exit code 2, never as a crash.
#pragma once
#include <stdexcept>
#include <string>

namespace qfae {

class UserError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A subcommand that parses its options but whose capability has not landed yet.
class NotImplementedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace qfae
