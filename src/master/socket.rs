//! One listening socket, bound the way every one of forkpool's is: the
//! shared socket, each of `localhost`'s two, and each socket of a
//! reuseport group (`listen` and `reuseport` both bind through here).

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Binds `addr` with `SO_REUSEADDR` (a restart must not wait out TIME_WAIT),
/// `SO_REUSEPORT` when asked, and the configured backlog, non-blocking for
/// the workers' event loops.
pub(crate) fn bind(addr: SocketAddr, backlog: i32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
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
        let listener = bind("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        assert!(
            bind(addr, 16, false).is_err(),
            "a second bind on the same port must fail"
        );
    }
}
