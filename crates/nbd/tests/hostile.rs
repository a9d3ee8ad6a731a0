//! A fake NBD server speaking bad replies: every misbehaviour must come back as the typed
//! error that names it, never a panic, a hang or a large allocation; an error the server
//! reports cleanly leaves the connection usable. Also a well-behaved but awkward server
//! (replies out of order, fragmented into holes and data, small maximum block size,
//! minimum block size 512) to check what the client sends and what it assembles.

use diskray_core::VirtualDisk;
use diskray_nbd::proto::*;
use diskray_nbd::{Connection, NbdDisk, NbdError};
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

/// The fake export's size.
const SIZE: u64 = 1 << 20;
/// How long a fake server waits for the client before giving up (so no thread lingers).
const SERVER_WAIT: Duration = Duration::from_secs(10);

/// The fake export's byte at `i`.
fn pattern(i: u64) -> u8 {
    (i % 251) as u8
}

/// How the fake server negotiates.
#[derive(Clone, Copy)]
struct Setup {
    min: u32,
    max: u32,
    flags: u16,
}

const PLAIN: Setup = Setup {
    min: 1,
    max: 32 << 20,
    flags: TFLAG_HAS_FLAGS | TFLAG_READ_ONLY,
};

/// A request the client sent.
#[derive(Debug, Clone, Copy)]
struct Req {
    flags: u16,
    kind: u16,
    cookie: u64,
    offset: u64,
    length: u32,
}

fn be32(s: &mut UnixStream) -> u32 {
    let mut b = [0; 4];
    s.read_exact(&mut b).unwrap();
    u32::from_be_bytes(b)
}

fn be64(s: &mut UnixStream) -> u64 {
    let mut b = [0; 8];
    s.read_exact(&mut b).unwrap();
    u64::from_be_bytes(b)
}

fn option_reply(s: &mut UnixStream, option: u32, kind: u32, payload: &[u8]) {
    let mut m = OPTION_REPLY_MAGIC.to_be_bytes().to_vec();
    m.extend(option.to_be_bytes());
    m.extend(kind.to_be_bytes());
    m.extend((payload.len() as u32).to_be_bytes());
    m.extend(payload);
    s.write_all(&m).unwrap();
}

/// The server's side of a good handshake.
fn handshake(s: &mut UnixStream, setup: Setup) {
    let mut hello = NBDMAGIC.to_be_bytes().to_vec();
    hello.extend(IHAVEOPT.to_be_bytes());
    hello.extend((FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    s.write_all(&hello).unwrap();
    be32(s);
    loop {
        assert_eq!(be64(s), IHAVEOPT);
        let option = be32(s);
        let mut data = vec![0; be32(s) as usize];
        s.read_exact(&mut data).unwrap();
        match option {
            OPT_STRUCTURED_REPLY => option_reply(s, option, REP_ACK, &[]),
            OPT_SET_META_CONTEXT => {
                let mut p = 1u32.to_be_bytes().to_vec();
                p.extend(BASE_ALLOCATION.as_bytes());
                option_reply(s, option, REP_META_CONTEXT, &p);
                option_reply(s, option, REP_ACK, &[]);
            }
            OPT_GO => {
                let mut p = INFO_EXPORT.to_be_bytes().to_vec();
                p.extend(SIZE.to_be_bytes());
                p.extend(setup.flags.to_be_bytes());
                option_reply(s, option, REP_INFO, &p);
                let mut p = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
                p.extend(setup.min.to_be_bytes());
                p.extend(4096u32.max(setup.min).to_be_bytes());
                p.extend(setup.max.to_be_bytes());
                option_reply(s, option, REP_INFO, &p);
                option_reply(s, option, REP_ACK, &[]);
                return;
            }
            other => panic!("unexpected option {other}"),
        }
    }
}

/// Reads one request, or `None` when the client disconnected (`NBD_CMD_DISC` or EOF).
fn request(s: &mut UnixStream) -> Option<Req> {
    let mut b = [0; 28];
    s.read_exact(&mut b).ok()?;
    assert_eq!(
        u32::from_be_bytes(b[0..4].try_into().unwrap()),
        REQUEST_MAGIC
    );
    let r = Req {
        flags: u16::from_be_bytes([b[4], b[5]]),
        kind: u16::from_be_bytes([b[6], b[7]]),
        cookie: u64::from_be_bytes(b[8..16].try_into().unwrap()),
        offset: u64::from_be_bytes(b[16..24].try_into().unwrap()),
        length: u32::from_be_bytes(b[24..28].try_into().unwrap()),
    };
    (r.kind != CMD_DISC).then_some(r)
}

/// A structured reply chunk.
fn chunk(flags: u16, kind: u16, cookie: u64, payload: &[u8]) -> Vec<u8> {
    chunk_claiming(flags, kind, cookie, payload.len() as u32, payload)
}

/// A chunk whose header claims `length` bytes of payload whatever follows.
fn chunk_claiming(flags: u16, kind: u16, cookie: u64, length: u32, payload: &[u8]) -> Vec<u8> {
    let mut m = STRUCTURED_REPLY_MAGIC.to_be_bytes().to_vec();
    m.extend(flags.to_be_bytes());
    m.extend(kind.to_be_bytes());
    m.extend(cookie.to_be_bytes());
    m.extend(length.to_be_bytes());
    m.extend(payload);
    m
}

/// An `NBD_REPLY_TYPE_OFFSET_DATA` payload with the pattern's bytes.
fn data(offset: u64, len: u64) -> Vec<u8> {
    let mut p = offset.to_be_bytes().to_vec();
    p.extend((offset..offset + len).map(pattern));
    p
}

/// The correct whole reply to a read.
fn good_read(r: &Req) -> Vec<u8> {
    chunk(
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_DATA,
        r.cookie,
        &data(r.offset, r.length.into()),
    )
}

/// Serves one client with `script` after the handshake; returns the socket's URI and the
/// directory that holds it (removed when dropped).
fn serve(
    setup: Setup,
    script: impl FnOnce(&mut UnixStream) + Send + 'static,
) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("nbd.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(SERVER_WAIT)).unwrap();
        handshake(&mut s, setup);
        script(&mut s);
        // Linger until the client hangs up, so it sees what was sent before the close.
        let _ = s.read(&mut [0; 64]);
    });
    (format!("nbd+unix:///?socket={}", path.display()), dir)
}

/// A connection to `uri` with a short read timeout.
fn connect(uri: &str) -> Result<Connection, NbdError> {
    let path = uri.split_once("socket=").unwrap().1;
    let s = UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    Connection::handshake(Box::new(s), "", &[BASE_ALLOCATION])
}

/// Reads 4 KiB at 0 through a fresh connection to a server running `script`.
fn read_with(
    script: impl FnOnce(&mut UnixStream) + Send + 'static,
) -> (Result<(), NbdError>, Connection) {
    let (uri, _dir) = serve(PLAIN, script);
    let mut c = connect(&uri).unwrap();
    let mut buf = vec![0; 4096];
    (c.read(&mut buf, 0), c)
}

#[test]
fn oversized_lengths_are_refused_without_allocating() {
    // A data chunk claiming 4 GiB for a 4 KiB read.
    let (e, mut c) = read_with(|s| {
        let r = request(s).unwrap();
        s.write_all(&chunk_claiming(
            REPLY_FLAG_DONE,
            REPLY_TYPE_OFFSET_DATA,
            r.cookie,
            u32::MAX,
            &0u64.to_be_bytes(),
        ))
        .unwrap();
    });
    assert!(
        matches!(e, Err(NbdError::Protocol { ref reason, .. }) if reason.contains("outside the request")),
        "{e:?}"
    );
    // The connection is not used again.
    assert!(matches!(
        c.read(&mut [0; 1], 0),
        Err(NbdError::Broken { .. })
    ));

    // An error chunk claiming 4 GiB of message.
    let (e, _) = read_with(|s| {
        let r = request(s).unwrap();
        s.write_all(&chunk_claiming(
            REPLY_FLAG_DONE,
            REPLY_TYPE_ERROR,
            r.cookie,
            u32::MAX,
            &[],
        ))
        .unwrap();
    });
    assert!(
        matches!(
            e,
            Err(NbdError::TooLong {
                length: 0xffff_ffff,
                ..
            })
        ),
        "{e:?}"
    );

    // A block status chunk past its bound.
    let (uri, _dir) = serve(PLAIN, |s| {
        let r = request(s).unwrap();
        let claim = diskray_nbd::limits::MAX_BLOCK_STATUS_PAYLOAD + 4;
        s.write_all(&chunk_claiming(
            REPLY_FLAG_DONE,
            REPLY_TYPE_BLOCK_STATUS,
            r.cookie,
            claim,
            &[],
        ))
        .unwrap();
    });
    let e = connect(&uri)
        .unwrap()
        .block_status(BASE_ALLOCATION, 0, 4096);
    assert!(
        matches!(
            e,
            Err(NbdError::TooLong {
                what: "block status chunk",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn oversized_option_reply_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(SERVER_WAIT)).unwrap();
        let mut hello = NBDMAGIC.to_be_bytes().to_vec();
        hello.extend(IHAVEOPT.to_be_bytes());
        hello.extend(FLAG_FIXED_NEWSTYLE.to_be_bytes());
        s.write_all(&hello).unwrap();
        // The client's flags and its first option (structured replies, no data).
        s.read_exact(&mut [0; 4 + 16]).unwrap();
        let mut m = OPTION_REPLY_MAGIC.to_be_bytes().to_vec();
        m.extend(OPT_STRUCTURED_REPLY.to_be_bytes());
        m.extend(REP_ACK.to_be_bytes());
        m.extend(u32::MAX.to_be_bytes());
        s.write_all(&m).unwrap();
        let _ = s.read(&mut [0; 64]);
    });
    let e = Connection::handshake(Box::new(UnixStream::connect(&path).unwrap()), "", &[]);
    assert!(
        matches!(
            e,
            Err(NbdError::TooLong {
                what: "option reply",
                ..
            })
        ),
        "{e:?}"
    );
}

#[test]
fn wrong_cookie_is_refused() {
    let (e, _) = read_with(|s| {
        let r = request(s).unwrap();
        let mut bad = r;
        bad.cookie ^= 0xdead;
        s.write_all(&good_read(&bad)).unwrap();
    });
    assert!(matches!(e, Err(NbdError::UnknownCookie { .. })), "{e:?}");
}

#[test]
fn closed_mid_reply_is_closed() {
    let (e, _) = read_with(|s| {
        let r = request(s).unwrap();
        let whole = good_read(&r);
        s.write_all(&whole[..whole.len() / 2]).unwrap();
        s.shutdown(std::net::Shutdown::Both).unwrap();
    });
    assert!(matches!(e, Err(NbdError::Closed { .. })), "{e:?}");
    assert!(e.unwrap_err().to_string().contains("closed the connection"));
}

#[test]
fn reply_missing_part_of_the_read_is_refused() {
    let (e, _) = read_with(|s| {
        let r = request(s).unwrap();
        s.write_all(&chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_OFFSET_DATA,
            r.cookie,
            &data(0, 100),
        ))
        .unwrap();
    });
    assert!(
        matches!(e, Err(NbdError::Protocol { ref reason, .. }) if reason.contains("after 100 of 4096")),
        "{e:?}"
    );
}

#[test]
fn overlapping_chunks_are_refused() {
    let (e, _) = read_with(|s| {
        let r = request(s).unwrap();
        s.write_all(&chunk(0, REPLY_TYPE_OFFSET_DATA, r.cookie, &data(0, 2048)))
            .unwrap();
        s.write_all(&chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_OFFSET_DATA,
            r.cookie,
            &data(1024, 3072),
        ))
        .unwrap();
    });
    assert!(
        matches!(e, Err(NbdError::Protocol { ref reason, .. }) if reason.contains("overlap")),
        "{e:?}"
    );
}

#[test]
fn server_errors_are_typed_and_leave_the_connection_usable() {
    let (uri, _dir) = serve(PLAIN, |s| {
        // A structured error with a message, then a good reply to the next read.
        let r = request(s).unwrap();
        let mut p = 5u32.to_be_bytes().to_vec();
        p.extend(4u16.to_be_bytes());
        p.extend(b"bad!");
        s.write_all(&chunk(REPLY_FLAG_DONE, REPLY_TYPE_ERROR, r.cookie, &p))
            .unwrap();
        // A simple error reply (allowed for errors), then an error at an offset.
        let r = request(s).unwrap();
        let mut m = SIMPLE_REPLY_MAGIC.to_be_bytes().to_vec();
        m.extend(22u32.to_be_bytes());
        m.extend(r.cookie.to_be_bytes());
        s.write_all(&m).unwrap();
        let r = request(s).unwrap();
        let mut p = 1u32.to_be_bytes().to_vec();
        p.extend(0u16.to_be_bytes());
        p.extend((r.offset + 7).to_be_bytes());
        s.write_all(&chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_ERROR_OFFSET,
            r.cookie,
            &p,
        ))
        .unwrap();
        let r = request(s).unwrap();
        s.write_all(&good_read(&r)).unwrap();
    });
    let mut c = connect(&uri).unwrap();
    let mut buf = vec![0; 4096];
    let e = c.read(&mut buf, 0).unwrap_err();
    assert!(
        matches!(e, NbdError::Server { error: 5, ref message, .. } if message == "bad!"),
        "{e:?}"
    );
    assert!(e.to_string().contains("EIO"), "{e}");
    let e = c.read(&mut buf, 0).unwrap_err();
    assert!(matches!(e, NbdError::Server { error: 22, .. }), "{e:?}");
    let e = c.read(&mut buf, 8192).unwrap_err();
    assert!(
        matches!(
            e,
            NbdError::Server {
                error: 1,
                offset: 8199,
                ..
            }
        ),
        "{e:?}"
    );
    c.read(&mut buf, 4096).unwrap();
    assert!(buf
        .iter()
        .enumerate()
        .all(|(i, b)| *b == pattern(4096 + i as u64)));
}

#[test]
fn bad_block_status_replies_are_refused() {
    type Script = fn(&mut UnixStream, Req);
    let cases: [(Script, &str); 4] = [
        (
            |s, r| {
                // An extent of 0 bytes.
                let mut p = 1u32.to_be_bytes().to_vec();
                p.extend([0u8; 8]);
                s.write_all(&chunk(
                    REPLY_FLAG_DONE,
                    REPLY_TYPE_BLOCK_STATUS,
                    r.cookie,
                    &p,
                ))
                .unwrap();
            },
            "0 bytes",
        ),
        (
            |s, r| {
                s.write_all(&chunk(REPLY_FLAG_DONE, REPLY_TYPE_NONE, r.cookie, &[]))
                    .unwrap()
            },
            "without extents",
        ),
        (
            |s, r| {
                // A context id that was never negotiated.
                let mut p = 9u32.to_be_bytes().to_vec();
                p.extend(4096u32.to_be_bytes());
                p.extend(0u32.to_be_bytes());
                s.write_all(&chunk(
                    REPLY_FLAG_DONE,
                    REPLY_TYPE_BLOCK_STATUS,
                    r.cookie,
                    &p,
                ))
                .unwrap();
            },
            "not negotiated",
        ),
        (
            |s, r| {
                s.write_all(&chunk(
                    REPLY_FLAG_DONE,
                    REPLY_TYPE_OFFSET_DATA,
                    r.cookie,
                    &data(0, 8),
                ))
                .unwrap()
            },
            "not an answer",
        ),
    ];
    for (script, want) in cases {
        let (uri, _dir) = serve(PLAIN, move |s| {
            let r = request(s).unwrap();
            script(s, r)
        });
        let e = connect(&uri)
            .unwrap()
            .block_status(BASE_ALLOCATION, 0, 4096);
        assert!(
            matches!(e, Err(NbdError::Protocol { ref reason, .. }) if reason.contains(want)),
            "{want}: {e:?}"
        );
    }
    let (uri, _dir) = serve(PLAIN, |_| {});
    let e = connect(&uri)
        .unwrap()
        .block_status("qemu:dirty-bitmap:b0", 0, 4096);
    assert!(matches!(e, Err(NbdError::NoContext { .. })), "{e:?}");
}

#[test]
fn bad_greetings_and_refusals_are_typed() {
    let greet = |bytes: Vec<u8>| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&bytes).unwrap();
        });
        Connection::handshake(Box::new(UnixStream::connect(&path).unwrap()), "", &[]).unwrap_err()
    };
    let e = greet(b"HTTP/1.1 400 Bad\r\n\r\n".to_vec());
    assert!(
        matches!(
            e,
            NbdError::BadMagic {
                expected: NBDMAGIC,
                ..
            }
        ),
        "{e:?}"
    );
    let mut old = NBDMAGIC.to_be_bytes().to_vec();
    old.extend(OLDSTYLE_MAGIC.to_be_bytes());
    assert!(matches!(greet(old), NbdError::NotFixedNewstyle { .. }));
    let mut plain = NBDMAGIC.to_be_bytes().to_vec();
    plain.extend(IHAVEOPT.to_be_bytes());
    plain.extend(0u16.to_be_bytes());
    assert!(matches!(greet(plain), NbdError::NotFixedNewstyle { .. }));
    assert!(matches!(
        greet(NBDMAGIC.to_be_bytes()[..5].to_vec()),
        NbdError::Closed { .. }
    ));

    // No such export: NBD_REP_ERR_UNKNOWN to NBD_OPT_GO.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(SERVER_WAIT)).unwrap();
        let mut hello = NBDMAGIC.to_be_bytes().to_vec();
        hello.extend(IHAVEOPT.to_be_bytes());
        hello.extend(FLAG_FIXED_NEWSTYLE.to_be_bytes());
        s.write_all(&hello).unwrap();
        be32(&mut s);
        for _ in 0..2 {
            be64(&mut s);
            let option = be32(&mut s);
            let mut data = vec![0; be32(&mut s) as usize];
            s.read_exact(&mut data).unwrap();
            let (kind, msg): (u32, &[u8]) = match option {
                OPT_GO => (REP_FLAG_ERROR | 6, b"no export 'x'"),
                _ => (REP_FLAG_ERROR | 1, b""),
            };
            option_reply(&mut s, option, kind, msg);
        }
    });
    let e =
        Connection::handshake(Box::new(UnixStream::connect(&path).unwrap()), "x", &[]).unwrap_err();
    assert!(
        matches!(
            e,
            NbdError::OptionRefused {
                option: "NBD_OPT_GO",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("no such export") && e.to_string().contains("no export 'x'"),
        "{e}"
    );
}

#[test]
fn bad_block_sizes_are_refused() {
    let (uri, _dir) = serve(Setup { min: 3, ..PLAIN }, |_| {});
    let e = connect(&uri).unwrap_err();
    assert!(
        matches!(e, NbdError::Protocol { ref during, .. } if during == "NBD_INFO_BLOCK_SIZE"),
        "{e:?}"
    );
}

#[test]
fn a_silent_server_times_out() {
    let (e, _) = read_with(|s| {
        request(s);
        std::thread::sleep(Duration::from_secs(3));
    });
    assert!(matches!(e, Err(NbdError::Timeout { .. })), "{e:?}");
}

/// An awkward but correct server: maximum block 64 KiB, minimum 512; of each pair of reads
/// in flight the second is answered first, and the first as data, a hole, then data.
#[test]
fn pipelined_fragmented_out_of_order_replies_assemble() {
    let setup = Setup {
        min: 512,
        max: 64 * 1024,
        flags: TFLAG_HAS_FLAGS | TFLAG_READ_ONLY,
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let (uri, _dir) = serve(setup, move |s| {
        let (mut seen, mut holes) = (Vec::new(), Vec::new());
        while let Some(a) = request(s) {
            seen.push(a);
            // A second request when one is already in flight (the client sends a guest
            // read's requests in one batch), else `a` alone.
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let b = request(s);
            s.set_read_timeout(Some(SERVER_WAIT)).unwrap();
            if let Some(b) = b {
                seen.push(b);
                s.write_all(&good_read(&b)).unwrap();
            }
            let (o, n) = (a.offset, u64::from(a.length));
            let hl = (n / 2).min(1024);
            holes.push((o, o + hl));
            let mut hole = o.to_be_bytes().to_vec();
            hole.extend((hl as u32).to_be_bytes());
            let mid = o + hl + (n - hl) / 2;
            let tail = chunk(0, REPLY_TYPE_OFFSET_DATA, a.cookie, &data(mid, o + n - mid));
            s.write_all(&tail).unwrap();
            s.write_all(&chunk(0, REPLY_TYPE_OFFSET_HOLE, a.cookie, &hole))
                .unwrap();
            let first = data(o + hl, mid - o - hl);
            s.write_all(&chunk(
                REPLY_FLAG_DONE,
                REPLY_TYPE_OFFSET_DATA,
                a.cookie,
                &first,
            ))
            .unwrap();
        }
        tx.send((seen, holes)).unwrap();
    });
    let disk = NbdDisk::open_typed(&uri, &[]).unwrap();
    // Unaligned: 750 KiB + 100 bytes at byte 3000: a head block, 12 requests for the
    // aligned middle, a tail block.
    let (offset, len) = (3000u64, 750 * 1024 + 100);
    let mut buf = vec![0xAA; len];
    disk.read_at(&mut buf, offset).unwrap();
    drop(disk);
    let (seen, holes) = rx.recv_timeout(SERVER_WAIT).unwrap();
    for r in &seen {
        assert_eq!(r.kind, CMD_READ);
        assert_eq!(r.flags, 0, "no DF: the server did not advertise it");
        assert!(
            r.offset % 512 == 0 && r.length % 512 == 0,
            "{r:?} not aligned"
        );
        assert!(r.length <= 64 * 1024, "{r:?} over the maximum");
    }
    assert_eq!(seen.len(), 14);
    let covered: u64 = seen.iter().map(|r| u64::from(r.length)).sum();
    assert_eq!(
        covered,
        (offset + len as u64).div_ceil(512) * 512 - offset / 512 * 512
    );
    // Expected: the pattern, with zeros where a hole stood.
    for (i, b) in buf.iter().enumerate() {
        let at = offset + i as u64;
        let want = if holes.iter().any(|&(s, e)| at >= s && at < e) {
            0
        } else {
            pattern(at)
        };
        assert_eq!(*b, want, "byte {at}");
    }
}

/// Through `NbdDisk`, a misbehaving server is a `diskray_core::Error` naming the URI and
/// the offset, with the typed error inside.
#[test]
fn disk_errors_name_the_uri_and_offset() {
    let (uri, _dir) = serve(PLAIN, |s| {
        let r = request(s).unwrap();
        s.write_all(&chunk(REPLY_FLAG_DONE, 77, r.cookie, &[]))
            .unwrap();
    });
    let disk = NbdDisk::open(&uri, &[]).unwrap();
    let e = disk.read_at(&mut [0; 512], 4096).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with(&uri) && msg.contains("at byte 4096"),
        "{msg}"
    );
    let diskray_core::Error::Io { source, .. } = &e else {
        panic!("{e:?}")
    };
    let inner = source.get_ref().and_then(|e| e.downcast_ref::<NbdError>());
    assert!(
        matches!(inner, Some(NbdError::Protocol { .. })),
        "{inner:?}"
    );
    let past = disk.read_at(&mut [0; 512], SIZE - 100).unwrap_err();
    assert!(
        matches!(past, diskray_core::Error::OutOfRange { .. }),
        "{past:?}"
    );
    let tls = NbdDisk::open("nbds://localhost/x", &[]).unwrap_err();
    assert!(tls.to_string().contains("tls-certificates=DIR"), "{tls}");
}

/// `base:allocation` flags become map states: a hole is unallocated, zeros without a hole
/// are `zero`, the rest data; an extent running past the request is cut.
#[test]
fn allocation_flags_become_map_states() {
    let (uri, _dir) = serve(PLAIN, |s| {
        let r = request(s).unwrap();
        assert_eq!(
            (r.kind, r.offset, u64::from(r.length)),
            (CMD_BLOCK_STATUS, 0, SIZE)
        );
        let mut p = 1u32.to_be_bytes().to_vec();
        for (len, flags) in [
            (4096u32, STATE_HOLE | STATE_ZERO),
            (8192, STATE_ZERO),
            (4096, 0),
        ] {
            p.extend(len.to_be_bytes());
            p.extend(flags.to_be_bytes());
        }
        p.extend((SIZE as u32).to_be_bytes());
        p.extend(STATE_HOLE.to_be_bytes());
        s.write_all(&chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_BLOCK_STATUS,
            r.cookie,
            &p,
        ))
        .unwrap();
    });
    let disk = NbdDisk::open(&uri, &[]).unwrap();
    let map = disk.map(diskray_core::ByteRange::new(0, SIZE)).unwrap();
    let got: Vec<(u64, u64, &str)> = map
        .iter()
        .map(|r| (r.start, r.length, r.state.name()))
        .collect();
    assert_eq!(
        got,
        [
            (0, 4096, "unallocated"),
            (4096, 8192, "zero"),
            (12288, 4096, "data"),
            (16384, SIZE - 16384, "unallocated")
        ]
    );
}

/// The conversation `fuzz/seed.sh` writes as the `nbd_reply` seed, replayed from a byte
/// string: the seed reaches the read and block status code.
#[test]
fn the_fuzz_seed_conversation_reads_and_maps() {
    let optrep = |opt: u32, kind: u32, payload: &[u8]| {
        let mut m = OPTION_REPLY_MAGIC.to_be_bytes().to_vec();
        m.extend(opt.to_be_bytes());
        m.extend(kind.to_be_bytes());
        m.extend((payload.len() as u32).to_be_bytes());
        m.extend(payload);
        m
    };
    let size = 65536u64;
    let mut conv = NBDMAGIC.to_be_bytes().to_vec();
    conv.extend(IHAVEOPT.to_be_bytes());
    conv.extend(3u16.to_be_bytes());
    conv.extend(optrep(OPT_STRUCTURED_REPLY, REP_ACK, &[]));
    let mut ctx = 1u32.to_be_bytes().to_vec();
    ctx.extend(BASE_ALLOCATION.as_bytes());
    conv.extend(optrep(OPT_SET_META_CONTEXT, REP_META_CONTEXT, &ctx));
    conv.extend(optrep(OPT_SET_META_CONTEXT, REP_ACK, &[]));
    let mut exp = INFO_EXPORT.to_be_bytes().to_vec();
    exp.extend(size.to_be_bytes());
    exp.extend(131u16.to_be_bytes());
    conv.extend(optrep(OPT_GO, REP_INFO, &exp));
    let mut bs = INFO_BLOCK_SIZE.to_be_bytes().to_vec();
    for n in [1u32, 4096, 1 << 25] {
        bs.extend(n.to_be_bytes());
    }
    conv.extend(optrep(OPT_GO, REP_INFO, &bs));
    conv.extend(optrep(OPT_GO, REP_ACK, &[]));
    let mut hole = 0u64.to_be_bytes().to_vec();
    hole.extend(1024u32.to_be_bytes());
    conv.extend(chunk(0, REPLY_TYPE_OFFSET_HOLE, 1, &hole));
    let mut d = 1024u64.to_be_bytes().to_vec();
    d.extend((0..12).flat_map(|_| 0..=255u8));
    conv.extend(chunk(REPLY_FLAG_DONE, REPLY_TYPE_OFFSET_DATA, 1, &d));
    let mut st = Vec::new();
    for n in [1u32, 4096, 3, size as u32 - 4096, 0] {
        st.extend(n.to_be_bytes());
    }
    conv.extend(chunk(REPLY_FLAG_DONE, REPLY_TYPE_BLOCK_STATUS, 2, &st));

    /// Says `conv`, hears nothing.
    struct Script(std::io::Cursor<Vec<u8>>);
    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.0.read(buf)
        }
    }
    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut buf = vec![0xAA; 4096];
    let io = Box::new(Script(std::io::Cursor::new(conv)));
    let extents = diskray_nbd::conn::exercise(io, &[BASE_ALLOCATION], &mut buf).unwrap();
    assert!(buf[..1024].iter().all(|b| *b == 0));
    assert!(buf[1024..].iter().enumerate().all(|(i, b)| *b == i as u8));
    let got: Vec<(u64, u64, u32)> = extents
        .iter()
        .map(|e| (e.start, e.length, e.flags))
        .collect();
    assert_eq!(got, [(0, 4096, 3), (4096, size - 4096, 0)]);
}

/// Block status of an unaligned range asks for whole minimum blocks and cuts the answer
/// back to the range.
#[test]
fn extents_of_an_unaligned_range_are_asked_aligned_and_cut() {
    let (tx, rx) = std::sync::mpsc::channel();
    let setup = Setup { min: 512, ..PLAIN };
    let (uri, _dir) = serve(setup, move |s| {
        let r = request(s).unwrap();
        let half = r.length / 2;
        let mut p = 1u32.to_be_bytes().to_vec();
        for (len, flags) in [(half, STATE_HOLE), (r.length - half, 0)] {
            p.extend(len.to_be_bytes());
            p.extend(flags.to_be_bytes());
        }
        s.write_all(&chunk(
            REPLY_FLAG_DONE,
            REPLY_TYPE_BLOCK_STATUS,
            r.cookie,
            &p,
        ))
        .unwrap();
        tx.send(r).unwrap();
    });
    let disk = NbdDisk::open_typed(&uri, &[]).unwrap();
    let got = disk
        .extents(BASE_ALLOCATION, diskray_core::ByteRange::new(1000, 5000))
        .unwrap();
    let r = rx.recv_timeout(SERVER_WAIT).unwrap();
    assert_eq!((r.offset, r.length), (512, 5632));
    let got: Vec<(u64, u64, u32)> = got.iter().map(|e| (e.start, e.length, e.flags)).collect();
    assert_eq!(got, [(1000, 2328, STATE_HOLE), (3328, 2672, 0)]);
}
