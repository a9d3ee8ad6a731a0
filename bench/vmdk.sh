#!/usr/bin/env bash
# Side-by-side benchmark of diskray against qemu-img on the same VMDK files, in one run.
#
#   bash bench/vmdk.sh [WORKDIR]      (default WORKDIR: bench/work; needs ~45 GiB free)
#
# 1. convert -O raw of a 4 GiB disk half full of incompressible data, as monolithicSparse
#    and as streamOptimized (qemu-img convert vs diskray convert);
# 2. map of a 2 TiB monolithicSparse disk with 1% of its grains allocated
#    (qemu-img map --output=json vs diskray map --json).
# Each timing is the best of RUNS runs, each from the same state (see best_of); peak RSS
# comes from GNU time. Results print as a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench/work}
RUNS=${RUNS:-3}
mkdir -p "$W"
cargo build --release -q
DR=$PWD/target/release/diskray
command -v qemu-img >/dev/null || { echo "qemu-img is required" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }

# best_of INPUT CMD... : prints "seconds peak_kib" of the fastest run. Before every run:
# the outputs are removed, dirty pages synced, the page cache dropped (when permitted: it
# otherwise fills with the 22 GB map input and every write pays for reclaim), and INPUT read
# once so both tools start from the same warm input and a cold, empty output.
best_of() {
  local input=$1 best="" mem=""
  shift
  for _ in $(seq "$RUNS"); do
    rm -f "$W/out-q.raw" "$W/out-d.raw"
    sync
    echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true
    cat "$input" > /dev/null
    /usr/bin/time -f "%e %M" -o "$W/time.txt" "$@" >/dev/null 2>"$W/stderr.txt" || { cat "$W/stderr.txt" >&2; exit 1; }
    read -r t m < "$W/time.txt"
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; mem=$m; fi
  done
  echo "$best $mem"
}

row() { # label qemu_result diskray_result
  read -r qt qm <<<"$2"; read -r dt dm <<<"$3"
  awk -v l="$1" -v qt="$qt" -v qm="$qm" -v dt="$dt" -v dm="$dm" 'BEGIN{
    r = (dt > 0) ? qt/dt : 0;
    printf "| %s | %.2f s | %.2f s | **%.2f×** | %.0f MiB | %.0f MiB |\n", l, qt, dt, r, qm/1024, dm/1024 }'
}

echo "== preparing 4 GiB half-full source" >&2
if [ ! -f "$W/half.raw" ]; then
  truncate -s 4G "$W/half.raw"
  # 16 runs of 128 MiB of random data, every other 256 MiB: 2 GiB of data.
  for i in $(seq 0 15); do
    head -c 128M /dev/urandom | dd of="$W/half.raw" bs=1M seek=$((i * 256)) conv=notrunc,sparse status=none
  done
fi
for s in monolithicSparse streamOptimized; do
  [ -f "$W/half-$s.vmdk" ] || qemu-img convert -f raw -O vmdk -o subformat=$s "$W/half.raw" "$W/half-$s.vmdk"
done

echo "== preparing 2 TiB monolithicSparse with 1% of grains allocated" >&2
if [ ! -f "$W/big.vmdk" ]; then
  truncate -s 2T "$W/big.raw"
  # One 4 KiB write in every 100th 64 KiB grain: 1% of the grains are allocated.
  python3 - "$W/big.raw" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
block = os.urandom(4096)
grain = 65536
for g in range(0, (2 << 40) // grain, 100):
    os.pwrite(fd, block, g * grain)
os.close(fd)
PY
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/big.raw" "$W/big.vmdk"
  rm -f "$W/big.raw"
fi

echo "== running (best of $RUNS)" >&2
{
  echo "| operation | qemu-img | diskray | speed-up | qemu-img peak RSS | diskray peak RSS |"
  echo "|---|--:|--:|--:|--:|--:|"
  for s in monolithicSparse streamOptimized; do
    q=$(best_of "$W/half-$s.vmdk" qemu-img convert -f vmdk -O raw "$W/half-$s.vmdk" "$W/out-q.raw")
    mv "$W/out-q.raw" "$W/keep-q.raw"
    d=$(best_of "$W/half-$s.vmdk" "$DR" convert "$W/half-$s.vmdk" "$W/out-d.raw")
    cmp "$W/keep-q.raw" "$W/out-d.raw" || { echo "outputs differ for $s" >&2; exit 1; }
    rm -f "$W/keep-q.raw"
    row "convert -O raw, 4 GiB $s (2 GiB data)" "$q" "$d"
  done
  rm -f "$W/out-q.raw" "$W/out-d.raw"
  q=$(best_of /dev/null qemu-img map --output=json "$W/big.vmdk")
  d=$(best_of /dev/null "$DR" map --json "$W/big.vmdk")
  row "map, 2 TiB monolithicSparse, 1% allocated" "$q" "$d"
} | tee "$W/results.md"
echo >&2
echo "machine: $(nproc) cores, $(qemu-img --version | head -1), diskray $(git rev-parse --short HEAD)" | tee -a "$W/results.md"
