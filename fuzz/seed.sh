#!/usr/bin/env bash
# Builds the seed corpora of every fuzz target from the committed fixtures (the corpora
# themselves are not committed). Run from anywhere; then e.g.
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -O guestfs corpus/guestfs -- -max_total_time=240 -max_len=131073
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/descriptor corpus/extent corpus/partitions corpus/guestfs corpus/store corpus/store_crypt corpus/changes \
    corpus/image_probe corpus/lvm corpus/nbd_reply corpus/nbd_server
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
MAX_RECORDS = 1200  # keeps a seed under 600 KiB (the first sectors hold the metadata)
def records(data, keep=None, limit=MAX_RECORDS):
    # Sector records (fuzz/common/sparse.rs): each non-zero 512-byte sector (those `keep`
    # chooses, when given) behind its little-endian u16 sector number.
    out = bytearray()
    for i in range(min(len(data) // 512, 65536)):
        s = data[i * 512:(i + 1) * 512]
        if s.strip(b'\0') and (keep is None or keep(i, data)) and len(out) < limit * 514:
            out += struct.pack('<H', i) + s
    return bytes(out)
# partitions: flags byte (bits 0-1 how the rest becomes a disk: 0 as is, 1 padded,
# 2 sector records; bits 2-3 how it is read: 0 probed with the partitions' content,
# 1 probed without, 2 and 3 at 512 and 4096 bytes), then the real GPT and MBR/EBR tables,
# tables cut short by the end of the image, and 4096-byte-sector MBR disks.
for name in ['gpt-disk.raw', 'mbr-disk.raw']:
    open('corpus/partitions/' + name, 'wb').write(b'\x01' + gz(fx + '/guests/images/' + name + '.gz')[:65536])
ip = fx + '/interop/parts/images/'
for name in ['gpt-short-array.img', 'gpt-short-header.img', 'mbr-short.img']:
    for flags in (0, 4):
        open(f'corpus/partitions/{name}-{flags}', 'wb').write(bytes([flags]) + open(ip + name, 'rb').read())
for name in ['mbr4k.img', 'mbr4k-blank.img']:
    for flags in (2, 6):
        open(f'corpus/partitions/{name}-{flags}', 'wb').write(bytes([flags]) + records(gz(ip + name + '.gz')))
# guestfs: selector 0 = ext from its superblock, 1 = a volume from byte 0 (FAT, XFS, NTFS).
for name in ['ext4-1k', 'ext2']:
    open(f'corpus/guestfs/{name}', 'wb').write(bytes([0]) + gz(f'{fx}/guests/images/{name}.img.gz')[1024:1024 + 16384])
for name in ['fat16', 'xfs']:
    open(f'corpus/guestfs/{name}', 'wb').write(bytes([1]) + gz(f'{fx}/guests/images/{name}.img.gz')[:131072])
for name, p in [('ntfs-guests', '/guests/images/ntfs.img.gz'), ('ntfs-files', '/files/images/ntfs.img.gz')]:
    d = bytearray(gz(fx + p)[:131072])
    struct.pack_into('<Q', d, 0x28, (4 << 20) // 512 - 1)  # fit the 4 MiB fuzz volume
    open(f'corpus/guestfs/{name}', 'wb').write(bytes([1]) + bytes(d))
# guestfs, selector 0x80: sector records over an 8 MiB volume, from the interop images
# of the ext journal, symlinks, htree and deleted names, FAT deleted trees and 8.3 names,
# NTFS orphans and a fragmented $MFT (the boot sector, $UpCase, $AttrDef, FILE records
# and index blocks only: file contents left out), and the ext path-resolution tree (the NTFS one
# is left out: resolving its paths takes seconds an input).
def upcase(sector):
    # A sector of $UpCase (which opening the volume reads): mostly the identity map, each
    # 16-bit value its own index plus the sector's base.
    v = struct.unpack('<256H', sector)
    return sum((x - j) & 0xFFFF == v[0] for j, x in enumerate(v)) >= 64
NTFS_RECORDS = 2000  # the whole fragmented $MFT, $UpCase and the root index: 1 MiB
def mft_sectors(data):
    # The sectors of $MFT, from the mapping pairs of record 0's $DATA (docs/formats.md):
    # a fragmented $MFT has records that straddle its runs.
    spc = data[0x0D] * struct.unpack_from('<H', data, 0x0B)[0] // 512
    rec = struct.unpack_from('<Q', data, 0x30)[0] * spc * 512
    at = rec + struct.unpack_from('<H', data, rec + 0x14)[0]
    while struct.unpack_from('<I', data, at)[0] != 0x80:
        at += struct.unpack_from('<I', data, at + 4)[0]
    mp = at + struct.unpack_from('<H', data, at + 0x20)[0]
    out, lcn = set(), 0
    while data[mp]:
        nl, no = data[mp] & 15, data[mp] >> 4
        length = int.from_bytes(data[mp + 1:mp + 1 + nl], 'little')
        lcn += int.from_bytes(data[mp + 1 + nl:mp + 1 + nl + no], 'little', signed=True)
        out.update(range(lcn * spc, (lcn + length) * spc))
        mp += 1 + nl + no
    return out
def ntfs_meta(data):
    mft = mft_sectors(data)
    def keep(i, data):
        sector = data[i * 512:(i + 1) * 512]
        if i == 0 or i in mft or upcase(sector) or sector.startswith('$STANDARD_INFORMATION'.encode('utf-16-le')):
            return True  # the boot sector, $MFT, $UpCase, $AttrDef
        # The index block (4 KiB, at any 512-byte cluster in these images) it belongs to.
        return any(data[s * 512:s * 512 + 4] == b'INDX' for s in range(max(i - 7, 0), i + 1))
    return keep
ix = fx + '/interop/'
for name, p, keep in [
        ('journal-dirty', 'ext/images/journal-dirty.img.gz', None),
        ('journal-backup-ext3', 'ext/images/journal-backup-ext3.img.gz', None),
        ('symlinks-damaged', 'ext/images/symlinks-damaged.img.gz', None),
        ('times-256', 'ext/images/times-256.img.gz', None),
        ('htree', 'ext-deleted/htree.img.gz', 3200),
        ('zero-inode', 'ext-deleted/zero-inode.img.gz', None),
        ('ext4-paths', 'paths/images/ext4-paths.img.gz', None),
        ('fat-deltree', 'fat/images/deltree.img.gz', None),
        ('fat-nulnames', 'fat/images/nulnames.img.gz', None),
        ('fat-longnames', 'fat/images/longnames.img.gz', None),
        ('fat-bad12', 'fat/images/bad12.img.gz', None),
        ('fat32-4k', 'fat/images/fat32-4k.img.gz', None),
        ('ntfs-orphans', 'ntfs/orphans.img.gz', ntfs_meta),
        ('ntfs-mftfrag', 'ntfs/mftfrag.img.gz', ntfs_meta)]:
    data = gz(ix + p)[:8 << 20]
    if keep is None:
        open(f'corpus/guestfs/{name}', 'wb').write(b'\x80' + records(data))
    elif isinstance(keep, int):  # a larger bound: /big's blocks lie past the journal
        open(f'corpus/guestfs/{name}', 'wb').write(b'\x80' + records(data, None, keep))
    else:
        open(f'corpus/guestfs/{name}', 'wb').write(b'\x80' + records(data, keep(data), NTFS_RECORDS))
# image_probe: the whole file. The foreign formats' own files (their heads, and their
# tails where the magic is a trailer), the cut-short tables, a VMDK descriptor.
for name in ['qcow.qcow', 'e01.E01', 'gpt-short-header.img', 'mbr-short.img']:
    open('corpus/image_probe/' + name, 'wb').write(open(ip + name, 'rb').read()[:16384])
for name in ['qcow2.qcow2', 'vdi.vdi', 'vhdx.vhdx']:
    open('corpus/image_probe/' + name, 'wb').write(gz(ip + name + '.gz')[:4096])
for name in ['vhd-fixed.vhd', 'vhd-dynamic.vhd', 'dmg.dmg']:
    d = gz(ip + name + '.gz')
    open('corpus/image_probe/' + name, 'wb').write(d[:4096] + d[-4096:])
for p in glob.glob(fx + '/vmdk/*/*.vmdk')[:1]:
    open('corpus/image_probe/descriptor.vmdk', 'wb').write(open(p, 'rb').read(4096))
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
# store_crypt: a key object of the smallest parameters (its sum computed as the format
# says: compact JSON with "sha256" empty), and a sealed object of the right shape.
import json
key = {"format": "diskray-key", "version": 1, "id": "0123456789abcdef", "repository": "00" * 16,
       "created": "2026-12-03T00:00:00Z", "host": "h", "username": "u",
       "kdf": {"name": "argon2id", "version": 19, "memory_kib": 1024, "iterations": 1,
               "parallelism": 1, "salt": "11" * 32},
       "aead": "xchacha20poly1305", "nonce": "22" * 24, "wrapped": "33" * 80, "sha256": ""}
key["sha256"] = hashlib.sha256(json.dumps(key, separators=(',', ':')).encode()).hexdigest()
open('corpus/store_crypt/key', 'wb').write(b'\x00' + json.dumps(key, indent=2).encode())
open('corpus/store_crypt/sealed', 'wb').write(b'\x01' + b'DRSEAL01' + bytes(24) + b'sealed' + bytes(16))
# lvm: byte 0 even = a PV (wrapped.img's label and 60 KiB metadata area, whole up to its
# first extent, and damaged.img's first 1 MiB + 16 KiB); odd = metadata text.
open('corpus/lvm/wrapped', 'wb').write(b'\x00' + gz(fx + '/lvm/images/wrapped.img.gz')[:65536])
open('corpus/lvm/damaged', 'wb').write(b'\x00' + gz(fx + '/lvm/images/damaged.img.gz')[:(1 << 20) + 16384])
for p in glob.glob(fx + '/lvm/truth/*.vgcfg.txt'):
    open('corpus/lvm/' + os.path.basename(p), 'wb').write(b'\x01' + open(p, 'rb').read())
# nbd_reply: a correct conversation (the one crates/nbd/tests/hostile.rs replays): the
# handshake with base:allocation, a 4 KiB read answered as a hole and data, block status.
def optrep(opt, kind, payload):
    return struct.pack('>QIII', 0x3e889045565a9, opt, kind, len(payload)) + payload
def chunk(flags, kind, cookie, payload):
    return struct.pack('>IHHQI', 0x668e33ef, flags, kind, cookie, len(payload)) + payload
size = 65536
conv = struct.pack('>QQH', 0x4e42444d41474943, 0x49484156454F5054, 3)
conv += optrep(8, 1, b'')
conv += optrep(10, 4, struct.pack('>I', 1) + b'base:allocation') + optrep(10, 1, b'')
conv += optrep(7, 3, struct.pack('>HQH', 0, size, 131))
conv += optrep(7, 3, struct.pack('>HIII', 3, 1, 4096, 1 << 25)) + optrep(7, 1, b'')
conv += chunk(0, 2, 1, struct.pack('>QI', 0, 1024))
conv += chunk(1, 1, 1, struct.pack('>Q', 1024) + bytes(range(256)) * 12)
conv += chunk(1, 5, 2, struct.pack('>IIIII', 1, 4096, 3, size - 4096, 0))
open('corpus/nbd_reply/conversation', 'wb').write(bytes([1]) + struct.pack('>H', 4096) + conv)
print('seeds written to fuzz/corpus/')
PY

# nbd_server: a client's correct conversation: flags, structured replies, base:allocation,
# NBD_OPT_GO for "disk" with a block size request, a read, a block status, a disconnect.
python3 - <<'PY'
import struct
IHAVEOPT = 0x49484156454F5054
def opt(o, data=b''):
    return struct.pack('>QII', IHAVEOPT, o, len(data)) + data
def req(kind, cookie, off, ln):
    return struct.pack('>IHHQQI', 0x25609513, 0, kind, cookie, off, ln)
name = b'disk'
meta = struct.pack('>I', len(name)) + name + struct.pack('>I', 1) + struct.pack('>I', 15) + b'base:allocation'
go = struct.pack('>I', len(name)) + name + struct.pack('>HH', 1, 3)
conv = struct.pack('>I', 3) + opt(8) + opt(10, meta) + opt(7, go)
conv += req(0, 1, 0, 4096) + req(7, 2, 0, 1 << 20) + req(2, 3, 0, 0)
open('corpus/nbd_server/conversation', 'wb').write(conv)
PY
