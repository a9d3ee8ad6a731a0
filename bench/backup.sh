#!/usr/bin/env bash
# Side-by-side benchmark of diskray backup / restore against restic and qemu-img, in one run,
# on the same inputs:
#
#   bash bench/backup.sh [WORKDIR]      (default WORKDIR: bench/work; needs ~3 × SIZE free: 25 GiB at 8G)
#
# Input: a SIZE (default 8 GiB) raw disk holding one ext4 filesystem (whole disk, no
# partition table) about half full of mixed data, built offline with `mkfs.ext4 -d`:
# binaries and libraries copied from /usr, text (/usr/share/doc, /usr/include, generated
# logs), seeded incompressible files (AES-CTR keystream), and zero-filled files (which
# `mkfs.ext4 -d` stores as holes). The amounts scale with SIZE (the 8 GiB disk: up to
# 2 GiB of /usr, 16 logs and 48 incompressible files of 32 MiB).
#
# The changed disk is a copy of the first changed by the kernel the way a guest changes its
# disk, through a loop mount: two files deleted, new files created (which may land in the
# freed blocks), logs appended to, and ~44 MiB (per 8 GiB) rewritten in place by scattered
# writes of 64 KiB to 1 MiB at 4 KiB-aligned offsets into several incompressible "database"
# files and logs (pwrite into the existing file, as `dd conv=notrunc` does: ext4 overwrites
# the blocks in place); then unmounted and checked clean with `e2fsck -fn`. The change map
# (VMware QueryChangedDiskAreas JSON) lists the 64 KiB blocks that differ between the two
# images. Building the map is not timed: with CBT the hypervisor hands it over for free.
#
# Compared, each comparison in one block of alternating rounds (see bench/measure.sh:
# RUNS rounds, the order reversed every other round, page cache emptied and the input read
# once before every run; medians, and the median of the per-round ratios):
#   1. full backup: diskray backup (fresh repository) vs restic backup (fresh repository,
#      file mode);
#   2. incremental of the changed disk from the full backup: diskray backup --changes,
#      --changes --no-patch, and without a change map (re-reads what is used) vs restic's
#      second backup (parent snapshot of the same path; restic re-reads the whole file);
#   3. restore of the incremental (synthetic full) image as a sparse raw file: diskray
#      restore, with and without --crc-only, vs `qemu-img convert -f raw -O raw` of the
#      changed disk;
#   4. (CHUNK_SIZES="262144 1048576 4194304" to run it) chunk size: full + incremental.
# The inputs read before a run: the disk for a backup (and the parent's repository for an
# incremental, whose chunks diskray may patch), the repository for diskray restore, the disk
# for qemu-img. Times include a trailing `sync` (restic and diskray fsync their
# repositories; the restored images are flushed by that sync); the command's own time is
# shown too. The restored images are checked against the sources (every block in use by the
# ext4 block bitmap must be equal) and with `e2fsck -fn`, so no row can be fast by being
# wrong. Results print as Markdown and go to WORKDIR/backup-results-SIZE.md; every run is in
# WORKDIR/backup-SIZE/runs.log.
#
# Environment: DR=path to a diskray binary (default: build and copy to WORKDIR/diskray-bin),
# SIZE (disk size, default 8G; e.g. SIZE=1G for a quick check of the script), RUNS (rounds,
# default 3), WARM=0 (leave the input cold), CHUNK_SIZES (see 4), KEEP=1 (keep repositories),
# INPUT_ONLY=1 (build the inputs and stop).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-8G}
SIZE_MIB=$(( $(numfmt --from=iec "$SIZE") >> 20 ))
W=${1:-bench/work}
mkdir -p "$W/backup-$SIZE"
W=$(cd "$W" && pwd)
B=$W/backup-$SIZE
MD=$B
RESULTS=$W/backup-results-$SIZE.md
CHUNK_SIZES=${CHUNK_SIZES:-}
. bench/measure.sh
for t in restic qemu-img mkfs.ext4 dumpe2fs e2fsck losetup openssl python3 jq numfmt; do
  command -v "$t" >/dev/null || { echo "$t is required (apt-get install restic qemu-utils e2fsprogs openssl jq)" >&2; exit 1; }
done
if [ -z "${DR:-}" ]; then
  cargo build --release -q
  cp target/release/diskray "$W/diskray-bin"
  DR=$W/diskray-bin
fi
DR=$(realpath "$DR")
# The tree the binary was built from, read at the start (it may be rebuilt during the run).
DR_ROOT=$(cd "$(dirname "$DR")" && git rev-parse --show-toplevel 2>/dev/null || true)
DR_DESC=${DR_DESC:-$("$DR" --version)${DR_ROOT:+ ($(git -C "$DR_ROOT" rev-parse --short HEAD)$(git -C "$DR_ROOT" diff --quiet HEAD -- . ':!bench' 2>/dev/null || echo ' + uncommitted edits'))}}
export RESTIC_PASSWORD=diskray-bench
RS=(restic --no-cache --quiet)

GIB=$((1 << 30))
DISK=$B/disk.raw
DISK2=$B/disk2.raw
MAP=$B/changes.json
# n X: X scaled from the 8 GiB disk to SIZE (at least 1).
n() { awk -v x="$1" -v s="$SIZE_MIB" 'BEGIN{v = int(x * s / 8192 + 0.5); print (v < 1) ? 1 : v}'; }
START=$SECONDS

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

# copy_some BUDGET_MIB DEST DIR... : copies the regular files and symlinks under the DIRs
# (sorted, whole files) into DEST until BUDGET_MIB are copied.
copy_some() {
  local budget=$1 dest=$2
  shift 2
  python3 - "$budget" "$@" <<'PY' | tar -C / --null -T - -cf - | tar -C "$dest" -xf -
import os, sys
budget, total = int(sys.argv[1]) << 20, 0
for root in sys.argv[2:]:
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            st = os.lstat(p)
            if not (os.path.isfile(p) or os.path.islink(p)) or total >= budget:
                continue
            total += st.st_size if not os.path.islink(p) else 0
            sys.stdout.write(p.lstrip("/") + "\0")
PY
}

NLOG=$(n 16); NRAND=$(n 48); NZERO=$(n 8)
(( NRAND >= 4 )) || NRAND=4
(( NLOG >= 2 )) || NLOG=2
if [ ! -f "$DISK" ]; then
  echo "== building the source tree" >&2
  T=$B/tree
  rm -rf "$T"
  mkdir -p "$T/bin" "$T/text" "$T/text/logs" "$T/rand" "$T/zero"
  # Binaries and libraries (2 GiB per 8 GiB of disk, or what this machine's /usr holds).
  dirs=()
  for d in /usr/bin /usr/sbin /usr/libexec /usr/lib/x86_64-linux-gnu /usr/lib/llvm-* /usr/lib/gcc /usr/lib/jvm; do
    [ -e "$d" ] && dirs+=("$d")
  done
  copy_some "$(n 2048)" "$T/bin" "${dirs[@]}"
  # Text: docs and headers (256 MiB per 8 GiB), logs of 32 MiB.
  dirs=()
  for d in /usr/share/doc /usr/include; do [ -e "$d" ] && dirs+=("$d"); done
  copy_some "$(n 256)" "$T/text" "${dirs[@]}"
  for i in $(seq 0 $((NLOG - 1))); do gen_log "$T/text/logs/log$(printf %02d "$i").txt" $((32 << 20)) "$i" &
    if (( i % 2 == 1 )); then wait; fi
  done
  wait
  # Incompressible: files of 32 MiB.
  for i in $(seq 0 $((NRAND - 1))); do gen_rand "$T/rand/r$(printf %02d "$i").bin" $((32 << 20)) "$i"; done
  # Zero-filled: stored as holes by mkfs.ext4 -d.
  for i in $(seq 0 $((NZERO - 1))); do head -c 32M /dev/zero > "$T/zero/z$i.bin"; done
  echo "   tree: $(du -sh --apparent-size "$T" | cut -f1)" >&2
  echo "== mkfs.ext4 -d ($SIZE raw)" >&2
  rm -f "$DISK.tmp"
  mkfs.ext4 -F -q -L bench -U 6f7c2d0e-1a2b-4c3d-9e8f-0123456789ab -d "$T" "$DISK.tmp" "$SIZE" >&2
  mv "$DISK.tmp" "$DISK"
  rm -rf "$T" "$DISK2" "$MAP"
fi
# bench/crypt.sh needs only the first disk.

LOOP="" MNT=$B/mnt
cleanup_mount() {
  if mountpoint -q "$MNT" 2>/dev/null; then umount "$MNT" || true; fi
  if [ -n "$LOOP" ]; then losetup -d "$LOOP" || true; LOOP=""; fi
}
trap cleanup_mount EXIT
trap 'cleanup_mount; exit 130' INT TERM

if [ ! -f "$DISK2" ]; then
  echo "== changing a copy through a loop mount (delete, create, append, rewrite in place)" >&2
  rm -f "$DISK2.tmp"
  cp --sparse=always "$DISK" "$DISK2.tmp"
  LOOP=$(losetup -f --show "$DISK2.tmp")
  mkdir -p "$MNT"
  # noinit_itable: the kernel would otherwise zero the lazily initialised inode tables in
  # the background, a change no guest makes twice.
  mount -t ext4 -o noinit_itable "$LOOP" "$MNT"
  python3 - "$MNT" "$SIZE_MIB" "$NRAND" "$NLOG" > "$B/change.txt" <<'PY'
import os, random, sys
mnt, size_mib, nrand, nlog = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
scale = size_mib / 8192
r = random.Random(2026)
words = ("GET POST /api/v1/items status=ok latency_ms= user= checkpoint complete wrote buffers "
         "session started deploy cron kernel EXT4-fs mounted request id cache miss hit").split()
def text(n):
    out, t = [], 1_760_100_000.0
    size = 0
    while size < n:
        t += r.random() * 0.05
        line = f"{t:.6f} web{r.randrange(12):02d} app[{r.randrange(40000)}]: " + " ".join(
            r.choice(words) + str(r.randrange(100000)) for _ in range(8)) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]
MiB = 1 << 20
# 1. Delete: the last two incompressible files (64 MiB freed).
deleted = [f"rand/r{nrand - 1:02d}.bin", f"rand/r{nrand - 2:02d}.bin"]
for p in deleted:
    os.unlink(os.path.join(mnt, p))
os.sync()
# 2. Create: a log, a blob, and small files (8 MiB per 8 GiB of disk).
os.makedirs(os.path.join(mnt, "new/small"))
created = 0
with open(os.path.join(mnt, "new/app.log"), "wb") as f:
    f.write(text(int(3 * MiB * scale))); created += f.tell()
with open(os.path.join(mnt, "new/blob.bin"), "wb") as f:
    f.write(r.randbytes(int(3 * MiB * scale))); created += f.tell()
for i in range(max(4, int(64 * scale))):
    with open(os.path.join(mnt, f"new/small/f{i:03d}.txt"), "wb") as f:
        f.write(text(r.randrange(4096, 65536))); created += f.tell()
# 3. Append to every log (4 MiB per 8 GiB in all).
logs = [f"text/logs/log{i:02d}.txt" for i in range(nlog)]
appended = 0
for p in logs:
    with open(os.path.join(mnt, p), "ab") as f:
        f.write(text(int(4 * MiB * scale / nlog))); appended += int(4 * MiB * scale / nlog)
# 4. Rewrite in place (44 MiB per 8 GiB): 3/4 in incompressible "database" files, 1/4 in
# logs, by writes of 64 KiB (70 %), 128-256 KiB (20 %) or 512 KiB-1 MiB (10 %) at random
# 4 KiB-aligned offsets of the existing data (most straddle two 64 KiB blocks of the map).
dbs = [f"rand/r{i:02d}.bin" for i in range(min(10, nrand - 2))]
target, written, writes, touched = int(44 * MiB * scale), 0, 0, set()
while written < target:
    is_db = r.random() < 0.75
    p = r.choice(dbs if is_db else logs)
    x = r.random()
    n = 64 << 10 if x < 0.7 else (r.choice([128, 192, 256]) << 10 if x < 0.9 else r.choice([512, 768, 1024]) << 10)
    path = os.path.join(mnt, p)
    size = 32 * MiB  # every such file held 32 MiB before the appends
    off = r.randrange(0, (size - n) // 4096 + 1) * 4096
    fd = os.open(path, os.O_WRONLY)
    os.pwrite(fd, r.randbytes(n) if is_db else text(n), off)
    os.close(fd)
    written += n; writes += 1; touched.add(p)
os.sync()
print(f"deleted {len(deleted)} files of 32 MiB; created {created / MiB:.1f} MiB "
      f"({2 + max(4, int(64 * scale))} files); appended {appended / MiB:.1f} MiB to {nlog} logs; "
      f"rewrote {written / MiB:.1f} MiB in place in {writes} writes of 64 KiB-1 MiB across {len(touched)} files")
PY
  cleanup_mount
  e2fsck -fn "$DISK2.tmp" >/dev/null || { echo "the changed disk does not check clean" >&2; exit 1; }
  mv "$DISK2.tmp" "$DISK2"
  rm -f "$MAP"
fi
CHANGE=$(cat "$B/change.txt")
echo "   change: $CHANGE" >&2

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
# INPUT_ONLY=1: build the disks and the map for another script (bench/s3.sh), time nothing.
[ "${INPUT_ONLY:-}" = 1 ] && exit 0

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
NEXT=$(jq '.changedArea | length' "$MAP")
gib() { awk -v b="$1" 'BEGIN{printf "%.2f", b/2^30}'; }
mib() { awk -v b="$1" 'BEGIN{printf "%.1f", b/2^20}'; }
kib_mib() { awk -v k="$1" 'BEGIN{printf "%.0f", k/1024}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", 100*a/b}'; }
dusize() { du -s --block-size=1 "$1" | cut -f1; }
stat_of() { jq -r ".stats.$2 // \"n/a\"" "$B/$1.out"; }
echo "   disk: $((CAP / GIB)) GiB, $(gib "$USED") GiB used; changed: $(mib "$CHANGED") MiB in $NEXT extents of 64 KiB blocks" >&2

# ---------------------------------------------------------------------------------------
# Timing (bench/measure.sh)
# ---------------------------------------------------------------------------------------
DRR=$B/dr-repo DRBASE=$B/dr-base RSR=$B/rs-repo RSBASE=$B/rs-base RSRC=$B/rsrc
OUT=$B/out.raw
rm -f "$B/runs.log" "$B/runs.tsv" "$B/medians.sh"
TRASH=$W/trash
discard "$DRR" "$DRBASE" "$RSR" "$RSBASE" "$RSRC" "$OUT" "$B"/cs-*
mkdir -p "$RSRC"

prep_dr_fresh() { discard "$DRR"; }
prep_rs_fresh() { discard "$RSR"; "${RS[@]}" init --repo "$RSR" >/dev/null; ln -f "$DISK" "$RSRC/disk.raw"; }
prep_dr_base() { discard "$DRR"; cp -al "$DRBASE" "$DRR"; }
prep_rs_base() { discard "$RSR"; cp -al "$RSBASE" "$RSR"; ln -f "$DISK2" "$RSRC/disk.raw"; }
prep_out() { rm -f "$OUT"; }

echo "== full backup of disk.raw ($RUNS round(s))" >&2
def_tool dr_full "diskray backup" prep_dr_fresh "$DISK" "$DR" backup "$DISK" --repo "$DRR" --name bench --json
def_tool rs_full "restic backup" prep_rs_fresh "$DISK" "${RS[@]}" backup --repo "$RSR" --host bench --json "$RSRC/disk.raw"
pairs full dr_full rs_full
DF_SIZE=$(dusize "$DRR") DF_ID=$(jq -r .image "$B/dr_full.out")
RF_SIZE=$(dusize "$RSR")
cp "$B/dr_full.out" "$B/dr-full.json"
mv "$DRR" "$DRBASE"
mv "$RSR" "$RSBASE"

echo "== incremental of disk2.raw ($RUNS round(s))" >&2
def_tool dr_inc "diskray backup --changes" prep_dr_base "$DISK2 $DRR" "$DR" backup "$DISK2" --repo "$DRR" --name bench --changes "$MAP" --json
def_tool dr_inc_np "diskray backup --changes --no-patch" prep_dr_base "$DISK2 $DRR" "$DR" backup "$DISK2" --repo "$DRR" --name bench --changes "$MAP" --no-patch --json
def_tool dr_rescan "diskray backup, no change map" prep_dr_base "$DISK2 $DRR" "$DR" backup "$DISK2" --repo "$DRR" --name bench --json
def_tool rs_inc "restic backup (2nd)" prep_rs_base "$DISK2 $RSR" "${RS[@]}" backup --repo "$RSR" --host bench --json "$RSRC/disk.raw"
pairs inc dr_inc dr_inc_np dr_rescan rs_inc
for t in dr_inc dr_inc_np dr_rescan; do
  eval "S_${t}_read=$(stat_of $t read_from_source) S_${t}_parent=$(stat_of $t from_parent) S_${t}_new=$(stat_of $t stored_new)"
done
DI_SRC=$(stat_of dr_inc change_source)
RI_READ=$(jq -r 'select(.message_type=="summary") | .total_bytes_processed' "$B/rs_inc.out" | head -1)
RI_GROW=$(( $(dusize "$RSR") - $(dusize "$RSBASE") ))
RI_PARENT="parent snapshot used"
"${RS[@]}" snapshots --repo "$RSR" --json | jq -e 'length == 2 and (.[1].parent // "") != ""' >/dev/null ||
  { RI_PARENT="NO parent snapshot"; echo "   warning: restic's second snapshot has no parent" >&2; }
RS_VER=$("${RS[@]}" cat config --repo "$RSR" | jq .version)
rm -rf "$RSR" "$RSBASE" "$RSRC"
# The repository the restores read: the full backup and one incremental --changes (untimed).
prep_dr_base
"$DR" backup "$DISK2" --repo "$DRR" --name bench --changes "$MAP" --json > "$B/dr-inc.json"
DI_GROW=$(( $(dusize "$DRR") - $(dusize "$DRBASE") ))

echo "== restore of the incremental image ($RUNS round(s))" >&2
def_tool dr_restore "diskray restore" prep_out "$DRR" "$DR" restore --repo "$DRR" bench "$OUT"
def_tool dr_restore_crc "diskray restore --crc-only" prep_out "$DRR" "$DR" restore --repo "$DRR" --crc-only bench "$OUT"
def_tool qi_restore "qemu-img convert -f raw -O raw" prep_out "$DISK2" qemu-img convert -f raw -O raw "$DISK2" "$OUT"
pairs restore dr_restore dr_restore_crc qi_restore
echo "== checking the restored images" >&2
prep_out
"$DR" restore --repo "$DRR" bench "$OUT"
check_image "$DISK2" "$OUT" || { echo "the restored incremental image is wrong" >&2; exit 1; }
prep_out
"$DR" restore --repo "$DRR" --crc-only "$DF_ID" "$OUT"
check_image "$DISK" "$OUT" || { echo "the restored full image is wrong" >&2; exit 1; }
CHECK="the restored full (--crc-only) and incremental images equal their sources on every block the ext4 block bitmap marks used (metadata and backup superblocks included; free blocks zero or equal), and \`e2fsck -fn\` finds them clean"
echo "   $CHECK" >&2
prep_out

CS_ROWS=""
for cs in $CHUNK_SIZES; do
  echo "== chunk size $cs" >&2
  CR=$B/cs-$cs
  eval "prep_cs_fresh() { discard '$CR'; }; prep_cs_base() { discard '$CR'; cp -al '$CR.base' '$CR'; }"
  def_tool "csf_$cs" "full, $((cs >> 10)) KiB chunks" prep_cs_fresh "$DISK" "$DR" backup "$DISK" --repo "$CR" --name bench --chunk-size "$cs" --json
  pairs "cs$cs" "csf_$cs"
  cf_size=$(dusize "$CR") cf_files=$(find "$CR" -type f | wc -l)
  discard "$CR.base"; mv "$CR" "$CR.base"
  def_tool "csi_$cs" "incremental, $((cs >> 10)) KiB chunks" prep_cs_base "$DISK2 $CR.base" "$DR" backup "$DISK2" --repo "$CR" --name bench --chunk-size "$cs" --changes "$MAP" --json
  pairs "cs$cs" "csi_$cs"
  report "cs$cs" "csf_$cs" "csf_$cs" "csi_$cs" > /dev/null
  ci_grow=$(( $(dusize "$CR") - $(dusize "$CR.base") ))
  v() { local x="M_cs${cs}_$1"; echo "${!x}"; }
  CS_ROWS+="| $((cs >> 10)) KiB | $(v "csf_${cs}_ws") s | $(mib "$cf_size") MiB | $cf_files | $(kib_mib "$(v "csf_${cs}_rss")") MiB | $(v "csi_${cs}_ws") s | $(mib "$(stat_of "csi_$cs" read_from_source)") MiB | $(mib "$(stat_of "csi_$cs" stored_new)") MiB | $(mib "$ci_grow") MiB | $(kib_mib "$(v "csi_${cs}_rss")") MiB |"$'\n'
  discard "$CR" "$CR.base"
done

[ "${KEEP:-0}" = 1 ] || discard "$DRR" "$DRBASE"
empty_trash
ELAPSED=$((SECONDS - START))

# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------
goal() { awk "BEGIN{exit !($1)}" && echo "met" || echo "**missed**"; }
{
  echo "### Backup benchmark (bench/backup.sh)"
  echo
  echo "Input: $((CAP / GIB)) GiB raw disk, whole-disk ext4, $(gib "$USED") GiB used (binaries from /usr, text and logs, incompressible files, zero files as holes)."
  echo "Change, made by the kernel through a loop mount: $CHANGE. The two images differ in $(mib "$CHANGED") MiB of 64 KiB blocks ($NEXT extents, $(awk -v c="$CHANGED" -v d="$CAP" 'BEGIN{printf "%.2f", 100*c/d}')% of the disk); the change map is made by comparing the images (not timed: CBT's is free)."
  echo "Method: $RUNS round(s) per comparison, the tools alternating (order reversed every other round); before every run \`sync\`, \`echo 3 > /proc/sys/vm/drop_caches\`, then $([ "$WARM" = 1 ] && echo "the input read once" || echo "the input left cold"). Time = median wall time including a trailing \`sync\`; ratio = median over the rounds of the reference tool's time ÷ this tool's time in the same round. CPU = user + system seconds (median); peak RSS = the largest of the runs (GNU time). Repositories a run replaces are set aside, not deleted, until the end, and no run starts within 6 minutes of a large delete (ext4 skips recently freed inodes, at a cost to every file a run creates; bench/measure.sh). Every run is in runs.log."
  echo
  echo "**Full backup**"
  echo
  report full rs_full dr_full rs_full
  echo
  echo "diskray: $(awk -v c="$M_full_dr_full_cpu" -v u="$USED" 'BEGIN{printf "%.2f", c/(u/2^30)}') CPU-s per GiB used; repository after the full backup: diskray $(mib "$DF_SIZE") MiB, restic $(mib "$RF_SIZE") MiB."
  echo
  echo "**Incremental after the change** (restic: second backup of the same path, $RI_PARENT; it re-reads the whole file)"
  echo
  report inc rs_inc dr_inc dr_inc_np dr_rescan rs_inc
  echo
  echo "| diskray | read_from_source | from_parent | stored_new |"
  echo "|---|--:|--:|--:|"
  for t in dr_inc dr_inc_np dr_rescan; do
    l="LABEL_$t" a="S_${t}_read" b="S_${t}_parent" c="S_${t}_new"
    echo "| ${!l} | $(mib "${!a}") MiB | $([ "${!b}" = n/a ] && echo n/a || echo "$(mib "${!b}") MiB") | $(mib "${!c}") MiB |"
  done
  echo
  echo "Change source: $DI_SRC. Repository growth: diskray $(mib "$DI_GROW") MiB, restic $(mib "$RI_GROW") MiB; restic read $(mib "${RI_READ:-0}") MiB. Incremental (--changes) ÷ own full: **$(pct "$M_inc_dr_inc_ws" "$M_full_dr_full_ws")%** of the time."
  echo
  echo "**Restore of the incremental image** (a sparse raw file; qemu-img copies the changed source disk)"
  echo
  report restore qi_restore dr_restore dr_restore_crc qi_restore
  echo
  echo "Check: $CHECK."
  if [ -n "$CS_ROWS" ]; then
    echo
    echo "**Chunk size** (medians of $RUNS runs each, times including the trailing sync)"
    echo
    echo "| chunk | full | repo | files | full RSS | incremental | read | stored new | repo growth | incr. RSS |"
    echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    printf '%s' "$CS_ROWS"
  fi
  echo
  echo "**Goals** (issue 14; median ratios, times including sync)"
  echo
  echo "- full backup ≥ 5× restic: $(printf %.2f "$R_full_dr_full")× — $(goal "$R_full_dr_full >= 5")"
  echo "- incremental with the change map ≥ 30× restic's second backup: $(printf %.2f "$R_inc_dr_inc")× — $(goal "$R_inc_dr_inc >= 30") (--no-patch $(printf %.2f "$R_inc_dr_inc_np")×)"
  echo "- incremental < 5 % of our full: $(pct "$M_inc_dr_inc_ws" "$M_full_dr_full_ws")% — $(goal "$M_inc_dr_inc_ws / $M_full_dr_full_ws < 0.05")"
  echo "- incremental reads ≤ (changed ∪ newly used) ∩ used + metadata: read $(mib "$S_dr_inc_read") MiB for $(mib "$CHANGED") MiB changed"
  echo "- restore ≥ 1.5× qemu-img convert: $(printf %.2f "$R_restore_dr_restore")× — $(goal "$R_restore_dr_restore >= 1.5") (--crc-only $(printf %.2f "$R_restore_dr_restore_crc")× — $(goal "$R_restore_dr_restore_crc >= 1.5"))"
  echo
  echo "Machine: $(nproc) vCPU $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB RAM, $(findmnt -no FSTYPE -T "$B") on $(findmnt -no SOURCE -T "$B"). Whole run (inputs already built or not): $((ELAPSED / 60)) min $((ELAPSED % 60)) s."
  echo "Versions: diskray $DR_DESC, $(restic version | cut -d' ' -f1-2) (repository v$RS_VER, compression auto, file mode, --no-cache), $(qemu-img --version | head -1 | cut -d' ' -f1-3), $(mkfs.ext4 -V 2>&1 | head -1)."
  echo "Commands: \`diskray backup DISK --repo R --name bench [--changes changes.json [--no-patch]] --json\`, \`diskray restore --repo R [--crc-only] bench out.raw\`, \`restic backup --repo R --host bench --json DIR/disk.raw\`, \`qemu-img convert -f raw -O raw DISK OUT\`."
} | tee "$RESULTS"
