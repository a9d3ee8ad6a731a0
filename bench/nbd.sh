#!/usr/bin/env bash
# NBD side by side (issue 12), in one run, with bench/measure.sh's method (alternating
# rounds, page cache emptied and the input read before every run, medians, CPU, RSS):
#
#   bash bench/nbd.sh [WORKDIR]      (default bench/work; SIZE=2G by default, ~3×SIZE free)
#
# 1. qemu-img convert -O raw from `diskray serve` of a backup vs from `qemu-nbd` serving
#    the restored raw image (goal: diskray ≥ 0.8× qemu-nbd's speed; decompression and
#    digest checks included);
# 2. a full backup from an NBD export (qemu-nbd of the disk) vs from the local file
#    (goal ≥ 0.8×);
# 3. an incremental from a QEMU dirty bitmap (qemu-nbd -B) after a 1% change, as a share of
#    the full backup from the same export (goal < 5%).
# The disk: ext4 half full of binaries, text and incompressible files (mkfs.ext4 -d).
# DR=path to a diskray binary (default: build it), RUNS, SIZE.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench/work}
SIZE=${SIZE:-2G}
MD=$W/nbd-$SIZE
mkdir -p "$MD"
MD=$(cd "$MD" && pwd)
. bench/measure.sh
for t in qemu-img qemu-nbd qemu-io mkfs.ext4 openssl python3; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install qemu-utils e2fsprogs openssl)" >&2; exit 1; }
done
if [ -z "${DR:-}" ]; then cargo build --release -q; DR=$PWD/target/release/diskray; fi
DR=$(realpath "$DR")
START=$SECONDS
BYTES=$(numfmt --from=iec "$SIZE")

if [ ! -f "$MD/disk.raw" ]; then
  echo "== building the $SIZE disk" >&2
  T=$MD/tree; rm -rf "$T"; mkdir -p "$T/bin" "$T/rand"
  budget=$((BYTES / 4))
  (find /usr/lib /usr/bin -type f -size +64k 2>/dev/null || true) > "$MD/files.txt"
  total=0
  while read -r f; do
    [ "$total" -gt "$budget" ] && break
    cp "$f" "$T/bin/$(echo "$f" | tr / _)" 2>/dev/null && total=$((total + $(stat -c %s "$f")))
  done < "$MD/files.txt"
  rm -f "$MD/files.txt"
  n=$((BYTES / 4 / (32 << 20)))
  for i in $(seq 1 "$n"); do
    openssl enc -aes-128-ctr -K "$(printf '%032x' "$i")" -iv 0 -nosalt -in /dev/zero 2>/dev/null | head -c 32M > "$T/rand/r$i.bin" || true
  done
  mkfs.ext4 -q -F -b 4096 -d "$T" "$MD/disk.raw" "$SIZE"
  rm -rf "$T"
fi
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
PIDS=()
trap cleanup EXIT INT TERM
serve_qemu() { # SOCKET FILE FORMAT [MORE...]
  local sock=$1 file=$2 fmt=$3; shift 3
  rm -f "$sock"
  qemu-nbd --persistent --read-only --shared=8 -x disk -f "$fmt" "$@" --socket="$sock" "$file" & PIDS+=($!)
  for _ in $(seq 200); do [ -S "$sock" ] && return; sleep 0.05; done
  echo "qemu-nbd did not start" >&2; exit 1
}

echo "== 1. convert -O raw over NBD: diskray serve vs qemu-nbd ($RUNS round(s))" >&2
rm -rf "$MD/repo"
"$DR" backup "$MD/disk.raw" --repo "$MD/repo" --name d > /dev/null
"$DR" restore --repo "$MD/repo" d "$MD/restored.raw"
serve_qemu "$MD/q.sock" "$MD/restored.raw" raw
rm -f "$MD/d.sock"
"$DR" serve --repo "$MD/repo" d --listen "unix:$MD/d.sock" 2>/dev/null & PIDS+=($!)
for _ in $(seq 200); do [ -S "$MD/d.sock" ] && break; sleep 0.05; done
prep_out() { rm -f "$MD/out.raw"; }
def_tool qn_convert "qemu-img convert from qemu-nbd (restored raw)" prep_out "" qemu-img convert -f raw -O raw "nbd+unix:///disk?socket=$MD/q.sock" "$MD/out.raw"
def_tool ds_convert "qemu-img convert from diskray serve" prep_out "" qemu-img convert -f raw -O raw "nbd+unix:///?socket=$MD/d.sock" "$MD/out.raw"
pairs convert qn_convert ds_convert
cmp "$MD/out.raw" "$MD/restored.raw" || { echo "the export differs from the restored image" >&2; exit 1; }
rm -f "$MD/out.raw"

echo "== 2. full backup: from an NBD export vs from the file ($RUNS round(s))" >&2
serve_qemu "$MD/src.sock" "$MD/disk.raw" raw
prep_repo() { rm -rf "$MD/r2"; }
def_tool file_full "diskray backup FILE" prep_repo "$MD/disk.raw" "$DR" backup "$MD/disk.raw" --repo "$MD/r2" --name d
def_tool nbd_full "diskray backup nbd+unix://…" prep_repo "$MD/disk.raw" "$DR" backup "nbd+unix:///disk?socket=$MD/src.sock" --repo "$MD/r2" --name d
pairs full file_full nbd_full

echo "== 3. incremental from a dirty bitmap after a 1% change ($RUNS round(s))" >&2
rm -f "$MD/disk.qcow2"
qemu-img convert -f raw -O qcow2 "$MD/disk.raw" "$MD/disk.qcow2"
rm -rf "$MD/r3"
serve_qemu "$MD/b.sock" "$MD/disk.qcow2" qcow2
"$DR" backup "nbd+unix:///disk?socket=$MD/b.sock" --repo "$MD/r3" --name d > /dev/null
kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
qemu-img bitmap --add -f qcow2 "$MD/disk.qcow2" b0
# 1% of the disk in scattered 64 KiB writes (into whatever the blocks hold).
python3 - "$BYTES" > "$MD/writes.txt" <<'PY'
import random, sys
size = int(sys.argv[1]); r = random.Random(12)
for _ in range(size // 100 // 65536):
    print(f"write -P {r.randrange(1, 255)} {r.randrange(size // 65536) * 65536} 64k")
PY
args=(); while read -r c; do args+=(-c "$c"); done < "$MD/writes.txt"
qemu-io -f qcow2 "${args[@]}" "$MD/disk.qcow2" > /dev/null
serve_qemu "$MD/b.sock" "$MD/disk.qcow2" qcow2 -B b0
cp -a "$MD/r3" "$MD/r3.base"
prep_inc() { rm -rf "$MD/r3"; cp -a "$MD/r3.base" "$MD/r3"; }
prep_full() { rm -rf "$MD/r4"; }
def_tool nbd_full2 "full backup from the export" prep_full "" "$DR" backup "nbd+unix:///disk?socket=$MD/b.sock" --repo "$MD/r4" --name d
def_tool nbd_inc "incremental, --changes nbd-bitmap:b0" prep_inc "" "$DR" backup "nbd+unix:///disk?socket=$MD/b.sock" --repo "$MD/r3" --name d --changes nbd-bitmap:b0 --json
pairs inc nbd_full2 nbd_inc
READ=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['stats']['read_from_source'])" "$MD/nbd_inc.out")
ELAPSED=$((SECONDS - START))

{
  echo "### NBD (bench/nbd.sh, $SIZE ext4 disk)"
  echo
  echo "Method: as bench/measure.sh: $RUNS round(s), alternating; sync, page cache emptied and the input read before every run; medians, times including a trailing sync."
  echo
  echo "**1. qemu-img convert -O raw over NBD**: diskray serve of the backup vs qemu-nbd of the restored raw image"
  echo
  report convert qn_convert qn_convert ds_convert
  echo
  echo "**2. full backup**: from the local file vs from qemu-nbd serving the same file"
  echo
  report full file_full file_full nbd_full
  echo
  echo "**3. incremental from qemu's dirty bitmap** after $(wc -l < "$MD/writes.txt") scattered 64 KiB writes (1% of the disk); read_from_source $((READ / 1048576)) MiB"
  echo
  report inc nbd_full2 nbd_full2 nbd_inc
  echo
  python3 - <<PY
conv = $R_convert_ds_convert; full = $R_full_nbd_full; inc = $M_inc_nbd_inc_ws / $M_inc_nbd_full2_ws * 100
print(f"Goals (issue 12): serve ≥ 0.8× qemu-nbd: {conv:.2f}×; backup from NBD ≥ 0.8× the file: {full:.2f}×; incremental from the bitmap < 5 % of the full: {inc:.1f} %.")
PY
  echo
  echo "Machine: $(nproc) vCPU, qemu $(qemu-img --version | head -1 | awk '{print $3}'); whole run $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
} | tee "$W/nbd-results-$SIZE.md"
