#!/usr/bin/env bash
# What encryption at rest costs: full backup of the benchmark disk into a fresh clear
# repository vs a fresh encrypted one (`diskray init --encrypt`, default Argon2id
# parameters), alternating, medians (bench/measure.sh).
#
#   bash bench/crypt.sh [WORKDIR]      (default WORKDIR: bench/work)
#
# The disk is bench/backup.sh's (WORKDIR/backup-SIZE/disk.raw, built by it if missing).
# The encrypted repository is initialised (`init --encrypt`, its Argon2id run) in the
# untimed prep step, as a deployment does once. After the runs, the encrypted repository
# is verified (restores equal to their sources are the tests' job, tests/crypt_e2e.rs).
# Environment: DR (diskray binary), SIZE (default 8G), RUNS (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-8G}
RUNS=${RUNS:-5}
W=${1:-bench/work}
mkdir -p "$W/backup-$SIZE"
W=$(cd "$W" && pwd)
B=$W/backup-$SIZE
MD=$B/crypt
mkdir -p "$MD"
DISK=$B/disk.raw
. bench/measure.sh
if [ -z "${DR:-}" ]; then
  cargo build --release -q
  cp target/release/diskray "$W/diskray-bin"
  DR=$W/diskray-bin
fi
DR=$(realpath "$DR")
[ -f "$DISK" ] || INPUT_ONLY=1 DR="$DR" bash bench/backup.sh "$W"
PW=$MD/password
echo "diskray-bench" > "$PW"
CLEAR=$MD/clear-repo ENC=$MD/enc-repo OUT=$MD/out.raw
rm -f "$MD/runs.log" "$MD/runs.tsv" "$MD/medians.sh"
prep_clear() { rm -rf "$CLEAR" "$ENC"; }
prep_enc() { rm -rf "$CLEAR" "$ENC"; "$DR" init --repo "$ENC" --encrypt --password-file "$PW" >/dev/null; }
echo "== full backup, clear vs encrypted ($RUNS rounds)" >&2
def_tool clear "diskray backup (clear)" prep_clear "$DISK" "$DR" backup "$DISK" --repo "$CLEAR" --name bench --json
def_tool enc "diskray backup (encrypted)" prep_enc "$DISK" "$DR" backup "$DISK" --repo "$ENC" --password-file "$PW" --name bench --json
pairs full clear enc
{
  echo "Full backup of $(basename "$DISK") ($SIZE), clear vs encrypted, $RUNS alternating rounds; $("$DR" --version), $(nproc) cores"
  echo
  report full clear clear enc
  echo
  echo "encrypted repository: $(du -sh "$ENC" | cut -f1); new chunks $(jq .stats.new_chunks "$MD/enc.out"), stored $(jq .stats.stored_new "$MD/enc.out") bytes (clear: $(jq .stats.stored_new "$MD/clear.out"))"
} | tee "$MD/results.md"
echo "== checking: the encrypted repository verifies (every chunk opened, its keyed digest checked)" >&2
prep_enc
"$DR" backup "$DISK" --repo "$ENC" --password-file "$PW" --name bench --json >/dev/null
"$DR" verify --repo "$ENC" --password-file "$PW" >&2
rm -rf "$ENC"
