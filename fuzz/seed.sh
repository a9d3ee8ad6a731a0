#!/usr/bin/env bash
# Builds the seed corpora of every fuzz target from the committed fixtures (the corpora
# themselves are not committed). Run from anywhere; then e.g.
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O guestfs corpus/guestfs -- -max_total_time=240 -max_len=131073
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/descriptor corpus/extent corpus/partitions corpus/guestfs corpus/store corpus/changes
python3 - <<'PY'
import gzip, glob, os, struct
fx = '../fixtures'
# descriptor: every text descriptor among the VMDK fixtures.
for p in glob.glob(fx + '/vmdk/*/*.vmdk') + glob.glob(fx + '/demo/*.vmdk'):
    head = open(p, 'rb').read(4096)
    if b'createType' in head:
        open('corpus/descriptor/' + p.replace('/', '_'), 'wb').write(head)
def gz(p):
    return gzip.open(p).read()
# extent: selector byte + the file from byte 16 on (the target overlays it on a template).
for sel, p in [(0, '/vmdk/monolithicSparse/disk.vmdk.gz'), (1, '/vmdk/streamOptimized/disk.vmdk.gz'),
               (2, '/vmdk/cowd/child-delta.vmdk.gz'), (3, '/vmdk/sesparse/child-sesparse.vmdk.gz')]:
    open(f'corpus/extent/seed{sel}', 'wb').write(bytes([sel]) + gz(fx + p)[16:131072])
# partitions: the real GPT and MBR/EBR tables.
for name in ['gpt-disk.raw', 'mbr-disk.raw']:
    open('corpus/partitions/' + name, 'wb').write(gz(fx + '/guests/images/' + name + '.gz')[:65536])
# guestfs: selector 0 = ext from its superblock, 1 = a volume from byte 0 (FAT, XFS, NTFS).
for name in ['ext4-1k', 'ext2']:
    open(f'corpus/guestfs/{name}', 'wb').write(bytes([0]) + gz(f'{fx}/guests/images/{name}.img.gz')[1024:1024 + 16384])
for name in ['fat16', 'xfs']:
    open(f'corpus/guestfs/{name}', 'wb').write(bytes([1]) + gz(f'{fx}/guests/images/{name}.img.gz')[:131072])
for name, p in [('ntfs-guests', '/guests/images/ntfs.img.gz'), ('ntfs-files', '/files/images/ntfs.img.gz')]:
    d = bytearray(gz(fx + p)[:131072])
    struct.pack_into('<Q', d, 0x28, (4 << 20) // 512 - 1)  # fit the 4 MiB fuzz volume
    open(f'corpus/guestfs/{name}', 'wb').write(bytes([1]) + bytes(d))
# changes: flags byte (bit 0 partial, bit 1 capacity given) + capacity (LE u64) + the file,
# for every change-map fixture (its capacity from truth.json) and a few hand-written shapes.
import json
truth = json.load(open(fx + '/changes/truth.json'))['cases']
for name, case in truth.items():
    head = bytes([2]) + struct.pack('<Q', case['capacity'])
    open('corpus/changes/' + name, 'wb').write(head + open(fx + '/changes/' + name, 'rb').read())
for i, text in enumerate([
        b'{"_typeName":"DiskChangeInfo","startOffset":0,"length":10737418240,"changedArea":[{"_typeName":"DiskChangeExtent","start":0,"length":65536}]}',
        b'{"_typeName":"ArrayOfDiskChangeInfo","_value":[{"_typeName":"DiskChangeInfo","startOffset":0,"length":4096,"changedArea":[]}]}',
        b'[{"startOffset":0,"length":4096,"changedArea":[{"start":0,"length":512}]},{"startOffset":4096,"length":0}]',
        b'{"start_offset":0,"length":4096,"changed_area":[{"start":512,"length":512}]}',
        b'[[0,512],[1024,512]]', b'[{"start":0,"length":512}]', b'# c\noffset,length\n0,512\n1024,512\n']):
    open(f'corpus/changes/hand{i}', 'wb').write(bytes([3]) + struct.pack('<Q', 1 << 40) + text)
# store: selector 0 = a chunk file, 1 = an index, 2 = a kept-ranges file (docs/repository.md).
import hashlib, zlib
plain = bytes(range(256)) * 16
body = struct.pack('<I', len(plain)) + plain
open('corpus/store/chunk', 'wb').write(b'\x00' + b'DRCHRAW1' + struct.pack('<I', zlib.crc32(body)) + body)
cap, cs = 3 * 65536 + 512, 65536
idx = b'DRIDX001' + struct.pack('<QQQ', cap, cs, 4) + bytes(32) + hashlib.sha256(plain).digest() + bytes(96)
open('corpus/store/index', 'wb').write(b'\x01' + idx + hashlib.sha256(idx).digest())
kept = b'DRKEPT01' + struct.pack('<QQQQQ', 2, 0, 4096, 65536, 512)
open('corpus/store/kept', 'wb').write(b'\x02' + kept + hashlib.sha256(kept).digest())
print('seeds written to fuzz/corpus/')
PY
