#include "nodes/node_key.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace labgate::nodes {

using core::ErrorCode;
using core::MakeError;

std::string Fingerprint(ssh_key key) {
  unsigned char* hash = nullptr;
  std::size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) return "";
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  std::string out = fp ? fp : "";
  ssh_string_free_char(fp);
  return out;
}

core::Result<PublicKey> PublicKeyOf(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK || b64 == nullptr) {
    return MakeError(ErrorCode::kInternal, "could not export a public key");
  }
  PublicKey out{ssh_key_type_to_char(ssh_key_type(key)), b64, Fingerprint(key)};
  ssh_string_free_char(b64);
  return out;
}

core::Result<KeyPtr> ImportPublicKey(const PublicKey& key) {
  ssh_key raw = nullptr;
  enum ssh_keytypes_e type = ssh_key_type_from_name(key.type.c_str());
  if (type != SSH_KEYTYPE_ED25519) {
    return MakeError(ErrorCode::kRefused, "key type " + key.type + " is not accepted; node keys are Ed25519");
  }
  if (ssh_pki_import_pubkey_base64(key.base64.c_str(), type, &raw) != SSH_OK) {
    return MakeError(ErrorCode::kParse, "malformed public key");
  }
  KeyPtr out(raw);
  if (!key.fingerprint.empty() && Fingerprint(raw) != key.fingerprint) {
    return MakeError(ErrorCode::kRefused, "public key does not match its fingerprint " + key.fingerprint);
  }
  return out;
}

core::Result<KeyPtr> CreateKeyFile(const std::string& path) {
  ssh_key raw = nullptr;
  if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) {
    return MakeError(ErrorCode::kInternal, "could not generate an Ed25519 key");
  }
  KeyPtr key(raw);
  const std::string tmp = path + ".tmp";
  ::unlink(tmp.c_str());
  // Create the file 0600 first: libssh would otherwise create it with the umask's mode.
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return MakeError(ErrorCode::kIo, "cannot create " + tmp + ": " + std::strerror(errno));
  ::close(fd);
  if (ssh_pki_export_privkey_file(raw, nullptr, nullptr, nullptr, tmp.c_str()) != SSH_OK) {
    ::unlink(tmp.c_str());
    return MakeError(ErrorCode::kIo, "cannot write the key to " + tmp);
  }
  ::chmod(tmp.c_str(), 0600);
  fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return MakeError(ErrorCode::kIo, "cannot move the new key to " + path + ": " + std::strerror(errno));
  }
  return key;
}

core::Result<KeyPtr> LoadKeyFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return MakeError(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                     "cannot read key " + path + ": " + std::strerror(errno));
  }
  if ((st.st_mode & 077) != 0) {
    return MakeError(ErrorCode::kRefused, "key " + path + " is readable by others (mode " +
                                              std::to_string(st.st_mode & 0777) + "); run `chmod 600 " + path + "`");
  }
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) {
    return MakeError(ErrorCode::kParse, "cannot load key " + path + " (not an unencrypted OpenSSH private key)");
  }
  return KeyPtr(raw);
}

core::Result<KeyPtr> LoadOrCreateKeyFile(const std::string& path, bool* created) {
  auto key = LoadKeyFile(path);
  if (key || key.error().code != ErrorCode::kNotFound) {
    if (created) *created = false;
    return key;
  }
  if (created) *created = true;
  return CreateKeyFile(path);
}

}  // namespace labgate::nodes
