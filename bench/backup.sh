#!/usr/bin/env bash
# Side-by-side benchmark of diskray backup / restore against restic and qemu-img, in one run,
# on the same inputs:
#
#   bash bench/backup.sh [WORKDIR]      (default WORKDIR: bench/work; needs ~30 GiB free)
#
# Input: an 8 GiB raw disk holding one ext4 filesystem (whole disk, no partition table) about
# half full of mixed data, built offline with `mkfs.ext4 -d` (no mount): binaries and
# libraries copied from /usr, text (/usr/share/doc, /usr/include, generated logs), seeded
# incompressible files (AES-CTR keystream), and zero-filled files (which `mkfs.ext4 -d`
# stores as holes, as `cp --sparse` would). A second disk is the first after a ~1% change
# made with debugfs (new files, deleted files, data rewritten in place), and a change map
# in VMware QueryChangedDiskAreas JSON lists the 64 KiB blocks that differ between the two.
# Building the map is not timed: with CBT the hypervisor hands it over for free.
#
# Timed, each from the same state:
#   1. full backup: diskray backup (fresh repo) vs restic backup (fresh repo, file mode)
#      vs qemu-img convert -O raw / -O qcow2 (a plain copy of the allocated data);
#   2. incremental of the changed disk: diskray backup --changes, diskray backup without a
#      change map (re-reads what is used), and restic's second backup (parent snapshot of the
#      same path; restic re-reads the whole changed file);
#   3. restore of the incremental (synthetic full) image, the tools alternating run by run
#      so that drifts of this VM hit both alike: diskray restore (with and without
#      --sync) vs qemu-img convert -f raw -O raw of the changed disk;
#   4. chunk size: full + incremental with --chunk-size 256 KiB, 1 MiB and 4 MiB.
# Before every run: outputs removed, the repository reset, `sync`, and the page cache dropped
# (cold input, as a backup host reading a datastore sees it; WARM=1 reads the input once
# after the drop instead). Each row is the best of N runs by the time including a trailing
# `sync` (the durable time: restic and diskray fsync their repositories, qemu-img flushes its
# output on close, diskray restore only with --sync); the command's own time is shown too.
# Peak RSS comes from GNU time. The restored images are checked against the
# sources (every block in use by the ext4 block bitmap must be equal) and with `e2fsck -fn`, so
# no row can be fast by being wrong. Results print as Markdown and go to WORKDIR/backup-results.md.
#
# Environment: DR=path to a diskray binary (default: build and copy to WORKDIR/diskray-bin),
# RUNS (short runs, default 3), RUNS_LONG (restic and no-change-map runs, default 2),
# RUNS_CS (chunk-size full backups, default 1), WARM=1, KEEP=1 (keep repositories and outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${1:-bench/work}
B=$W/backup
RUNS=${RUNS:-3}
RUNS_LONG=${RUNS_LONG:-2}
RUNS_CS=${RUNS_CS:-1}
WARM=${WARM:-0}
mkdir -p "$B"
W=$(cd "$W" && pwd)
B=$W/backup
RESULTS=$W/backup-results.md
for t in restic qemu-img mkfs.ext4 debugfs dumpe2fs e2fsck openssl python3 jq; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install restic qemu-utils e2fsprogs openssl jq)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "GNU time is required (apt-get install time)" >&2; exit 1; }
if [ -z "${DR:-}" ]; then
  cargo build --release -q
  cp target/release/diskray "$W/diskray-bin"
  DR=$W/diskray-bin
fi
DR=$(realpath "$DR")
# The tree the binary was built from (at the start: the source may change during the run).
DR_DESC=${DR_DESC:-$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' + uncommitted edits')}
export RESTIC_PASSWORD=diskray-bench
RS=(restic --no-cache --quiet)

GIB=$((1 << 30))
DISK=$B/disk.raw
DISK2=$B/disk2.raw
MAP=$B/changes.json

# ---------------------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------------------
gen_log() { # OUT SIZE SEED: seeded syslog/access-log style text
  python3 - "$@" <<'PY'
import random, sys
path, size, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(seed)
hosts = [f"web{n:02d}" for n in range(12)] + ["db01", "db02", "cache1"]
procs = ["sshd", "nginx", "postgres", "kernel", "systemd", "cron", "app"]
msgs = ["Accepted publickey for deploy from {ip} port {p} ssh2",
        "GET /api/v1/items/{n} HTTP/1.1 200 {p} \"-\" \"curl/7.88\"",
        "checkpoint complete: wrote {n} buffers ({p}.{n}%); 0 WAL file(s) added",
        "EXT4-fs (vda1): mounted filesystem with ordered data mode, {n} inodes",
        "Started Session {n} of user deploy.",
        "({n}) CMD (run-parts /etc/cron.hourly) pid {p}",
        "request id={n} user={p} latency_ms={n} status=ok cache=miss"]
t = 1_760_000_000 + seed * 86400
n = 0
with open(path, "w") as f:
    while n < size:
        lines = []
        for _ in range(1000):
            t += r.random() * 0.05
            m = r.choice(msgs).format(ip=f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}",
                                      p=r.randrange(1, 65536), n=r.randrange(100000))
            lines.append(f"{t:.6f} {r.choice(hosts)} {r.choice(procs)}[{r.randrange(1, 40000)}]: {m}\n")
        s = "".join(lines)
        f.write(s)
        n += len(s)
    f.truncate(size)
PY
}
gen_rand() { # OUT SIZE SEED: incompressible, reproducible (AES-256-CTR keystream)
  local key iv
  key=$(printf 'diskray-bench-%s' "$3" | sha256sum | cut -c1-64)
  iv=$(printf 'iv-%s' "$3" | sha256sum | cut -c1-32)
  openssl enc -aes-256-ctr -K "$key" -iv "$iv" -nosalt -in /dev/zero 2>/dev/null | head -c "$2" > "$1" || true
}

if [ ! -f "$DISK" ]; then
  echo "== building the source tree" >&2
  T=$B/tree
  rm -rf "$T"
  mkdir -p "$T/bin" "$T/text/logs" "$T/rand" "$T/zero"
  # Binaries and libraries (~1.4 GiB): whatever this machine's /usr holds.
  for d in /usr/bin /usr/sbin /usr/libexec /usr/lib/x86_64-linux-gnu /usr/lib/llvm-* /usr/lib/gcc /usr/lib/jvm; do
    [ -e "$d" ] && cp -a "$d" "$T/bin/$(echo "$d" | tr / _)"
  done
  # Text (~0.75 GiB): docs, headers, 16 x 32 MiB of logs.
  cp -a /usr/share/doc "$T/text/doc"
  [ -d /usr/include ] && cp -a /usr/include "$T/text/include"
  for i in $(seq 0 15); do gen_log "$T/text/logs/log$(printf %02d "$i").txt" $((32 << 20)) "$i" & 
    if (( i % 2 == 1 )); then wait; fi
  done
  wait
  # Incompressible (1.5 GiB): 48 x 32 MiB.
  for i in $(seq 0 47); do gen_rand "$T/rand/r$(printf %02d "$i").bin" $((32 << 20)) "$i"; done
  # Zero-filled (256 MiB): stored as holes by mkfs.ext4 -d.
  for i in $(seq 0 7); do head -c 32M /dev/zero > "$T/zero/z$i.bin"; done
  echo "   tree: $(du -sh --apparent-size "$T" | cut -f1)" >&2
  echo "== mkfs.ext4 -d (8 GiB raw)" >&2
  rm -f "$DISK.tmp"
  mkfs.ext4 -F -q -L bench -U 6f7c2d0e-1a2b-4c3d-9e8f-0123456789ab -d "$T" "$DISK.tmp" 8G
  mv "$DISK.tmp" "$DISK"
  rm -rf "$T"
fi

if [ ! -f "$DISK2" ]; then
  echo "== making the ~1% change (debugfs, offline)" >&2
  rm -f "$DISK2.tmp"
  cp --sparse=always "$DISK" "$DISK2.tmp"
  gen_log "$B/new.log" $((32 << 20)) 100
  gen_rand "$B/new.bin" $((32 << 20)) 100
  # New files (64 MiB) and two deleted files (64 MiB freed).
  debugfs -w -f - "$DISK2.tmp" >/dev/null 2>"$B/debugfs.err" <<EOF
mkdir /new
cd /new
write $B/new.log app.log
write $B/new.bin blob.bin
cd /
rm /rand/r46.bin
rm /rand/r47.bin
EOF
  # Data rewritten in place (24 MiB): 16 MiB in the middle of an incompressible file and
  # 8 MiB of a log file, at their physical blocks (what a database or a log rotation does).
  gen_rand "$B/inplace.bin" $((16 << 20)) 101
  gen_log "$B/inplace.log" $((8 << 20)) 102
  for spec in "/rand/r10.bin 2048 $B/inplace.bin" "/text/logs/log03.txt 1024 $B/inplace.log"; do
    set -- $spec
    debugfs -R "blocks $1" "$DISK2.tmp" 2>/dev/null > "$B/blocks.txt"
    python3 - "$DISK2.tmp" "$B/blocks.txt" "$2" "$3" <<'PY'
import os, sys
disk, blocks, first, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
phys = [int(b) for b in open(blocks).read().split()]
data = open(src, "rb").read()
n = len(data) // 4096
assert first + n <= len(phys), "file too short"
fd = os.open(disk, os.O_WRONLY)
for i in range(n):
    os.pwrite(fd, data[i * 4096:(i + 1) * 4096], phys[first + i] * 4096)
os.close(fd)
PY
  done
  rm -f "$B/new.log" "$B/new.bin" "$B/inplace.bin" "$B/inplace.log" "$B/blocks.txt"
  e2fsck -fn "$DISK2.tmp" >/dev/null || { echo "the changed disk does not check clean" >&2; exit 1; }
  mv "$DISK2.tmp" "$DISK2"
  rm -f "$MAP"
fi

if [ ! -f "$MAP" ]; then
  echo "== change map (64 KiB blocks that differ; not timed)" >&2
  python3 - "$DISK" "$DISK2" "$MAP.tmp" <<'PY'
import json, os, sys
a, b, out = sys.argv[1:4]
size = os.path.getsize(a)
assert size == os.path.getsize(b)
fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY)
G, BIG = 65536, 16 << 20
extents = []
def data_ranges(fd):
    r, off = [], 0
    while off < size:
        try:
            s = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        e = os.lseek(fd, s, os.SEEK_HOLE)
        r.append((s, e)); off = e
    return r
# Only ranges that hold data in either file can differ.
ranges = sorted(data_ranges(fa) + data_ranges(fb))
merged = []
for s, e in ranges:
    s, e = s // BIG * BIG, min(size, -(-e // BIG) * BIG)
    if merged and s <= merged[-1][1]:
        merged[-1][1] = max(merged[-1][1], e)
    else:
        merged.append([s, e])
for s, e in merged:
    for off in range(s, e, BIG):
        n = min(BIG, e - off)
        x, y = os.pread(fa, n, off), os.pread(fb, n, off)
        if x == y:
            continue
        for g in range(0, n, G):
            if x[g:g + G] != y[g:g + G]:
                o = off + g
                if extents and extents[-1][0] + extents[-1][1] == o:
                    extents[-1][1] += G
                else:
                    extents.append([o, G])
json.dump({"_typeName": "DiskChangeInfo", "startOffset": 0, "length": size,
           "changedArea": [{"_typeName": "DiskChangeExtent", "start": s, "length": l} for s, l in extents]},
          open(out, "w"))
print(f"   {len(extents)} extents, {sum(l for _, l in extents) / 2**20:.1f} MiB changed", file=sys.stderr)
PY
  mv "$MAP.tmp" "$MAP"
fi

rm -f "$B/disk.ref" "$B/disk2.ref"

# check_image SOURCE RESTORED: every block the source's block bitmap marks used (data and
# metadata, backup superblocks included) must be equal; a free block may be zero or equal
# (diskray stores free space as zeros). Then e2fsck -fn on the restored image.
check_image() {
  dumpe2fs "$1" 2>/dev/null | python3 -c '
import os, re, sys
src, out = sys.argv[1], sys.argv[2]
size = os.path.getsize(src)
assert os.path.getsize(out) == size, "sizes differ"
bs, free = 4096, bytearray(size // 4096)
for line in sys.stdin:
    if line.startswith("Block size:"):
        assert int(line.split(":")[1]) == bs
    m = re.match(r"\s+Free blocks: (.*)", line)
    if m and m.group(1).strip():
        for r in m.group(1).split(","):
            a, _, b = r.strip().partition("-")
            free[int(a):int(b or a) + 1] = b"\x01" * (int(b or a) + 1 - int(a))
fa, fb = os.open(src, os.O_RDONLY), os.open(out, os.O_RDONLY)
BIG, zero = 16 << 20, bytes(4096)
def data(fd):  # 16 MiB pieces holding data (outside them the file is a hole)
    off, r = 0, set()
    while off < size:
        try:
            a = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        off = os.lseek(fd, a, os.SEEK_HOLE)
        r.update(range(a // BIG * BIG, off, BIG))
    return r
bad = freed = 0
for off in sorted(data(fa) | data(fb)):
    x, y = os.pread(fa, BIG, off), os.pread(fb, BIG, off)
    if x == y:
        continue
    for g in range(0, len(x), bs):
        if x[g:g + bs] != y[g:g + bs]:
            if not free[(off + g) // bs]:
                bad += 1
            elif y[g:g + bs] == zero:
                freed += 1
            else:
                bad += 1
if bad:
    sys.exit(f"{out}: {bad} blocks differ from {src}")
print(f"{freed} free blocks zeroed", file=sys.stderr)
' "$1" "$2" && e2fsck -fn "$2" >/dev/null 2>&1
}

used_bytes() { dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Block count/{c=$2} /^Free blocks/{f=$2} /^Block size/{b=$2} END{printf "%.0f", (c-f)*b}'; }
USED=$(used_bytes "$DISK")
USED2=$(used_bytes "$DISK2")
CAP=$(stat -c %s "$DISK")
CHANGED=$(jq '[.changedArea[].length] | add' "$MAP")
echo "   disk: $((CAP / GIB)) GiB, $(awk -v u="$USED" 'BEGIN{printf "%.2f", u/2^30}') GiB used; changed: $(awk -v c="$CHANGED" 'BEGIN{printf "%.1f", c/2^20}') MiB" >&2

# ---------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------
# run NAME N PREP INPUT CMD... : runs CMD N times, each after PREP, sync and a page-cache
# drop (WARM=1: then reads INPUT once). Sets T (command seconds), TS (including a trailing
# sync), M (peak RSS, KiB) and C (CPU seconds, user + system) of the run with the lowest TS; the stdout of the last run is in
# $B/NAME.out. Every run is logged in $B/runs.log.
run() {
  local name=$1 n=$2 prep=$3 input=$4 t0 t1 t2 t ts m us ss
  shift 4
  T="" TS="" M="" C=""
  for i in $(seq "$n"); do
    $prep
    sync
    echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true
    if [ "$WARM" = 1 ] && [ -n "$input" ]; then cat "$input" > /dev/null; fi
    t0=$(date +%s%N)
    /usr/bin/time -f "%U %S %M" -o "$B/time.txt" "$@" > "$B/$name.out" 2> "$B/$name.err" || {
      echo "$name failed:" >&2; cat "$B/$name.err" >&2; exit 1; }
    t1=$(date +%s%N)
    sync
    t2=$(date +%s%N)
    t=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    ts=$(awk -v a="$t0" -v b="$t2" 'BEGIN{printf "%.3f", (b-a)/1e9}')
    read -r us ss m < <(tail -1 "$B/time.txt")
    echo "$name run $i: ${t}s, ${ts}s with sync, user ${us}s sys ${ss}s, ${m} KiB" >> "$B/runs.log"
    echo "   $name run $i: ${t}s (+sync ${ts}s), $((m / 1024)) MiB" >&2
    if [ -z "$TS" ] || awk -v a="$ts" -v b="$TS" 'BEGIN{exit !(a < b)}'; then T=$t TS=$ts M=$m C=$(awk -v u="$us" -v s="$ss" 'BEGIN{printf "%.1f", u+s}'); fi
  done
}
mbs() { awk -v b="$1" -v t="$2" 'BEGIN{printf "%.0f", b/1e6/t}'; }
mib() { awk -v b="$1" 'BEGIN{printf "%.0f", b/2^20}'; }
kib_mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
dusize() { du -s --block-size=1 "$1" | cut -f1; }
stat_of() { jq -r ".stats.$2" "$B/$1.out"; }

DRR=$B/dr-repo DRBASE=$B/dr-base RSR=$B/rs-repo RSBASE=$B/rs-base RSRC=$B/rsrc
OUT=$B/out.raw
rm -f "$B/runs.log"
rm -rf "$DRR" "$DRBASE" "$RSR" "$RSBASE" "$RSRC" "$OUT" "$B/out.qcow2" "$B"/cs-*
mkdir -p "$RSRC"

prep_dr_fresh() { rm -rf "$DRR"; }
prep_rs_fresh() { rm -rf "$RSR"; "${RS[@]}" init --repo "$RSR" >/dev/null; ln -f "$DISK" "$RSRC/disk.raw"; }
prep_out() { rm -f "$OUT" "$B/out.qcow2"; }
prep_dr_base() { rm -rf "$DRR"; cp -al "$DRBASE" "$DRR"; }
prep_rs_base() { rm -rf "$RSR"; cp -al "$RSBASE" "$RSR"; ln -f "$DISK2" "$RSRC/disk.raw"; }

echo "== full backup of disk.raw" >&2
run dr-full "$RUNS" prep_dr_fresh "$DISK" "$DR" backup "$DISK" --repo "$DRR" --name bench --json
DF_T=$T DF_TS=$TS DF_M=$M DF_C=$C DF_SIZE=$(dusize "$DRR") DF_ID=$(jq -r .image "$B/dr-full.out")
cp "$B/dr-full.out" "$B/dr-full.json"
mv "$DRR" "$DRBASE"
run rs-full "$RUNS_LONG" prep_rs_fresh "$DISK" "${RS[@]}" backup --repo "$RSR" --host bench --json "$RSRC/disk.raw"
RF_T=$T RF_TS=$TS RF_M=$M RF_C=$C RF_SIZE=$(dusize "$RSR")
mv "$RSR" "$RSBASE"
run qi-raw "$RUNS" prep_out "$DISK" qemu-img convert -f raw -O raw "$DISK" "$OUT"
QR_T=$T QR_TS=$TS QR_M=$M QR_C=$C QR_SIZE=$(dusize "$OUT")
run qi-qcow2 "$RUNS" prep_out "$DISK" qemu-img convert -f raw -O qcow2 "$DISK" "$B/out.qcow2"
QQ_T=$T QQ_TS=$TS QQ_M=$M QQ_C=$C QQ_SIZE=$(dusize "$B/out.qcow2")
prep_out

echo "== incremental of disk2.raw" >&2
run dr-rescan "$RUNS_LONG" prep_dr_base "$DISK2" "$DR" backup "$DISK2" --repo "$DRR" --name bench --json
DN_T=$T DN_TS=$TS DN_M=$M DN_C=$C DN_READ=$(stat_of dr-rescan read_from_source) DN_NEW=$(stat_of dr-rescan stored_new)
run dr-inc "$RUNS" prep_dr_base "$DISK2" "$DR" backup "$DISK2" --repo "$DRR" --name bench --changes "$MAP" --json
DI_T=$T DI_TS=$TS DI_M=$M DI_C=$C DI_READ=$(stat_of dr-inc read_from_source) DI_NEW=$(stat_of dr-inc stored_new)
DI_SRC=$(stat_of dr-inc change_source) DI_ID=$(jq -r .image "$B/dr-inc.out")
cp "$B/dr-inc.out" "$B/dr-inc.json"
DI_GROW=$(( $(dusize "$DRR") - $(dusize "$DRBASE") ))
run rs-inc "$RUNS_LONG" prep_rs_base "$DISK2" "${RS[@]}" backup --repo "$RSR" --host bench --json "$RSRC/disk.raw"
RI_T=$T RI_TS=$TS RI_M=$M RI_C=$C
RI_READ=$(jq -r 'select(.message_type=="summary") | .total_bytes_processed' "$B/rs-inc.out" | head -1)
RI_GROW=$(( $(dusize "$RSR") - $(dusize "$RSBASE") ))
RI_PARENT="parent snapshot used"
"${RS[@]}" snapshots --repo "$RSR" --json | jq -e 'length == 2 and (.[1].parent // "") != ""' >/dev/null ||
  { RI_PARENT="NO parent snapshot"; echo "   warning: restic's second snapshot has no parent" >&2; }
RS_VER=$("${RS[@]}" cat config --repo "$RSR" | jq .version)
rm -rf "$RSR" "$RSBASE" "$RSRC"

echo "== restore of the incremental image (runs alternate between the tools)" >&2
# keep_best PREFIX: keeps the run just made (T, TS, M, C) as PREFIX_* when it is the best.
keep_best() {
  local cur
  cur=$(eval echo "\${$1_TS:-}")
  if [ -z "$cur" ] || awk -v a="$TS" -v b="$cur" 'BEGIN{exit !(a < b)}'; then
    eval "$1_T=$T $1_TS=$TS $1_M=$M $1_C=$C"
  fi
}
DR_TS="" DRS_TS="" QX_TS=""
for i in $(seq "$RUNS"); do
  run dr-restore 1 prep_out "" "$DR" restore --repo "$DRR" bench "$OUT"
  keep_best DR
  run dr-restore-sync 1 prep_out "" "$DR" restore --repo "$DRR" --sync bench "$OUT"
  keep_best DRS
  run qi-restore 1 prep_out "$DISK2" qemu-img convert -f raw -O raw "$DISK2" "$OUT"
  keep_best QX
done
echo "== checking the restored images" >&2
prep_out
"$DR" restore --repo "$DRR" bench "$OUT"
check_image "$DISK2" "$OUT" || { echo "the restored incremental image is wrong" >&2; exit 1; }
prep_out
"$DR" restore --repo "$DRR" "$DF_ID" "$OUT"
check_image "$DISK" "$OUT" || { echo "the restored full image is wrong" >&2; exit 1; }
CHECK="the restored full and incremental images equal their sources on every block the ext4 block bitmap marks used (metadata and backup superblocks included; free blocks zero or equal), and \`e2fsck -fn\` finds them clean"
echo "   $CHECK" >&2
prep_out

echo "== chunk sizes" >&2
CS_ROWS=""
for cs in 262144 1048576 4194304; do
  CR=$B/cs-$cs
  prep_cs_fresh() { rm -rf "$CR"; }
  prep_cs_base() { rm -rf "$CR"; cp -al "$CR.base" "$CR"; }
  run cs-full-$cs "$RUNS_CS" prep_cs_fresh "$DISK" "$DR" backup "$DISK" --repo "$CR" --name bench --chunk-size "$cs" --json
  cf_ts=$TS cf_m=$M cf_size=$(dusize "$CR") cf_files=$(find "$CR" -type f | wc -l)
  rm -rf "$CR.base"; mv "$CR" "$CR.base"
  run cs-inc-$cs "$RUNS" prep_cs_base "$DISK2" "$DR" backup "$DISK2" --repo "$CR" --name bench --chunk-size "$cs" --changes "$MAP" --json
  ci_ts=$TS ci_m=$M ci_read=$(stat_of "cs-inc-$cs" read_from_source) ci_new=$(stat_of "cs-inc-$cs" stored_new)
  ci_grow=$(( $(dusize "$CR") - $(dusize "$CR.base") ))
  CS_ROWS+="| $((cs >> 10)) KiB | $cf_ts s | $(mib "$cf_size") MiB | $cf_files | $(kib_mib "$cf_m") MiB | $ci_ts s | $(mib "$ci_read") MiB | $(mib "$ci_new") MiB | $(mib "$ci_grow") MiB | $(kib_mib "$ci_m") MiB |"$'\n'
  rm -rf "$CR" "$CR.base"
done

[ "${KEEP:-0}" = 1 ] || rm -rf "$DRR" "$DRBASE"

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------
goal() { awk "BEGIN{exit !($1)}" && echo "met" || echo "**missed**"; }
{
  echo "### Backup benchmark (bench/backup.sh)"
  echo
  echo "Input: $((CAP / GIB)) GiB raw disk, whole-disk ext4, $(awk -v u="$USED" 'BEGIN{printf "%.2f", u/2^30}') GiB used (binaries from /usr, text and logs, 1.5 GiB incompressible, zero files as holes)."
  echo "Change: $(awk -v c="$CHANGED" 'BEGIN{printf "%.1f", c/2^20}') MiB of 64 KiB blocks differ ($(awk -v c="$CHANGED" -v d="$CAP" 'BEGIN{printf "%.2f", 100*c/d}')% of the disk): 64 MiB of new files, 24 MiB rewritten in place, two 32 MiB files deleted; the change map is made by comparing the images (not timed: CBT's is free)."
  echo "Cold page cache before every run ($([ "$WARM" = 1 ] && echo "then the input read once" || echo "input not pre-read")). Time = best of $RUNS ($RUNS_LONG for restic and the no-map incremental) by wall time including a trailing \`sync\`; the command alone in parentheses. MB/s = 10^6 bytes per second of the whole disk / of its used data; CPU = user + system seconds."
  echo
  echo "**Full backup**"
  echo
  echo "| tool | time (cmd alone) | disk MB/s | used MB/s | CPU | peak RSS | output | restic time ÷ this |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|"
  for r in "diskray backup|$DF_T|$DF_TS|$DF_M|$DF_SIZE|$DF_C" "restic backup|$RF_T|$RF_TS|$RF_M|$RF_SIZE|$RF_C" \
           "qemu-img convert -O raw|$QR_T|$QR_TS|$QR_M|$QR_SIZE|$QR_C" "qemu-img convert -O qcow2|$QQ_T|$QQ_TS|$QQ_M|$QQ_SIZE|$QQ_C"; do
    IFS='|' read -r l t ts m s c <<<"$r"
    echo "| $l | $ts s ($t s) | $(mbs "$CAP" "$ts") | $(mbs "$USED" "$ts") | $c s | $(kib_mib "$m") MiB | $(mib "$s") MiB | **$(ratio "$RF_TS" "$ts")×** |"
  done
  echo
  echo "**Incremental after the ~1% change** (restic: second backup of the same path, $RI_PARENT; it re-reads the whole changed file)"
  echo
  echo "| tool | time (cmd alone) | read | stored new | repo growth | CPU | peak RSS | restic time ÷ this | ÷ own full |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|"
  echo "| diskray backup --changes ($DI_SRC) | $DI_TS s ($DI_T s) | $(mib "$DI_READ") MiB | $(mib "$DI_NEW") MiB | $(mib "$DI_GROW") MiB | $DI_C s | $(kib_mib "$DI_M") MiB | **$(ratio "$RI_TS" "$DI_TS")×** | **$(awk -v a="$DI_TS" -v b="$DF_TS" 'BEGIN{printf "%.1f", 100*a/b}')%** |"
  echo "| diskray backup, no change map | $DN_TS s ($DN_T s) | $(mib "$DN_READ") MiB | $(mib "$DN_NEW") MiB | – | $DN_C s | $(kib_mib "$DN_M") MiB | $(ratio "$RI_TS" "$DN_TS")× | $(awk -v a="$DN_TS" -v b="$DF_TS" 'BEGIN{printf "%.0f", 100*a/b}')% |"
  echo "| restic backup (2nd) | $RI_TS s ($RI_T s) | $(mib "$RI_READ") MiB | – | $(mib "$RI_GROW") MiB | $RI_C s | $(kib_mib "$RI_M") MiB | 1.00× | $(awk -v a="$RI_TS" -v b="$RF_TS" 'BEGIN{printf "%.0f", 100*a/b}')% |"
  echo
  echo "**Restore of the incremental image** (a sparse raw file; qemu-img copies the changed source disk)"
  echo
  echo "| tool | time (cmd alone) | disk MB/s | used MB/s | CPU | peak RSS | qemu-img time ÷ this |"
  echo "|---|--:|--:|--:|--:|--:|--:|"
  for r in "diskray restore|$DR_T|$DR_TS|$DR_M|$DR_C" "diskray restore --sync|$DRS_T|$DRS_TS|$DRS_M|$DRS_C" "qemu-img convert -f raw -O raw|$QX_T|$QX_TS|$QX_M|$QX_C"; do
    IFS='|' read -r l t ts m c <<<"$r"
    echo "| $l | $ts s ($t s) | $(mbs "$CAP" "$ts") | $(mbs "$USED2" "$ts") | $c s | $(kib_mib "$m") MiB | **$(ratio "$QX_TS" "$ts")×** |"
  done
  echo
  echo "Check: $CHECK."
  echo
  echo "**Chunk size** (full: best of $RUNS_CS; incremental --changes: best of $RUNS; times include the trailing sync)"
  echo
  echo "| chunk | full | repo | files | full RSS | incremental | read | stored new | repo growth | incr. RSS |"
  echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
  printf '%s' "$CS_ROWS"
  echo
  echo "**Goals** (times including sync)"
  echo
  echo "- full backup ≥ 2× restic's throughput: $(ratio "$RF_TS" "$DF_TS")× — $(goal "$RF_TS / $DF_TS >= 2")"
  echo "- incremental ≥ 20× faster than restic's second run: $(ratio "$RI_TS" "$DI_TS")× — $(goal "$RI_TS / $DI_TS >= 20")"
  echo "- incremental < 5% of our full backup: $(awk -v a="$DI_TS" -v b="$DF_TS" 'BEGIN{printf "%.1f", 100*a/b}')% — $(goal "$DI_TS / $DF_TS < 0.05")"
  echo "- restore no slower than qemu-img convert: $(ratio "$QX_TS" "$DR_TS")× (with --sync $(ratio "$QX_TS" "$DRS_TS")×) — $(goal "$DR_TS <= $QX_TS") ($(goal "$DRS_TS <= $QX_TS") with --sync)"
  echo "- peak memory: diskray full $(kib_mib "$DF_M") MiB, incremental $(kib_mib "$DI_M") MiB, restore $(kib_mib "$DR_M") MiB; restic $(kib_mib "$RF_M") / $(kib_mib "$RI_M") MiB"
  echo
  echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(findmnt -no FSTYPE -T "$B") on $(findmnt -no SOURCE -T "$B")."
  echo "Versions: diskray $DR_DESC, $(restic version | cut -d' ' -f1-2) (repository v$RS_VER, compression auto, file mode, --no-cache), $(qemu-img --version | head -1 | cut -d' ' -f1-3), $(mkfs.ext4 -V 2>&1 | head -1)."
  echo "Commands: \`diskray backup DISK --repo R --name bench [--changes changes.json] --json\`, \`diskray restore --repo R bench out.raw [--sync]\`, \`restic backup --repo R --host bench --json DIR/disk.raw\`, \`qemu-img convert -f raw -O raw|qcow2 DISK OUT\`."
} | tee "$RESULTS"
