#!/usr/bin/env bash
# Side-by-side benchmark of backups into an S3 server: diskray backup vs restic backup, both
# into the same s3s-fs server on loopback (a Rust S3 server over a directory), in one run:
#
#   bash bench/s3.sh [WORKDIR]      (default WORKDIR: bench/work; needs ~4 × SIZE free)
#
# Input: bench/backup.sh's disks (built here with INPUT_ONLY=1 when missing): a SIZE
# (default 8 GiB) ext4 disk about half full of mixed data, the same disk changed through a
# loop mount the way a guest changes it, and the change map of the 64 KiB blocks that
# differ.
#
# Compared (bench/measure.sh: RUNS rounds alternating the tools, page cache emptied and
# the input read once before each run; medians and the median of per-round ratios):
#   1. full backup into an empty bucket prefix: diskray backup --repo s3://… vs
#      restic backup -r s3:http://… (file mode);
#   2. incremental of the changed disk from the full backup: diskray backup --changes (its
#      changed chunks patched from the parent's, read back from the server) and --changes
#      --no-patch (changed chunks read whole from the disk) vs restic's second backup
#      (parent snapshot of the same path).
#   3. peak memory as the repository grows: diskray backups 1 to 10 (a full, then
#      incrementals alternating the two disks with the same map, which lists the blocks that
#      differ either way) and gc after 2 and after 10 images, each with its peak RSS.
# The server's own CPU is not counted for either tool. Each tool has a bucket of its own:
# s3s-fs walks the whole bucket's directory for every page of a listing. Results print as Markdown and go to
# WORKDIR/s3-results-SIZE.md; every run is in WORKDIR/backup-SIZE/s3/runs.log.
#
# Environment: DR (a diskray binary; default: build one), SIZE, RUNS, S3_PORT (default
# 18014), S3S (the s3s-fs binary; default: on PATH or in ~/.cargo/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-8G}
W=${1:-bench/work}
mkdir -p "$W"
INPUT_ONLY=1 SIZE=$SIZE DR=${DR:-/bin/true} bash bench/backup.sh "$W"
W=$(cd "$W" && pwd)
B=$W/backup-$SIZE
DISK=$B/disk.raw
DISK2=$B/disk2.raw
MAP=$B/changes.json
MD=$B/s3
RESULTS=$W/s3-results-$SIZE.md
. bench/measure.sh
# The previous run's server directory is set aside (bench/measure.sh, `discard`).
TRASH=$W/trash
discard "$MD"
mkdir -p "$MD"
for t in restic jq; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install restic jq)" >&2; exit 1; }
done
S3S=${S3S:-$(command -v s3s-fs || echo "$HOME/.cargo/bin/s3s-fs")}
[ -x "$S3S" ] || { echo "s3s-fs is required (cargo install s3s-fs --version 0.14.1 --features binary)" >&2; exit 1; }
if [ -z "${DR:-}" ]; then
  cargo build --release -q
  cp target/release/diskray "$W/diskray-bin"
  DR=$W/diskray-bin
fi
DR=$(realpath "$DR")

PORT=${S3_PORT:-18014}
ROOT=$MD/s3root
# One bucket per tool: s3s-fs walks the whole bucket for every page of a listing.
mkdir -p "$ROOT/diskray" "$ROOT/restic"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret AWS_REGION=us-east-1
export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
"$S3S" --host 127.0.0.1 --port "$PORT" --access-key "$AWS_ACCESS_KEY_ID" \
  --secret-key "$AWS_SECRET_ACCESS_KEY" "$ROOT" > "$MD/s3s.log" 2>&1 &
S3PID=$!
trap 'kill $S3PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
export RESTIC_PASSWORD=diskray-bench
RS=(restic --no-cache --quiet)

DRR=s3://diskray/repo DRDIR=$ROOT/diskray/repo DRBASE=$ROOT/base-diskray
RSR=s3:$AWS_ENDPOINT_URL/restic/repo RSDIR=$ROOT/restic/repo RSBASE=$ROOT/base-restic
RSRC=$MD/src
mkdir -p "$RSRC"
prep_dr_fresh() { discard "$DRDIR"; }
prep_rs_fresh() { discard "$RSDIR"; "${RS[@]}" init --repo "$RSR" >/dev/null; ln -f "$DISK" "$RSRC/disk.raw"; }
# s3s-fs writes every object to a temporary file and renames it: hard links are safe.
prep_dr_base() { discard "$DRDIR"; cp -al "$DRBASE" "$DRDIR"; }
prep_rs_base() { discard "$RSDIR"; cp -al "$RSBASE" "$RSDIR"; ln -f "$DISK2" "$RSRC/disk.raw"; }

echo "== full backup into S3" >&2
def_tool dr_full "diskray backup → S3" prep_dr_fresh "$DISK" "$DR" backup "$DISK" --repo "$DRR" --name bench --json
def_tool rs_full "restic backup → S3" prep_rs_fresh "$DISK" "${RS[@]}" backup --repo "$RSR" --host bench --json "$RSRC/disk.raw"
pairs full dr_full rs_full
discard "$DRBASE" "$RSBASE"
cp -al "$DRDIR" "$DRBASE"
cp -al "$RSDIR" "$RSBASE"

echo "== incremental into S3" >&2
def_tool dr_inc "diskray backup --changes → S3" prep_dr_base "$DISK2" "$DR" backup "$DISK2" --repo "$DRR" --name bench --changes "$MAP" --json
def_tool dr_inc_np "diskray backup --changes --no-patch → S3" prep_dr_base "$DISK2" "$DR" backup "$DISK2" --repo "$DRR" --name bench --changes "$MAP" --no-patch --json
def_tool rs_inc "restic backup (2nd) → S3" prep_rs_base "$DISK2" "${RS[@]}" backup --repo "$RSR" --host bench --json "$RSRC/disk.raw"
pairs inc dr_inc dr_inc_np rs_inc

echo "== peak memory over 10 images" >&2
prep_dr_fresh
MEM=()
rss() { /usr/bin/time -f %M -o "$MD/rss" "$@" > /dev/null && cat "$MD/rss"; }
for i in $(seq 1 10); do
  if [ "$i" = 1 ]; then
    r=$(rss "$DR" backup "$DISK" --repo "$DRR" --name mem --json)
  elif (( i % 2 == 0 )); then
    r=$(rss "$DR" backup "$DISK2" --repo "$DRR" --name mem --changes "$MAP" --json)
  else
    r=$(rss "$DR" backup "$DISK" --repo "$DRR" --name mem --changes "$MAP" --json)
  fi
  MEM+=("$r")
  if [ "$i" = 2 ]; then GC2=$(rss "$DR" gc --repo "$DRR" --json); fi
done
GC10=$(rss "$DR" gc --repo "$DRR" --json)

{
  echo "### Backups into an S3 server ($SIZE disk, $(date -u +%F), $("$DR" --version), $(restic version | cut -d' ' -f1-2), s3s-fs $("$S3S" --version | awk '{print $2}'))"
  echo
  echo "Method: bench/measure.sh ($RUNS rounds, alternating; sync, page cache emptied and the input read before every run; medians, times including a trailing sync). Server directories a run replaces are set aside, not deleted, until the end, and no run starts within 6 minutes of a large delete (ext4 skips recently freed inodes, at a cost to every object file the server creates; bench/measure.sh)."
  echo
  echo "Full backup:"
  echo
  report full rs_full dr_full rs_full
  echo
  echo "Incremental with the change map ($(jq '[.changedArea[].length] | add / 1048576 | floor' "$MAP") MiB listed):"
  echo
  report inc rs_inc dr_inc dr_inc_np rs_inc
  echo
  echo "Peak RSS of diskray as the repository grows: backup 1 (full) $((MEM[0] / 1024)) MiB; backup 2 $((MEM[1] / 1024)) MiB; backup 10 $((MEM[9] / 1024)) MiB; gc with 2 images $((GC2 / 1024)) MiB, with 10 images $((GC10 / 1024)) MiB."
} | tee "$RESULTS"
empty_trash
