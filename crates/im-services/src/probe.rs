//! Asking a service on a loopback address whether it answers.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The status code of `GET path` on `addr`, or `None` when nothing answers over HTTP/1.1 in
/// time.
pub fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let probe = || -> std::io::Result<Option<u16>> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )?;
        let mut head = [0_u8; 32];
        let read = stream.read(&mut head)?;
        let line = String::from_utf8_lossy(&head[..read]);
        Ok(line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok()))
    };
    probe().ok().flatten()
}

/// Whether something accepts a TCP connection on `addr` within a second.
pub fn accepts(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}
