#!/usr/bin/env bash
# Side-by-side benchmark of the space report of a two-disk VM whose volume group holds 20
# logical volumes (issue 11): diskray report against what the LVM and partclone tools
# need for the same answer, pvs + lvs (where the LVs are) plus partclone -D over each
# LV's bytes (which blocks of each filesystem are used), in one run.
#
#   sudo bash bench/lvm.sh [WORKDIR]        (default bench/work; needs ~2 GiB free)
#
# Input (made by the script, as root: loop devices): two 256 GiB sparse disks, each a
# whole-disk PV of VG `vgbench` (made by pvcreate/vgcreate/lvcreate with --driverloaded n,
# as this machine has no device-mapper); 20 linear LVs of 12 GiB, ten on each disk, each
# holding an ext4 made by mke2fs through a loop device on the LV's extents (offset and
# size from lvs), with 64 MiB of files in each (the kernel's view: mke2fs -d).
# Timed, best of RUNS with a warm page cache, the tools alternating run by run: `diskray report --json d0 d1`; `pvs` + `lvs
# --segments` on the two loop devices, then `partclone.extfs -D` on each LV's loop device
# (attached before timing). Results print as Markdown.
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench/work}/lvm
RUNS=${RUNS:-3}
LVS=${LVS:-20}
mkdir -p "$W"
for t in pvcreate vgcreate lvcreate pvs lvs mke2fs partclone.extfs losetup; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install lvm2 e2fsprogs partclone)" >&2; exit 1; }
done
[[ $(id -u) == 0 ]] || { echo "needs root (loop devices)" >&2; exit 2; }
cargo build --release -q
DR=$PWD/target/release/diskray
export LVM_SUPPRESS_FD_WARNINGS=1
LOOPS=()
cleanup() { for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done; }
trap cleanup EXIT
attach() { LOOP=$(losetup -f --show "$@"); LOOPS+=("$LOOP"); }
lvm_() { # CMD ARGS...: only our two loop devices, no backup or archive in /etc
  local cmd=$1
  shift
  "$cmd" --driverloaded n --devices "$D0,$D1" --config 'backup { backup = 0 archive = 0 }' \
    "$@" 2> >(grep -v 'Activation disabled' >&2)
}

secs() { # prints the seconds "$@" takes (nanosecond clock)
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null 2>"$W/stderr.txt" || { cat "$W/stderr.txt" >&2; exit 1; }
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.4f", (b-a)/1e9}'
}
min() { awk -v a="$1" -v b="$2" 'BEGIN{print (a == "" || b < a) ? b : a}'; }

echo "== payload (64 MiB)" >&2
if [ ! -d "$W/payload" ]; then
  mkdir -p "$W/payload"
  for i in $(seq 0 15); do head -c 4M /dev/urandom >"$W/payload/f$i.bin"; done
fi
echo "== two 256 GiB disks, VG vgbench with $LVS LVs of 12 GiB" >&2
rm -f "$W/d0.img" "$W/d1.img"
truncate -s 256G "$W/d0.img" "$W/d1.img"
attach "$W/d0.img"; D0=$LOOP
attach "$W/d1.img"; D1=$LOOP
lvm_ pvcreate -q "$D0" "$D1" >/dev/null
lvm_ vgcreate -q vgbench "$D0" "$D1" >/dev/null
for i in $(seq 1 "$LVS"); do
  pv=$([ $((i % 2)) = 1 ] && echo "$D0" || echo "$D1")
  lvm_ lvcreate -q -an -Zn -L 12G -n "lv$i" vgbench "$pv" >/dev/null
done
EXTENT=$(lvm_ vgs --noheadings --units b --nosuffix -o vg_extent_size vgbench | tr -d ' ')
declare -A PESTART
for d in "$D0" "$D1"; do
  PESTART[$d]=$(lvm_ pvs --noheadings --units b --nosuffix -o pe_start "$d" | tr -d ' ')
done
# Each LV's loop device: its one linear run (pv:first-last extent) from lvs.
LVLOOPS=()
while read -r name ranges; do
  dev=${ranges%%:*}
  pes=${ranges#*:}
  first=${pes%-*}
  last=${pes#*-}
  off=$((PESTART[$dev] + first * EXTENT))
  size=$(((last - first + 1) * EXTENT))
  attach "$dev" -o "$off" --sizelimit "$size"
  mke2fs -q -F -t ext4 -d "$W/payload" "$LOOP"
  LVLOOPS+=("$LOOP")
done < <(lvm_ lvs --noheadings --segments -o lv_name,seg_pe_ranges vgbench)
sync

peer() {
  lvm_ pvs --units b >/dev/null
  lvm_ lvs --segments -o lv_name,seg_pe_ranges,devices vgbench >/dev/null
  for l in "${LVLOOPS[@]}"; do
    partclone.extfs -D -q -s "$l" -O "$W/dom.log" -L "$W/pc.log"
  done
}

echo "== running (best of $RUNS)" >&2
# Check that diskray sees every LV as ext4 before timing it.
n=$("$DR" report --json "$W/d0.img" "$W/d1.img" | grep -c '"filesystem": "ext4"')
[ "$n" = "$LVS" ] || { echo "diskray found $n ext4 LVs of $LVS" >&2; exit 1; }
{
  echo "| report of a 2 × 256 GiB VM, $LVS LVs | diskray | pvs + lvs + partclone -D | ratio |"
  echo "|---|--:|--:|--:|"
  # The tools alternate run by run, so that drifts of this VM hit both alike; best of RUNS.
  d="" p=""
  for _ in $(seq "$RUNS"); do
    d=$(min "$d" "$(secs "$DR" report --json "$W/d0.img" "$W/d1.img")")
    p=$(min "$p" "$(secs peer)")
  done
  awk -v d="$d" -v p="$p" -v n="$LVS" 'BEGIN{printf "| %d ext4 LVs of 12 GiB, 64 MiB of files each | %.3f s | %.3f s | **%.1f×** |\n", n, d, p, p/d}'
} | tee "$W/lvm-results.md"
echo "machine: $(nproc) cores, $(lvm version | head -1 | tr -s ' '), $(partclone.extfs -v 2>&1 | head -1 | tr -d '\n'), diskray $(git rev-parse --short HEAD)" | tee -a "$W/lvm-results.md"
