#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration tests, then the end-to-end tests
# against a private Postfix instance (tests/e2e/postfix.sh and faults.sh) and a private Exim
# (tests/e2e/exim.sh, unpacked from its Debian packages) (all need root, install
# Postfix), then a short fuzzing run (scripts/fuzz.sh). Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if ! command -v python3 >/dev/null; then
    step "installing python3 (needed by the end-to-end test)"
    [[ $EUID -eq 0 ]] || { echo "python3 is missing and we are not root" >&2; exit 1; }
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq python3 >/dev/null
fi

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test"
cargo test

step "end-to-end: Postfix + listkeeper (tests/e2e/postfix.sh)"
bash tests/e2e/postfix.sh
step "end-to-end: Exim + listkeeper (tests/e2e/exim.sh)"
bash tests/e2e/exim.sh
step "end-to-end faults: kill -9, re-injection failures, store full, slow MTA (tests/e2e/faults.sh)"
bash tests/e2e/faults.sh

# Each fuzz target for FUZZ_SECONDS (30) when cargo-fuzz is installed or can be installed from
# the registry; skipped with a message otherwise. A crash fails the suite.
step "fuzzing: each target for ${FUZZ_SECONDS:-30} s (scripts/fuzz.sh)"
bash scripts/fuzz.sh

step "all tests passed"
