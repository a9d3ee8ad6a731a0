#!/usr/bin/env bash
# Side-by-side benchmark of the used-block map of a 64 GiB ext4 and a 64 GiB NTFS volume
# (sparse files), diskray against partclone -D, dumpe2fs and TSK blkls, in one run.
#
#   bash bench/guests.sh [WORKDIR]        (default bench/work; needs ~3 GiB free)
#
# Tools: e2fsprogs, ntfs-3g, partclone, sleuthkit (apt-get install them first).
# Each timing is the best of RUNS runs with a warm page cache. Results print as Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench/work}
RUNS=${RUNS:-3}
mkdir -p "$W"
cargo build --release -q
DR=$PWD/target/release/diskray
for t in mke2fs dumpe2fs mkntfs ntfscp partclone.extfs partclone.ntfs blkls; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install e2fsprogs ntfs-3g partclone sleuthkit)" >&2; exit 1; }
done

best_of() { # prints "seconds" (nanosecond clock: some runs take a few milliseconds)
  local best=""
  for _ in $(seq "$RUNS"); do
    local t0 t1 t
    t0=$(date +%s%N)
    "$@" >/dev/null 2>"$W/stderr.txt" || { cat "$W/stderr.txt" >&2; exit 1; }
    t1=$(date +%s%N)
    t=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", (b-a)/1e9}')
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; fi
  done
  echo "$best"
}

echo "== preparing payload (1 GiB in 256 files)" >&2
if [ ! -d "$W/payload" ]; then
  mkdir -p "$W/payload/d"
  for i in $(seq 0 255); do head -c 4M /dev/urandom > "$W/payload/d/f$i.bin"; done
fi
echo "== 64 GiB ext4" >&2
if [ ! -f "$W/ext4-64g.img" ]; then
  truncate -s 64G "$W/ext4-64g.img"
  mke2fs -q -F -t ext4 -d "$W/payload" "$W/ext4-64g.img"
fi
echo "== 64 GiB NTFS" >&2
if [ ! -f "$W/ntfs-64g.img" ]; then
  truncate -s 64G "$W/ntfs-64g.img"
  mkntfs -F -Q -q "$W/ntfs-64g.img"
  for i in $(seq 0 63); do ntfscp -q "$W/ntfs-64g.img" "$W/payload/d/f$i.bin" "/f$i.bin"; done
fi

echo "== running (best of $RUNS)" >&2
{
  echo "| volume | diskray | partclone -D | ratio | other | ratio |"
  echo "|---|--:|--:|--:|--:|--:|"
  d=$(best_of "$DR" blocks --json --state used "$W/ext4-64g.img")
  p=$(best_of partclone.extfs -D -q -s "$W/ext4-64g.img" -O "$W/dom.log" -L "$W/pc.log")
  o=$(best_of dumpe2fs "$W/ext4-64g.img")
  awk -v d="$d" -v p="$p" -v o="$o" 'BEGIN{printf "| ext4, 64 GiB, 1 GiB of files | %.3f s | %.3f s | **%.0f×** | dumpe2fs %.3f s | **%.1f×** |\n", d, p, p/d, o, o/d}'
  d=$(best_of "$DR" blocks --json --state used "$W/ntfs-64g.img")
  p=$(best_of partclone.ntfs -D -q -s "$W/ntfs-64g.img" -O "$W/dom.log" -L "$W/pc.log")
  o=$(best_of blkls -a -l "$W/ntfs-64g.img")
  awk -v d="$d" -v p="$p" -v o="$o" 'BEGIN{printf "| NTFS, 64 GiB, 256 MiB of files | %.3f s | %.3f s | **%.0f×** | blkls -a %.3f s | **%.1f×** |\n", d, p, p/d, o, o/d}'
} | tee "$W/guests-results.md"
echo "machine: $(nproc) cores, $(partclone.extfs -v 2>&1 | head -1 | tr -d '\n'), diskray $(git rev-parse --short HEAD)" | tee -a "$W/guests-results.md"
