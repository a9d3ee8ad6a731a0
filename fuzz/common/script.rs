//! A peer that says the fuzz input and hears nothing: the other side of an NBD
//! conversation for the `nbd_reply` and `nbd_server` targets.

use std::io::{Cursor, Read, Write};

/// Reads the input, discards every write.
pub struct Script(pub Cursor<Vec<u8>>);

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
