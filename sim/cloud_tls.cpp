// SPDX-License-Identifier: MIT
#include "sim/cloud_tls.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

namespace iot::sim::cloud {

namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

std::string openssl_error(std::string_view what) {
  std::string message(what);
  const unsigned long e = ERR_get_error();
  if (e != 0) {
    char buffer[256];
    ERR_error_string_n(e, buffer, sizeof buffer);
    message += ": ";
    message += buffer;
  }
  ERR_clear_error();
  return message;
}

Result<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail(ErrorKind::io, "read " + path.string() + ": " + std::strerror(errno));
  }
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Writes through a temporary file created with `mode`, then renames it into place.
Status write_file(const fs::path& path, const std::string& content, mode_t mode) {
  const fs::path temp = path.string() + ".tmp";
  ::unlink(temp.c_str());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    return fail(ErrorKind::io, "create " + temp.string() + ": " + std::strerror(errno));
  }
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const std::string reason = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return fail(ErrorKind::io, "write " + temp.string() + ": " + reason);
    }
    done += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, mode);
  ::fsync(fd);
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    return fail(ErrorKind::io, "rename " + temp.string() + ": " + reason);
  }
  return {};
}

Result<Key> new_key() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) {
    return fail(ErrorKind::failure, openssl_error("generate EC key"));
  }
  return key;
}

Result<std::string> key_pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return fail(ErrorKind::failure, openssl_error("encode key"));
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<std::string> cert_pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return fail(ErrorKind::failure, openssl_error("encode certificate"));
  }
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<Key> load_key(const fs::path& path) {
  auto text = IOT_TRY(read_file(path));
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return fail(ErrorKind::io, openssl_error("read key " + path.string()));
  }
  return key;
}

Result<Cert> load_cert(const fs::path& path) {
  auto text = IOT_TRY(read_file(path));
  Bio bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return fail(ErrorKind::io, openssl_error("read certificate " + path.string()));
  }
  return cert;
}

bool add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, Free> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

// A certificate for `key` with subject CN=`cn`, valid from an hour ago for `days`, signed by
// issuer_key (self-signed when issuer is null).
Result<Cert> make_cert(EVP_PKEY* key,
                       const std::string& cn,
                       long days,
                       X509* issuer,
                       EVP_PKEY* issuer_key,
                       const std::vector<std::pair<int, std::string>>& extensions) {
  Cert cert(X509_new());
  if (!cert) {
    return fail(ErrorKind::failure, openssl_error("X509_new"));
  }
  X509_set_version(cert.get(), 2);
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof serial_bytes) != 1) {
    return fail(ErrorKind::failure, openssl_error("serial"));
  }
  serial_bytes[0] &= 0x7FU; // positive
  BIGNUM* serial = BN_bin2bn(serial_bytes, sizeof serial_bytes, nullptr);
  BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(cert.get()));
  BN_free(serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(
      name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("iotfleet-sim"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* signer = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  for (const auto& [nid, value] : extensions) {
    if (!add_extension(cert.get(), signer, nid, value)) {
      return fail(ErrorKind::failure, openssl_error("certificate extension " + value));
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) {
    return fail(ErrorKind::failure, openssl_error("sign certificate"));
  }
  return cert;
}

std::string alt_name(const std::string& name) {
  unsigned char buffer[16];
  if (inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
      inet_pton(AF_INET6, name.c_str(), buffer) == 1) {
    return "IP:" + name;
  }
  return "DNS:" + name;
}

} // namespace

Result<TlsFiles> ensure_tls_files(const fs::path& dir,
                                  const std::vector<std::string>& extra_names) {
  TlsFiles files{
      dir / "ca.pem", dir / "ca-key.pem", dir / "server.pem", dir / "server-key.pem", false};
  if (fs::exists(files.ca_cert) && fs::exists(files.server_cert) && fs::exists(files.server_key)) {
    return files;
  }
  files.generated = true;
  Key ca_key;
  Cert ca_cert;
  if (fs::exists(files.ca_cert) && fs::exists(files.ca_key)) {
    auto k = IOT_TRY(load_key(files.ca_key));
    auto c = IOT_TRY(load_cert(files.ca_cert));
    ca_key = std::move(k);
    ca_cert = std::move(c);
  } else {
    auto k = IOT_TRY(new_key());
    auto c = IOT_TRY(make_cert(k.get(),
                               "iotfleet-sim cloud emulator CA",
                               3650,
                               nullptr,
                               k.get(),
                               {{NID_basic_constraints, "critical,CA:TRUE"},
                                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                {NID_subject_key_identifier, "hash"}}));
    const auto key_text = IOT_TRY(key_pem(k.get()));
    const auto cert_text = IOT_TRY(cert_pem(c.get()));
    IOT_TRY(write_file(files.ca_key, key_text, 0600));
    IOT_TRY(write_file(files.ca_cert, cert_text, 0644));
    ca_key = std::move(k);
    ca_cert = std::move(c);
  }
  std::string san = "IP:127.0.0.1,IP:::1,DNS:localhost";
  for (const std::string& name : extra_names) {
    if (!name.empty() && name != "127.0.0.1" && name != "::1" && name != "localhost" &&
        name != "0.0.0.0" && name != "::") {
      san += "," + alt_name(name);
    }
  }
  auto key = IOT_TRY(new_key());
  auto cert = IOT_TRY(make_cert(key.get(),
                                "localhost",
                                825,
                                ca_cert.get(),
                                ca_key.get(),
                                {{NID_basic_constraints, "critical,CA:FALSE"},
                                 {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                                 {NID_ext_key_usage, "serverAuth"},
                                 {NID_subject_alt_name, san},
                                 {NID_subject_key_identifier, "hash"},
                                 {NID_authority_key_identifier, "keyid:always"}}));
  const auto key_text = IOT_TRY(key_pem(key.get()));
  const auto cert_text = IOT_TRY(cert_pem(cert.get()));
  IOT_TRY(write_file(files.server_key, key_text, 0600));
  IOT_TRY(write_file(files.server_cert, cert_text, 0644));
  return files;
}

} // namespace iot::sim::cloud
