#!/usr/bin/env bash
# Side-by-side benchmark of file-level access, diskray against The Sleuth Kit on the same
# images in one run: list every file recursively (diskray ls -r vs fls -r) and extract a
# 1 GiB file (diskray cat vs icat). Both extractions are checked against the source file.
#
#   bash bench/files.sh [WORKDIR]        (default bench/work; needs ~4 GiB free)
#
# Tools: e2fsprogs, ntfs-3g, sleuthkit. Best of RUNS runs, warm page cache, nanosecond clock.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench/work}
RUNS=${RUNS:-3}
mkdir -p "$W"
cargo build --release -q
DR=$PWD/target/release/diskray
for t in mke2fs mkntfs ntfscp fls icat; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install e2fsprogs ntfs-3g sleuthkit)" >&2; exit 1; }
done

best_of() {
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

echo "== preparing: 10 000 small files in 100 directories, and a 1 GiB file" >&2
if [ ! -d "$W/tree" ]; then
  mkdir -p "$W/tree"
  for d in $(seq 0 99); do
    mkdir -p "$W/tree/dir$d"
    for f in $(seq 0 99); do echo "file $d/$f" > "$W/tree/dir$d/file$f.txt"; done
  done
  head -c 1G /dev/urandom > "$W/big.bin"
fi
if [ ! -f "$W/files-ext4.img" ]; then
  mkdir -p "$W/ext4src" && cp -r "$W/tree" "$W/ext4src/" && cp "$W/big.bin" "$W/ext4src/big.bin"
  truncate -s 4G "$W/files-ext4.img"
  mke2fs -q -F -t ext4 -d "$W/ext4src" "$W/files-ext4.img"
  rm -rf "$W/ext4src"
fi
if [ ! -f "$W/files-ntfs.img" ]; then
  truncate -s 4G "$W/files-ntfs.img"
  mkntfs -F -Q -q "$W/files-ntfs.img" 2>/dev/null
  ntfscp -q "$W/files-ntfs.img" "$W/big.bin" /big.bin
fi
want=$(sha256sum < "$W/big.bin" | cut -d' ' -f1)

echo "== running (best of $RUNS)" >&2
{
  echo "| operation | diskray | TSK | ratio |"
  echo "|---|--:|--:|--:|"
  d=$(best_of "$DR" ls -r "$W/files-ext4.img")
  t=$(best_of fls -r "$W/files-ext4.img")
  awk -v d="$d" -v t="$t" 'BEGIN{printf "| list 10 101 entries recursively, ext4 (`ls -r` / `fls -r`) | %.3f s | %.3f s | **%.1f×** |\n", d, t, t/d}'
  ino=$(fls "$W/files-ext4.img" | awk '$NF=="big.bin"{sub(":","",$2); print $2}')
  [ "$("$DR" cat "$W/files-ext4.img" /big.bin | sha256sum | cut -d' ' -f1)" = "$want" ] || { echo "diskray cat differs" >&2; exit 1; }
  [ "$(icat "$W/files-ext4.img" "$ino" | sha256sum | cut -d' ' -f1)" = "$want" ] || { echo "icat differs" >&2; exit 1; }
  d=$(best_of "$DR" cat "$W/files-ext4.img" /big.bin)
  t=$(best_of icat "$W/files-ext4.img" "$ino")
  awk -v d="$d" -v t="$t" 'BEGIN{printf "| extract a 1 GiB file, ext4 (`cat` / `icat`) | %.3f s | %.3f s | **%.1f×** |\n", d, t, t/d}'
  ino=$(fls "$W/files-ntfs.img" | awk '$NF=="big.bin"{sub(":","",$2); print $2}')
  [ "$("$DR" cat "$W/files-ntfs.img" /big.bin | sha256sum | cut -d' ' -f1)" = "$want" ] || { echo "diskray cat differs (ntfs)" >&2; exit 1; }
  d=$(best_of "$DR" cat "$W/files-ntfs.img" /big.bin)
  t=$(best_of icat "$W/files-ntfs.img" "$ino")
  awk -v d="$d" -v t="$t" 'BEGIN{printf "| extract a 1 GiB file, NTFS (`cat` / `icat`) | %.3f s | %.3f s | **%.1f×** |\n", d, t, t/d}'
} | tee "$W/files-results.md"
echo "machine: $(nproc) cores, $(fls -V | head -1), diskray $(git rev-parse --short HEAD)" | tee -a "$W/files-results.md"
