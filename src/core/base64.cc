#include "core/base64.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdlib>
#include <iostream>

namespace labgate::core {

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return MakeError(ErrorCode::kParse, "base64 length is not a multiple of 4");
  for (char c : text) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              c == '=';
    if (!ok) return MakeError(ErrorCode::kParse, "base64 contains a character outside its alphabet");
  }
  // Padding only at the very end, at most two, and "x=y=" is not base64 (OpenSSL would decode
  // "QUI=QUI=" to five bytes with a NUL inside).
  if (const auto pad = text.find('='); pad != std::string_view::npos) {
    if (pad + 2 < text.size() || text.find_first_not_of('=', pad) != std::string_view::npos) {
      return MakeError(ErrorCode::kParse, "base64 padding '=' appears before the end");
    }
  }
  std::string out(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return MakeError(ErrorCode::kParse, "malformed base64");
  std::size_t len = static_cast<std::size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes; take them off again.
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() > 1 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string s = Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

Result<std::string> Base64UrlDecode(std::string_view text) {
  std::string s(text);
  for (char& c : s) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/' || c == '=') return MakeError(ErrorCode::kParse, "not URL-safe base64");
  }
  if (s.size() % 4 == 1) return MakeError(ErrorCode::kParse, "base64 text has an impossible length");
  while (s.size() % 4 != 0) s.push_back('=');
  return Base64Decode(s);
}

std::string RandomBytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    std::cerr << "labgate: the system random number generator failed\n";
    std::abort();
  }
  return out;
}

}  // namespace labgate::core
