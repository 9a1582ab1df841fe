// apr keygen / sign / verify / encrypt / decrypt: Ed25519 signatures and AES-256-GCM encryption
// of APR files (libsodium). Passphrases come from a file or APR_PASSPHRASE, never from argv.
#include <cstdlib>
#include <memory>
#include <string>

#include "apr/format/crypto.hpp"
#include "cli.hpp"

namespace apr::cli {

Result<std::string> read_passphrase(const std::string& file) {
  if (!file.empty()) {
    auto text = format::read_text_file(file);
    if (!text) return std::move(text).error();
    std::string passphrase = text->substr(0, text->find('\n'));
    if (!passphrase.empty() && passphrase.back() == '\r') passphrase.pop_back();
    if (passphrase.empty()) return make_error(ErrorCode::invalid_argument, "{}: the passphrase file's first line is empty", file);
    return passphrase;
  }
  if (const char* env = std::getenv("APR_PASSPHRASE"); env != nullptr && *env != '\0') return std::string(env);
  return make_error(ErrorCode::invalid_argument, "no passphrase: give --passphrase-file FILE or set APR_PASSPHRASE");
}

void register_security_commands(CLI::App& app, Registry& registry) {
  {
    auto output = std::make_shared<std::string>();
    auto* keygen = app.add_subcommand("keygen", "Make an Ed25519 signing key pair: STEM.pub (public) and STEM.key (secret, mode 0600)");
    keygen->add_option("-o,--output", *output, "path stem of the two key files")->required();
    registry.add(keygen, [output] {
      auto keys = format::generate_signing_keys();
      if (!keys) return report(keys.error());
      if (auto status = format::write_signing_keys(*keys, *output); !status) return report(status.error());
      fmt::print("{}.pub: public key {}\n{}.key: secret key\n", *output, format::to_hex(keys->public_key), *output);
      return int{kOk};
    });
  }
  {
    struct Flags {
      std::string model, key, output;
    };
    auto flags = std::make_shared<Flags>();
    auto* sign = app.add_subcommand("sign", "Sign an APR file with an Ed25519 secret key (signature block after the footer)");
    sign->add_option("model", flags->model, "input .apr file")->required();
    sign->add_option("--key", flags->key, "secret key file from apr keygen")->required();
    sign->add_option("-o,--output", flags->output, "signed .apr file")->required();
    registry.add(sign, [flags] {
      auto key = format::read_secret_key(flags->key);
      if (!key) return report(key.error());
      if (auto status = format::sign_apr(flags->model, flags->output, *key); !status) return report(status.error());
      fmt::print("{}: signed\n", flags->output);
      return int{kOk};
    });
  }
  {
    struct Flags {
      std::string model, public_key;
      bool json = false;
    };
    auto flags = std::make_shared<Flags>();
    auto* verify = app.add_subcommand("verify", "Check an APR file's Ed25519 signature against a public key (exit 1 when it does not match)");
    verify->add_option("model", flags->model, "signed .apr file")->required();
    verify->add_option("--public-key", flags->public_key, "public key file from apr keygen")->required();
    verify->add_flag("--json", flags->json, "print JSON");
    registry.add(verify, [flags] {
      auto key = format::read_public_key(flags->public_key);
      if (!key) return report(key.error());
      auto mapped = MappedFile::open(flags->model);
      if (!mapped) return report(mapped.error());
      auto contents = format::parse_apr(mapped->bytes(), flags->model);
      if (!contents) return report(contents.error());
      auto status = format::verify_apr_signature(*contents, mapped->bytes(), *key, flags->model);
      if (flags->json) {
        print_json({{"path", flags->model}, {"signed", contents->signature.has_value()}, {"valid", status.has_value()},
                    {"error", status ? nlohmann::json(nullptr) : nlohmann::json(status.error().message)}});
        return status ? int{kOk} : exit_code_for(status.error());
      }
      if (!status) return report(status.error());
      fmt::print("{}: signature valid (key {})\n", flags->model, format::to_hex(*key));
      return int{kOk};
    });
  }
  {
    struct Flags {
      std::string model, output, passphrase_file, compress = "none";
      int level = -1;
    };
    auto flags = std::make_shared<Flags>();
    auto* encrypt = app.add_subcommand("encrypt", "Encrypt an APR file's tensors with AES-256-GCM under a key from a passphrase (Argon2id)");
    encrypt->add_option("model", flags->model, "input .apr file")->required();
    encrypt->add_option("-o,--output", flags->output, "encrypted .apr file")->required();
    encrypt->add_option("--passphrase-file", flags->passphrase_file, "file whose first line is the passphrase (else $APR_PASSPHRASE)");
    encrypt->add_option("--compress", flags->compress, "compress each tensor first: none, lz4 or zstd")->check(CLI::IsMember({"none", "lz4", "zstd"}));
    encrypt->add_option("--level", flags->level, "compression level (zstd 1-22, default 3; lz4 0 fast or 1-12 HC)");
    registry.add(encrypt, [flags] {
      auto passphrase = read_passphrase(flags->passphrase_file);
      if (!passphrase) return report(passphrase.error());
      const auto codec = *format::parse_codec(flags->compress);
      const int level = flags->level < 0 ? format::default_level(codec) : flags->level;
      if (!format::valid_level(codec, level)) return report(make_error(ErrorCode::invalid_argument, "--level {} is not valid for {}", level, flags->compress));
      if (auto status = format::encrypt_apr(flags->model, flags->output, *passphrase, codec, level); !status) return report(status.error());
      fmt::print("{}: encrypted (AES-256-GCM, Argon2id key)\n", flags->output);
      return int{kOk};
    });
  }
  {
    struct Flags {
      std::string model, output, passphrase_file;
    };
    auto flags = std::make_shared<Flags>();
    auto* decrypt = app.add_subcommand("decrypt", "Write the plain form of an encrypted APR file");
    decrypt->add_option("model", flags->model, "encrypted .apr file")->required();
    decrypt->add_option("-o,--output", flags->output, "plain .apr file")->required();
    decrypt->add_option("--passphrase-file", flags->passphrase_file, "file whose first line is the passphrase (else $APR_PASSPHRASE)");
    registry.add(decrypt, [flags] {
      auto passphrase = read_passphrase(flags->passphrase_file);
      if (!passphrase) return report(passphrase.error());
      if (auto status = format::decrypt_apr(flags->model, flags->output, *passphrase); !status) return report(status.error());
      fmt::print("{}: decrypted\n", flags->output);
      return int{kOk};
    });
  }
}

}  // namespace apr::cli
