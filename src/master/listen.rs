//! The listening sockets, bound once, in the master, and kept by it.
//!
//! Workers inherit them across `fork`. With `accept = "shared"` there is
//! one socket and every loop of every worker accepts from it: whoever wakes
//! first wins. `localhost:PORT` is two shared sockets, 127.0.0.1 and ::1 on
//! the same port (browsers try `::1` first), both in every loop; where
//! IPv6 is off it falls back to 127.0.0.1 alone, with a warning. With `accept = "reuseport"` each loop of each worker
//! position has a socket of its own in one `SO_REUSEPORT` group
//! ([`reuseport`](super::reuseport)): the kernel spreads connections
//! evenly, and the master steers them around positions that can't accept.
//! Either way the sockets (and their backlogs) belong to the master and
//! survive any worker, so a dying worker loses only the connections it had
//! already accepted.
//!
//! A bind that fails is a [`BindError`] naming the address; one in use
//! says how to pick a free port.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};

use super::reuseport::Group;
use super::socket::bind;
use crate::config::{Accept, Config};

/// The master's sockets; see the module docs.
pub(crate) enum Listeners {
    /// One socket, or 127.0.0.1 then ::1 for `localhost`.
    Shared(Vec<TcpListener>),
    Reuseport(Reuseport),
}

/// Tries at a port both 127.0.0.1 and ::1 have free, for `localhost:0`.
const LOCALHOST_ATTEMPTS: usize = 8;

/// A socket that could not be bound, and where.
#[derive(Debug)]
pub(crate) struct BindError {
    pub(crate) addr: SocketAddr,
    pub(crate) err: io::Error,
}

impl fmt::Display for BindError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.err)?;
        if self.err.kind() == io::ErrorKind::AddrInUse {
            write!(
                f,
                "; another program (another forkpool?) has that port: stop it, choose \
                 another port, or let the system pick a free one with --listen 127.0.0.1:0"
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for BindError {}

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
    /// Binds the sockets the configuration asks for: the one (two for
    /// `localhost`), or one per loop of every worker position.
    pub(crate) fn open(config: &Config) -> Result<Listeners, BindError> {
        let at = |addr: SocketAddr| move |err: io::Error| BindError { addr, err };
        match config.accept {
            Accept::Shared if config.listen_localhost => {
                bind_localhost(config.listen.port(), config.backlog).map(Listeners::Shared)
            }
            Accept::Shared => bind(config.listen, config.backlog, false)
                .map(|socket| Listeners::Shared(vec![socket]))
                .map_err(at(config.listen)),
            Accept::Reuseport => reuseport(config).map_err(at(config.listen)),
        }
    }
    /// The address bound (the real port, when `:0` was asked for): the
    /// first one, 127.0.0.1 for `localhost`.
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        match self {
            Listeners::Shared(listeners) => listeners[0].local_addr(),
            Listeners::Reuseport(reuseport) => reuseport.group.local_addr(),
        }
    }

    /// Every address bound, the first one first.
    pub(crate) fn local_addrs(&self) -> io::Result<Vec<SocketAddr>> {
        match self {
            Listeners::Shared(listeners) => listeners.iter().map(|l| l.local_addr()).collect(),
            Listeners::Reuseport(reuseport) => Ok(vec![reuseport.group.local_addr()?]),
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
            Listeners::Shared(listeners) => Ok(listeners.iter().collect()),
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

/// The reuseport group, with the sockets of every position the config
/// starts with.
fn reuseport(config: &Config) -> io::Result<Listeners> {
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

/// `localhost:PORT`: 127.0.0.1 and ::1 on the same port, 127.0.0.1 first.
/// With port 0, ::1 picks the port and 127.0.0.1 joins it; if 127.0.0.1
/// has that port taken, both start over, a few times. Where IPv6 is off
/// (no ::1, or no IPv6 at all) it is 127.0.0.1 alone, with a warning.
fn bind_localhost(port: u16, backlog: i32) -> Result<Vec<TcpListener>, BindError> {
    let v4 = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let six = match bind(v6, backlog, false) {
            Ok(six) => six,
            Err(err) if ipv6_unavailable(&err) => {
                log::warn!(
                    "localhost: cannot listen on {v6} ({err}), so browsers that try ::1 first \
                     will fall back to 127.0.0.1; listening on {} only",
                    v4(port)
                );
                return bind(v4(port), backlog, false)
                    .map(|four| vec![four])
                    .map_err(|err| BindError {
                        addr: v4(port),
                        err,
                    });
            }
            Err(err) => return Err(BindError { addr: v6, err }),
        };
        let chosen = six
            .local_addr()
            .map_err(|err| BindError { addr: v6, err })?
            .port();
        match bind(v4(chosen), backlog, false) {
            Ok(four) => return Ok(vec![four, six]),
            // ::1 chose a port 127.0.0.1 has in use: ask again.
            Err(err)
                if port == 0
                    && err.kind() == io::ErrorKind::AddrInUse
                    && attempt < LOCALHOST_ATTEMPTS => {}
            Err(err) => {
                return Err(BindError {
                    addr: v4(chosen),
                    err,
                });
            }
        }
    }
}

/// The errors that mean "this machine has no IPv6 loopback", not "that
/// port is taken": EADDRNOTAVAIL (no ::1 on `lo`), EAFNOSUPPORT (IPv6 off).
fn ipv6_unavailable(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Mode;

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

    /// Whether this machine has an IPv6 loopback to bind.
    fn has_ipv6_loopback() -> bool {
        TcpListener::bind("[::1]:0").is_ok()
    }

    #[test]
    fn localhost_is_both_loopbacks_on_one_port() {
        let mut config = config(Accept::Shared, Mode::Process, 2, 1);
        config.listen_localhost = true;
        let mut listeners = Listeners::open(&config).unwrap();
        let addrs = listeners.local_addrs().unwrap();
        let port = addrs[0].port();
        assert_ne!(port, 0);
        assert_eq!(addrs[0], SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
        assert_eq!(listeners.local_addr().unwrap(), addrs[0]);
        if has_ipv6_loopback() {
            assert_eq!(addrs.len(), 2, "{addrs:?}");
            assert_eq!(addrs[1], SocketAddr::from((Ipv6Addr::LOCALHOST, port)));
        } else {
            assert_eq!(addrs.len(), 1, "{addrs:?}");
        }
        // Every worker accepts from both.
        for position in 0..2 {
            let sockets = listeners.for_worker(position, 1).unwrap();
            let bound: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().unwrap()).collect();
            assert_eq!(bound, addrs);
        }
        // The same port again: in use, said so, with the way out.
        config.listen = addrs[0];
        let Err(err) = Listeners::open(&config) else {
            panic!("bound {port} twice")
        };
        assert_eq!(err.err.kind(), io::ErrorKind::AddrInUse);
        let message = err.to_string();
        assert!(message.starts_with("cannot listen on "), "{message}");
        assert!(message.contains(&format!(":{port}: ")), "{message}");
        assert!(message.contains("--listen 127.0.0.1:0"), "{message}");
    }

    #[test]
    fn a_port_in_use_is_named_with_the_way_out() {
        let taken = bind("127.0.0.1:0".parse().unwrap(), 16, false).unwrap();
        let mut config = config(Accept::Shared, Mode::Process, 1, 1);
        config.listen = taken.local_addr().unwrap();
        let Err(err) = Listeners::open(&config) else {
            panic!("bound a port in use")
        };
        assert_eq!(err.addr, config.listen);
        assert!(err.to_string().contains("--listen 127.0.0.1:0"), "{err}");
        // Other failures don't suggest it.
        let other = BindError {
            addr: config.listen,
            err: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(!other.to_string().contains("--listen"), "{other}");
        config.accept = Accept::Reuseport;
        let Err(err) = Listeners::open(&config) else {
            panic!("reuseport bound a port in use")
        };
        assert_eq!(err.err.kind(), io::ErrorKind::AddrInUse);
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
