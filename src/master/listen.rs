//! Binding the listening socket, once, in the master.
//!
//! Workers inherit this one socket across `fork` and all accept from it, so
//! a dying worker loses only the connections it had already accepted: the
//! backlog belongs to the master's socket and survives any worker.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `addr` with `SO_REUSEADDR` (a restart must not wait out TIME_WAIT)
/// and the configured backlog, non-blocking for the workers' event loops.
pub(crate) fn bind(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_an_ephemeral_port_on_loopback() {
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        assert!(
            bind(addr, 16).is_err(),
            "a second bind on the same port must fail"
        );
    }
}
