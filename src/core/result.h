#pragma once

#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <variant>

namespace labgate::core {

/// What kind of failure an Error is; callers branch on this, people read the message.
enum class ErrorCode {
  kInvalidArgument,
  kNotFound,
  kParse,
  kIo,
  kTimeout,
  kCancelled,
  kRefused,
  kUnavailable,
  kInternal,
};

/// Short stable name of an error code, used in JSON output and audit records.
const char* ErrorCodeName(ErrorCode code);

/// A failure a caller must handle: a code plus a message that says what happened and what to do.
struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

inline Error MakeError(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

/// Either a value or an Error. Reading the wrong alternative is a broken invariant and aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Error error) : state_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return Check(true), std::get<0>(state_); }
  const T& value() const& { return Check(true), std::get<0>(state_); }
  T&& value() && { return Check(true), std::get<0>(std::move(state_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }

  const Error& error() const { return Check(false), std::get<1>(state_); }

 private:
  void Check(bool want_value) const {
    if (ok() != want_value) {
      std::cerr << "labgate: Result accessed as " << (want_value ? "value" : "error")
                << " but holds the other"
                << (ok() ? "" : ": " + std::get<1>(state_).message) << "\n";
      std::abort();
    }
  }
  std::variant<T, Error> state_;
};

/// Result of an operation that yields nothing but may fail.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    if (ok_) {
      std::cerr << "labgate: Result<void> error() read on success\n";
      std::abort();
    }
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status Ok() { return Status(); }

}  // namespace labgate::core
