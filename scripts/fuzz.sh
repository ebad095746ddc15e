#!/usr/bin/env bash
# Fuzz smoke run (the CI hook; fuzz/README.md): build the cargo-fuzz targets in fuzz/ and run
# each for FUZZ_SECONDS (default 30), one after another, on its seed corpus. Exits 1 when a
# target finds a crash or the targets do not build. When cargo-fuzz cannot be used here (no
# cargo, it cannot be installed, the compiler refuses the flags it needs) it says why and
# exits 0: CI must not fail for lack of the tool.
#
#   FUZZ_SECONDS=30        seconds per target
#   FUZZ_TARGETS="a b"     only these targets (default: all of `cargo fuzz list`)
#   FUZZ_INSTALL=1         `cargo install cargo-fuzz` when it is missing (0: skip instead)
#
# New corpus entries go to fuzz/target/corpus/TARGET (ignored by git); crashers to
# fuzz/artifacts/TARGET/ (ignored too). The committed seeds in fuzz/corpus/ are only read.
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
skip() {
    echo "fuzz.sh: not fuzzing: $*" >&2
    exit 0
}

seconds=${FUZZ_SECONDS:-30}
command -v cargo >/dev/null || skip "cargo is not installed"
if ! cargo fuzz --version >/dev/null 2>&1; then
    [[ ${FUZZ_INSTALL:-1} == 1 ]] || skip "cargo-fuzz is not installed (FUZZ_INSTALL=0)"
    step "installing cargo-fuzz"
    timeout 900 cargo install cargo-fuzz --locked || skip "cargo-fuzz could not be installed"
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer, sancov); a stable toolchain takes them
# with RUSTC_BOOTSTRAP=1. AddressSanitizer when this toolchain has it, else coverage only.
export RUSTC_BOOTSTRAP=1
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
echo 'fn main() {}' >"$probe/p.rs"
if rustc -Zsanitizer=address --edition 2021 -o "$probe/p" "$probe/p.rs" 2>/dev/null; then
    sanitizer=address
elif rustc -Zunstable-options --edition 2021 -o "$probe/p" "$probe/p.rs" 2>/dev/null; then
    sanitizer=none
else
    skip "rustc refuses unstable flags even with RUSTC_BOOTSTRAP=1"
fi

# -O: fuzz/Cargo.toml's release profile (debug assertions and overflow checks on, except for
# mail-parser); without -O cargo-fuzz forces debug assertions on every crate.
step "cargo fuzz build -O --sanitizer $sanitizer"
cargo fuzz build -O --sanitizer "$sanitizer" || {
    echo "fuzz.sh: the fuzz targets do not build" >&2
    exit 1
}

dict_for() {
    case $1 in
    lmtp_session | commands) echo fuzz/dict/lmtp.dict ;;
    decorate | bounce | mime_depth) echo fuzz/dict/mail.dict ;;
    list_file) echo fuzz/dict/toml.dict ;;
    esac
}

# Longest input per target. libFuzzer's default (4096, or the largest seed) is too short to
# nest MIME parts past limits.max_mime_depth inside an encoded part; the message targets get
# room for that (the session target's server takes 4096-byte messages).
max_len_for() {
    case $1 in
    lmtp_session) echo 16384 ;;
    decorate | bounce | mime_depth) echo 65536 ;;
    *) echo 8192 ;;
    esac
}

# One line: `cargo fuzz list` prints one target per line.
targets=$(echo ${FUZZ_TARGETS:-$(cargo fuzz list)})
crashed=()
for t in $targets; do
    step "cargo fuzz run $t for ${seconds}s"
    mkdir -p "fuzz/target/corpus/$t"
    dict=$(dict_for "$t")
    # One in-process worker (no -jobs: libFuzzer would fork and log to ./fuzz-N.log).
    if ! cargo fuzz run -O --sanitizer "$sanitizer" "$t" \
        "fuzz/target/corpus/$t" "fuzz/corpus/$t" -- \
        -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
        -max_len="$(max_len_for "$t")" \
        ${dict:+-dict="$dict"}; then
        crashed+=("$t")
    fi
done

if ((${#crashed[@]})); then
    echo "fuzz.sh: crash in: ${crashed[*]} (inputs in fuzz/artifacts/; see fuzz/README.md)" >&2
    exit 1
fi
step "no crash in: $targets"
