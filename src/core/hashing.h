#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace labgate::core {

/// Incremental SHA-256 (OpenSSL's vetted implementation). Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  /// Lowercase hex digest; the object is spent afterwards.
  std::string HexDigest();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// One-shot lowercase hex SHA-256.
std::string Sha256Hex(std::string_view bytes);

/// Lowercase hex of any bytes (digests, random ids and keys).
std::string HexEncode(std::string_view bytes);

}  // namespace labgate::core
