// Test support: the message of the qfae::UserError a callable throws.
#pragma once
#include <string>

#include "qfae/util/error.h"

namespace qfae::test {

// The what() of the UserError that `f` throws, or "" when it throws none.
template <class F>
std::string user_error(F&& f) {
  try {
    f();
  } catch (const qfae::UserError& e) {
    return e.what();
  }
  return "";
}

}  // namespace qfae::test
