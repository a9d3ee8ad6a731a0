//! Reading the protocol's big-endian integers and bounded byte strings from a server, each
//! failure saying what was being read; and the [`Transport`] a connection talks through.

use crate::error::{NbdError, Result};
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

/// A byte stream to a server: a socket, or (in tests and fuzzing) anything that reads and
/// writes.
pub trait Transport: Read + Write + Send {}
impl<T: Read + Write + Send> Transport for T {}

/// The size of the read buffer in front of a socket: a reply header is 20 bytes, data is
/// read past the buffer straight into the caller's memory.
const READ_BUFFER: usize = 64 * 1024;

/// A socket read through a buffer and written directly (each request batch is one write).
pub struct Socket<S: Read + Write> {
    reader: BufReader<S>,
    writer: S,
}

impl Socket<TcpStream> {
    /// Wraps a TCP stream.
    pub fn tcp(stream: TcpStream) -> std::io::Result<Self> {
        let writer = stream.try_clone()?;
        Ok(Socket {
            reader: BufReader::with_capacity(READ_BUFFER, stream),
            writer,
        })
    }
}

impl Socket<UnixStream> {
    /// Wraps a Unix stream.
    pub fn unix(stream: UnixStream) -> std::io::Result<Self> {
        let writer = stream.try_clone()?;
        Ok(Socket {
            reader: BufReader::with_capacity(READ_BUFFER, stream),
            writer,
        })
    }
}

impl<S: Read + Write> Read for Socket<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl<S: Read + Write> Write for Socket<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// Fills `buf`, or says what was being read when the server stops or fails.
pub fn read_exact(
    r: &mut dyn Transport,
    buf: &mut [u8],
    during: &dyn Fn() -> String,
) -> Result<()> {
    r.read_exact(buf).map_err(|e| NbdError::io(during(), e))
}

/// Reads a big-endian u16.
pub fn be16(r: &mut dyn Transport, during: &dyn Fn() -> String) -> Result<u16> {
    let mut b = [0; 2];
    read_exact(r, &mut b, during)?;
    Ok(u16::from_be_bytes(b))
}

/// Reads a big-endian u32.
pub fn be32(r: &mut dyn Transport, during: &dyn Fn() -> String) -> Result<u32> {
    let mut b = [0; 4];
    read_exact(r, &mut b, during)?;
    Ok(u32::from_be_bytes(b))
}

/// Reads a big-endian u64.
pub fn be64(r: &mut dyn Transport, during: &dyn Fn() -> String) -> Result<u64> {
    let mut b = [0; 8];
    read_exact(r, &mut b, during)?;
    Ok(u64::from_be_bytes(b))
}

/// Reads `length` bytes after checking them against `limit` (so a hostile length never
/// becomes an allocation).
pub fn bytes(
    r: &mut dyn Transport,
    length: u64,
    limit: u32,
    what: &'static str,
    during: &dyn Fn() -> String,
) -> Result<Vec<u8>> {
    if length > u64::from(limit) {
        return Err(NbdError::TooLong {
            during: during(),
            what,
            length,
            limit: limit.into(),
        });
    }
    let mut v = vec![0; length as usize];
    read_exact(r, &mut v, during)?;
    Ok(v)
}

/// Writes `buf` whole.
pub fn write_all(w: &mut dyn Transport, buf: &[u8], during: &dyn Fn() -> String) -> Result<()> {
    w.write_all(buf)
        .and_then(|()| w.flush())
        .map_err(|e| NbdError::io(during(), e))
}

/// A byte string as text for messages (servers' messages are UTF-8 by the protocol, but
/// are shown whatever they hold).
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
