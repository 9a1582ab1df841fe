#!/usr/bin/env bash
# Integration tests of apr's APR-file extensions: convert --compress, keygen/sign/verify,
# encrypt/decrypt and what validate reports, with their failure paths and exit codes
# (0 ok, 1 validation failed, 2 usage, 3 I/O or format).
# usage: apr_files_test.sh APR_BINARY FIXTURES_DIR WORK_DIR
set -u
apr=$1 fixtures=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
unset APR_PASSPHRASE

. "$(dirname "$0")/harness.sh"

model=$fixtures/apr/qwen2-v512.apr

check "convert --compress zstd" 0 "tensors" -- "$apr" convert "$model" -o "$work/z.apr" --compress zstd --level 5
check "compressed file validates" 0 "compressed: zstd" -- "$apr" validate "$work/z.apr"
check "compressed file has the same tensors" 0 '"tensor_count": 27' -- "$apr" inspect "$work/z.apr" --json
check "compressed file runs" 0 '"ids"' -- "$apr" run "$work/z.apr" --prompt-ids 1,2,3 -n 2 --json
check "convert --compress lz4" 0 "tensors" -- "$apr" convert "$model" -o "$work/l.apr" --compress lz4
check "lz4 file validates" 0 "valid" -- "$apr" validate "$work/l.apr"
check "bad codec is a usage error" 2 "" -- "$apr" convert "$model" -o "$work/x.apr" --compress gzip
check "bad level is a usage error" 2 "not valid for zstd" -- "$apr" convert "$model" -o "$work/x.apr" --compress zstd --level 30

check "keygen" 0 "public key [0-9a-f]{64}" -- "$apr" keygen -o "$work/me"
check "secret key is private" 0 "" -- test "$(stat -c %a "$work/me.key")" = 600
check "keygen other" 0 "" -- "$apr" keygen -o "$work/other"
check "sign" 0 "signed" -- "$apr" sign "$model" --key "$work/me.key" -o "$work/s.apr"
check "verify good" 0 "signature valid" -- "$apr" verify "$work/s.apr" --public-key "$work/me.pub"
check "verify json" 0 '"valid": true' -- "$apr" verify "$work/s.apr" --public-key "$work/me.pub" --json
check "verify other key fails" 1 "signed by key" -- "$apr" verify "$work/s.apr" --public-key "$work/other.pub"
check "verify unsigned fails" 1 "not signed" -- "$apr" verify "$model" --public-key "$work/me.pub"
check "verify bad key file" 2 "expected 64 hex digits" -- "$apr" verify "$work/s.apr" --public-key "$work/me.key"
check "validate reports signature" 0 "signed: yes \(verified\)" -- "$apr" validate "$work/s.apr" --public-key "$work/me.pub"
check "validate unverified signature" 0 "not verified" -- "$apr" validate "$work/s.apr"
cp "$work/s.apr" "$work/tampered.apr"
printf '\x55' | dd of="$work/tampered.apr" bs=1 seek=3000 conv=notrunc 2>/dev/null
check "verify tampered fails" 1 "does not match" -- "$apr" verify "$work/tampered.apr" --public-key "$work/me.pub"
check "validate tampered fails" 1 "INVALID" -- "$apr" validate "$work/tampered.apr" --public-key "$work/me.pub"
check "sign missing key" 3 "cannot open" -- "$apr" sign "$model" --key "$work/none.key" -o "$work/x.apr"

printf 'open sesame\n' > "$work/pass"
printf 'open sesame!\n' > "$work/wrong"
check "encrypt needs a passphrase" 2 "no passphrase" -- "$apr" encrypt "$model" -o "$work/e.apr"
check "encrypt" 0 "encrypted" -- "$apr" encrypt "$model" -o "$work/e.apr" --passphrase-file "$work/pass" --compress zstd
check "encrypted file refuses to load without a passphrase" 3 "passphrase is needed" -- "$apr" inspect "$work/e.apr"
check "validate encrypted without passphrase" 0 "tensors not decoded" -- "$apr" validate "$work/e.apr"
check "validate encrypted with passphrase" 0 "decrypted" -- env APR_PASSPHRASE="open sesame" "$apr" validate "$work/e.apr"
check "validate wrong passphrase" 1 "wrong passphrase" -- "$apr" validate "$work/e.apr" --passphrase-file "$work/wrong"
check "decrypt wrong passphrase" 3 "wrong passphrase" -- "$apr" decrypt "$work/e.apr" -o "$work/d.apr" --passphrase-file "$work/wrong"
check "nothing written after a wrong passphrase" 1 "" -- test -e "$work/d.apr"
check "decrypt (env)" 0 "decrypted" -- env APR_PASSPHRASE="open sesame" "$apr" decrypt "$work/e.apr" -o "$work/d.apr"
check "decrypted file equals the original" 0 "" -- cmp "$model" "$work/d.apr"
check "decrypt a plain file" 2 "not encrypted" -- env APR_PASSPHRASE=x "$apr" decrypt "$model" -o "$work/x.apr"

finish
