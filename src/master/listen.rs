//! The listening sockets, bound once, in the master, and kept by it.
//!
//! Workers inherit them across `fork`. With `accept = "shared"` there is
//! one socket and every loop of every worker accepts from it: whoever wakes
//! first wins. With `accept = "reuseport"` each loop of each worker
//! position has a socket of its own in one `SO_REUSEPORT` group
//! ([`reuseport`](super::reuseport)): the kernel spreads connections
//! evenly, and the master steers them around positions that can't accept.
//! Either way the sockets (and their backlogs) belong to the master and
//! survive any worker, so a dying worker loses only the connections it had
//! already accepted.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

use super::reuseport::Group;
use crate::config::{Accept, Config};

/// The master's sockets; see the module docs.
pub(crate) enum Listeners {
    Shared(TcpListener),
    Reuseport(Reuseport),
}

/// The reuseport group, and which of its sockets belongs to which loop.
pub(crate) struct Reuseport {
    group: Group,
    /// Per position, the group index of each of its loops' sockets.
    by_position: Vec<Vec<usize>>,
    /// Sockets handed out so far (the group may hold one more: the first,
    /// bound before anyone asked, to learn the port).
    assigned: usize,
    /// What the steering program sends connections to now.
    steered: Option<Vec<usize>>,
}

impl Listeners {
    /// Binds the sockets the configuration asks for: the one, or one per
    /// loop of every worker position.
    pub(crate) fn open(config: &Config) -> io::Result<Listeners> {
        match config.accept {
            Accept::Shared => Ok(Listeners::Shared(bind(
                config.listen,
                config.backlog,
                false,
            )?)),
            Accept::Reuseport => {
                let mut reuseport = Reuseport {
                    group: Group::open(config.listen, config.backlog, 1)?,
                    by_position: Vec::new(),
                    assigned: 0,
                    steered: None,
                };
                let loops = config.mode.loops(config.threads);
                for position in 0..config.workers {
                    reuseport.sockets_of(position, loops)?;
                }
                Ok(Listeners::Reuseport(reuseport))
            }
        }
    }

    /// The address bound (the real port, when `:0` was asked for).
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listeners::Shared(listener) => listener.local_addr(),
            Listeners::Reuseport(reuseport) => reuseport.group.local_addr(),
        }
    }

    /// The sockets the worker at `position` accepts from: the shared one,
    /// or one per loop (created on first use: TTIN, or a reload that gave
    /// each worker more loops).
    pub(crate) fn for_worker(
        &mut self,
        position: usize,
        loops: usize,
    ) -> io::Result<Vec<&TcpListener>> {
        match self {
            Listeners::Shared(listener) => Ok(vec![listener]),
            Listeners::Reuseport(reuseport) => {
                let indexes = reuseport.sockets_of(position, loops)?.to_vec();
                Ok(indexes
                    .into_iter()
                    .map(|index| reuseport.group.socket(index))
                    .collect())
            }
        }
    }

    /// Reuseport: from now on, new connections go only to the first `loops`
    /// sockets of the `serving` positions. A no-op when nothing changed,
    /// and for a shared socket (whoever accepts, accepts).
    pub(crate) fn steer(&mut self, serving: &[usize], loops: usize) {
        let Listeners::Reuseport(reuseport) = self else {
            return;
        };
        let live: Vec<usize> = serving
            .iter()
            .filter_map(|&position| reuseport.by_position.get(position))
            .flat_map(|sockets| sockets.iter().take(loops).copied())
            .collect();
        if reuseport.steered.as_ref() == Some(&live) {
            return;
        }
        match reuseport.group.steer(&live) {
            Ok(()) => reuseport.steered = Some(live),
            // Without steering the kernel still spreads evenly; only a dead
            // position's share waits for its respawn.
            Err(err) => log::warn!("cannot steer connections over the live workers: {err}"),
        }
    }
}

impl Reuseport {
    /// The sockets of `position`, at least `loops` of them.
    fn sockets_of(&mut self, position: usize, loops: usize) -> io::Result<&[usize]> {
        if self.by_position.len() <= position {
            self.by_position.resize_with(position + 1, Vec::new);
        }
        while self.by_position[position].len() < loops {
            self.group.grow_to(self.assigned + 1)?;
            self.by_position[position].push(self.assigned);
            self.assigned += 1;
        }
        Ok(&self.by_position[position])
    }
}

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
    use crate::config::Mode;

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

    fn config(accept: Accept, mode: Mode, workers: usize, threads: usize) -> Config {
        let mut config = crate::config::defaults();
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.accept = accept;
        config.mode = mode;
        config.workers = workers;
        config.threads = threads;
        config
    }

    #[test]
    fn a_shared_socket_serves_every_worker() {
        let mut listeners = Listeners::open(&config(Accept::Shared, Mode::Process, 3, 1)).unwrap();
        let addr = listeners.local_addr().unwrap();
        for position in 0..3 {
            let sockets = listeners.for_worker(position, 1).unwrap();
            assert_eq!(sockets.len(), 1);
            assert_eq!(sockets[0].local_addr().unwrap(), addr);
        }
    }

    #[test]
    fn reuseport_gives_each_loop_its_own_socket_and_keeps_it() {
        let mut listeners =
            Listeners::open(&config(Accept::Reuseport, Mode::ThreadLoops, 2, 3)).unwrap();
        let addr = listeners.local_addr().unwrap();
        let fds = |listeners: &mut Listeners, position| -> Vec<i32> {
            use std::os::fd::AsRawFd;
            let sockets = listeners.for_worker(position, 3).unwrap();
            assert!(sockets.iter().all(|s| s.local_addr().unwrap() == addr));
            sockets.iter().map(|s| s.as_raw_fd()).collect()
        };
        let first = fds(&mut listeners, 0);
        let second = fds(&mut listeners, 1);
        assert_eq!(first.len(), 3);
        assert!(
            first.iter().all(|fd| !second.contains(fd)),
            "{first:?} {second:?}"
        );
        // A respawn gets the same sockets; a new position (TTIN) new ones.
        assert_eq!(fds(&mut listeners, 0), first);
        let third = fds(&mut listeners, 2);
        assert!(
            third
                .iter()
                .all(|fd| !first.contains(fd) && !second.contains(fd))
        );
        listeners.steer(&[0, 2], 3);
        let Listeners::Reuseport(reuseport) = &listeners else {
            unreachable!()
        };
        assert_eq!(reuseport.steered, Some(vec![0, 1, 2, 6, 7, 8]));
    }
}
