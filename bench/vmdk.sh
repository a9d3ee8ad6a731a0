#!/usr/bin/env bash
# Side-by-side benchmark of diskray against qemu-img on the same VMDK files, in one run.
#
#   bash bench/vmdk.sh [WORKDIR]      (default WORKDIR: bench/work; needs ~45 GiB free)
#
# 1. convert -O raw of a SIZE (default 4 GiB) disk holding SIZE/2 of incompressible data in
#    scattered 1 MiB runs (half of its 1 MiB slots, picked at random with a fixed seed: runs
#    of one to a few MiB, as a guest's data lies), as monolithicSparse and as
#    streamOptimized (both made by qemu-img): qemu-img convert vs diskray convert, outputs
#    compared byte for byte;
# 2. map of a MAP_SIZE (default 2 TiB) monolithicSparse disk with 1% of its grains allocated
#    (qemu-img map --output=json vs diskray map --json).
# Method (bench/measure.sh): RUNS rounds (default 3) per comparison, the tools alternating
# and the order reversed every other round; before every run the outputs are removed,
# `sync`, the page cache emptied (`echo 3 > /proc/sys/vm/drop_caches`) and, for convert, the
# input read once (WARM=0: left cold), so neither tool pays for reclaiming the other's pages
# while it writes. The map's 22 GB input is not pre-read (both tools read only its
# metadata, cold). Reported per tool: median wall time (with and without a trailing `sync`),
# median CPU-seconds (user + system), largest peak RSS (GNU time), and the median over the
# rounds of qemu-img's time ÷ diskray's (times including the sync). Every run is in
# WORKDIR/vmdk-SIZE/runs.log; the table goes to WORKDIR/vmdk-results-SIZE.md.
#
# Environment: DR=path to a diskray binary (default: build it), SIZE, MAP_SIZE (e.g. SIZE=1G
# MAP_SIZE=64G RUNS=1 for a quick check of the script), RUNS, WARM.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-4G}
MAP_SIZE=${MAP_SIZE:-2T}
SIZE_MIB=$(( $(numfmt --from=iec "$SIZE") >> 20 ))
W=${1:-bench/work}
mkdir -p "$W/vmdk-$SIZE"
W=$(cd "$W" && pwd)
V=$W/vmdk-$SIZE
MD=$V
RESULTS=$W/vmdk-results-$SIZE.md
. bench/measure.sh
for t in qemu-img openssl python3 numfmt; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install qemu-utils openssl)" >&2; exit 1; }
done
if [ -z "${DR:-}" ]; then
  cargo build --release -q
  DR=$PWD/target/release/diskray
fi
DR=$(realpath "$DR")
DR_ROOT=$(cd "$(dirname "$DR")" && git rev-parse --show-toplevel 2>/dev/null || true)
DR_DESC=${DR_DESC:-$("$DR" --version)${DR_ROOT:+ ($(git -C "$DR_ROOT" rev-parse --short HEAD))}}
START=$SECONDS

echo "== preparing the $SIZE source (half of it incompressible data in scattered 1 MiB runs)" >&2
SRC=$V/half.raw
if [ ! -f "$SRC" ]; then
  rm -f "$SRC.tmp" "$V"/half-*.vmdk
  truncate -s "$SIZE" "$SRC.tmp"
  # An AES-256-CTR keystream (incompressible, reproducible) placed in a seeded random half
  # of the 1 MiB slots.
  openssl enc -aes-256-ctr -K "$(printf vmdk-bench | sha256sum | cut -c1-64)" \
      -iv "$(printf vmdk-iv | sha256sum | cut -c1-32)" -nosalt -in /dev/zero 2>/dev/null |
    python3 -c '
import os, random, sys
path, slots = sys.argv[1], int(sys.argv[2])
picked = sorted(random.Random(14).sample(range(slots), slots // 2))
fd = os.open(path, os.O_WRONLY)
src = sys.stdin.buffer
for s in picked:
    os.pwrite(fd, src.read(1 << 20), s << 20)
os.close(fd)
runs = sum(1 for i, s in enumerate(picked) if i == 0 or picked[i - 1] != s - 1)
print(f"{len(picked)} MiB of data in {runs} runs of 1 MiB or more")
' "$SRC.tmp" "$SIZE_MIB" > "$V/layout.txt" || true
  mv "$SRC.tmp" "$SRC"
fi
LAYOUT=$(cat "$V/layout.txt")
echo "   $LAYOUT" >&2
for s in monolithicSparse streamOptimized; do
  [ -f "$V/half-$s.vmdk" ] || qemu-img convert -f raw -O vmdk -o subformat=$s "$SRC" "$V/half-$s.vmdk"
done

echo "== preparing a $MAP_SIZE monolithicSparse with 1% of grains allocated" >&2
BIG=$W/big-$MAP_SIZE.vmdk
if [ ! -f "$BIG" ]; then
  truncate -s "$MAP_SIZE" "$W/big.raw"
  # One 4 KiB write in every 100th 64 KiB grain: 1% of the grains are allocated.
  python3 - "$W/big.raw" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
size = os.fstat(fd).st_size
block = os.urandom(4096)
grain = 65536
for g in range(0, size // grain, 100):
    os.pwrite(fd, block, g * grain)
os.close(fd)
PY
  qemu-img convert -f raw -O vmdk -o subformat=monolithicSparse "$W/big.raw" "$BIG.tmp"
  mv "$BIG.tmp" "$BIG"
  rm -f "$W/big.raw"
fi

rm -f "$V/runs.log" "$V/runs.tsv" "$V/medians.sh"
prep_q() { rm -f "$V/out-q.raw"; }
prep_d() { rm -f "$V/out-d.raw"; }
for s in monolithicSparse streamOptimized; do
  echo "== convert -O raw, $s ($RUNS round(s))" >&2
  def_tool "qi_$s" "qemu-img convert -O raw" prep_q "$V/half-$s.vmdk" qemu-img convert -f vmdk -O raw "$V/half-$s.vmdk" "$V/out-q.raw"
  def_tool "dr_$s" "diskray convert -O raw" prep_d "$V/half-$s.vmdk" "$DR" convert "$V/half-$s.vmdk" "$V/out-d.raw"
  pairs "$s" "qi_$s" "dr_$s"
  cmp "$V/out-q.raw" "$V/out-d.raw" || { echo "outputs differ for $s" >&2; exit 1; }
  cmp "$SRC" "$V/out-d.raw" || { echo "diskray's output differs from the source for $s" >&2; exit 1; }
  rm -f "$V/out-q.raw" "$V/out-d.raw"
done
echo "== map ($RUNS round(s))" >&2
def_tool qi_map "qemu-img map --output=json" "" "" qemu-img map --output=json "$BIG"
def_tool dr_map "diskray map --json" "" "" "$DR" map --json "$BIG"
pairs map qi_map dr_map
ELAPSED=$((SECONDS - START))

{
  echo "### VMDK benchmark (bench/vmdk.sh)"
  echo
  echo "Method: $RUNS round(s) per comparison, the tools alternating (order reversed every other round); before every run \`sync\`, \`echo 3 > /proc/sys/vm/drop_caches\`, then $([ "$WARM" = 1 ] && echo "the convert input read once" || echo "the input left cold") (the map input is never pre-read). Time = median wall time including a trailing \`sync\`; ratio = median over the rounds of qemu-img's time ÷ diskray's in the same round. CPU = user + system seconds (median); peak RSS = the largest of the runs (GNU time)."
  for s in monolithicSparse streamOptimized; do
    echo
    echo "**convert -O raw, $SIZE $s, incompressible data in scattered 1 MiB slots: $LAYOUT** (outputs equal byte for byte)"
    echo
    report "$s" "qi_$s" "qi_$s" "dr_$s"
  done
  echo
  echo "**map, $MAP_SIZE monolithicSparse, 1% of grains allocated** ($(du -h --apparent-size "$BIG" | cut -f1) file)"
  echo
  report map qi_map qi_map dr_map
  echo
  echo "Goals (issue 14): convert ≥ 1.5× qemu-img on both subformats: monolithicSparse $(printf %.2f "$R_monolithicSparse_dr_monolithicSparse")×, streamOptimized $(printf %.2f "$R_streamOptimized_dr_streamOptimized")×; map ≥ 3× (issue 2): $(printf %.2f "$R_map_dr_map")×."
  echo
  echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(findmnt -no FSTYPE -T "$V") on $(findmnt -no SOURCE -T "$V"). $(qemu-img --version | head -1 | cut -d' ' -f1-3), diskray $DR_DESC. Whole run: $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
} | tee "$RESULTS"
