/// @file crypto.hpp
/// @brief Signing (Ed25519) and encryption (AES-256-GCM, Argon2id) of APR files; needs libsodium
/// (CMake target apr::crypto).
#pragma once

#include "apr/format/apr_encryption.hpp"
#include "apr/format/apr_signing.hpp"
#include "apr/format/apr_v1_security.hpp"
#include "apr/format/sodium_support.hpp"
