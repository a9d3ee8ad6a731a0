#!/usr/bin/env bash
# This machine's single-core limits for a backup's and a restore's per-chunk work, with the
# libraries and settings diskray uses (SHA-256 of sha2, zstd level 1, crc32fast, and the
# store's chunk encode/decode), on the backup benchmark's kind of data (text, binaries,
# incompressible; see crates/store/examples/limits.rs). Prints a Markdown table.
#
#   bash bench/limits.sh [MIB_PER_KIND]      (default 64)
#
# Run it on a quiet machine: it measures one thread, and a busy second core still costs it
# memory bandwidth. Compare its last column (CPU-seconds per GiB of a full backup's hashing
# and encoding) with the full backup's CPU-seconds per GiB used in bench/backup.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release -q -p diskray-store --example limits -- "$@"
echo
echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), CPU flags: $(grep -m1 -o -w 'sha_ni\|avx2\|avx512f\|pclmulqdq' /proc/cpuinfo | sort -u | tr '\n' ' ')"
