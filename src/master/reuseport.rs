//! `accept = "reuseport"`: one `SO_REUSEPORT` listening socket per serving
//! loop, all bound to the same address, opened and kept by the master.
//!
//! The kernel spreads new connections over the sockets of a reuseport group
//! by a hash of the connection, which is what makes the accept path fair
//! (nginx `listen ... reuseport`). The price is that a connection is
//! queued on one socket before anyone accepts it: if nobody polls that
//! socket, it waits. So the master steers: a classic BPF program attached
//! to the group ([`Group::steer`], `SO_ATTACH_REUSEPORT_CBPF`) maps the
//! connection's hash onto the sockets whose loops are alive, and is
//! rewritten whenever that set changes (a death, a respawn, TTIN, TTOU).
//! A position in crash-loop backoff thus gets no new connections, instead
//! of queueing them for up to 10 s.
//!
//! Sockets are never closed while the master runs: closing one resets the
//! connections in its queue (unless `net.ipv4.tcp_migrate_req` is on), and
//! a socket's index in the group is its order of creation only as long as
//! none leaves. A position removed by TTOU is steered around and its socket
//! kept for the next TTIN. What it does not do: connections already queued
//! on a socket when its loop died wait for the replacement (normally a few
//! ms; at most the backoff, for the handful that arrived before the master
//! noticed the death).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use super::socket::bind;

/// `SO_ATTACH_REUSEPORT_CBPF` (Linux; `libc` exports it only for Android).
const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
/// A classic BPF program holds at most this many instructions.
const BPF_MAXINSNS: usize = 4096;

/// The reuseport group of one listen address.
pub(crate) struct Group {
    addr: SocketAddr,
    backlog: i32,
    /// In order of creation, which is their index in the kernel's group.
    sockets: Vec<TcpListener>,
}

impl Group {
    /// Binds `count` sockets to `addr`. With port 0, the first socket picks
    /// the port and the others join it.
    pub(crate) fn open(addr: SocketAddr, backlog: i32, count: usize) -> io::Result<Group> {
        let mut group = Group {
            addr,
            backlog,
            sockets: Vec::new(),
        };
        group.grow_to(count.max(1))?;
        Ok(group)
    }

    /// The address every socket is bound to (the real port).
    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sockets[0].local_addr()
    }

    /// Makes sure there are at least `count` sockets.
    pub(crate) fn grow_to(&mut self, count: usize) -> io::Result<()> {
        while self.sockets.len() < count {
            let addr = match self.sockets.first() {
                Some(first) => first.local_addr()?,
                None => self.addr,
            };
            self.sockets.push(bind(addr, self.backlog, true)?);
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.sockets.len()
    }

    pub(crate) fn socket(&self, index: usize) -> &TcpListener {
        &self.sockets[index]
    }

    /// Sends new connections only to the sockets in `live` (indexes into
    /// the group), spread by the connection's hash. An empty `live` set
    /// removes the steering: the kernel's own hash over every socket.
    pub(crate) fn steer(&self, live: &[usize]) -> io::Result<()> {
        let program = steering_program(live)?;
        let fprog = libc::sock_fprog {
            len: program.len() as u16,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: `fprog` points at `program`, which outlives the call; the
        // kernel copies the program before setsockopt returns, and the
        // option length is the size of the struct passed.
        let rc = unsafe {
            libc::setsockopt(
                self.sockets[0].as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_CBPF,
                (&raw const fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// The program: `A = hash; A %= live.len(); return live[A]`, the table
/// lookup written as a chain of `jeq`. With every socket live it spreads
/// as the kernel's own hash does.
fn steering_program(live: &[usize]) -> io::Result<Vec<libc::sock_filter>> {
    if live.is_empty() {
        // Returning an index past the group's end falls back to the kernel's
        // own selection over all sockets.
        return Ok(vec![stmt(libc::BPF_RET | libc::BPF_K, u32::MAX)]);
    }
    if 3 + 2 * live.len() > BPF_MAXINSNS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cannot steer over {} sockets", live.len()),
        ));
    }
    let mut program = vec![
        // A = skb->hash: the flow hash of the connection (loopback included:
        // the sender's socket sets it).
        stmt(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + libc::SKF_AD_RXHASH) as u32,
        ),
        stmt(
            libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K,
            live.len() as u32,
        ),
    ];
    for (slot, &socket) in live.iter().enumerate() {
        // if A == slot: return socket (else skip that return).
        program.push(jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            slot as u32,
            0,
            1,
        ));
        program.push(stmt(libc::BPF_RET | libc::BPF_K, socket as u32));
    }
    // Unreachable (A < len), but a program must end in a return.
    program.push(stmt(libc::BPF_RET | libc::BPF_K, live[0] as u32));
    Ok(program)
}

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::ErrorKind;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    /// Opens `n` connections to the group and counts where each one landed.
    fn spread(group: &Group, n: usize) -> Vec<usize> {
        let addr = group.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let mut counts = vec![0; group.len()];
        let deadline = Instant::now() + Duration::from_secs(5);
        while counts.iter().sum::<usize>() < n {
            assert!(Instant::now() < deadline, "accepted only {counts:?} of {n}");
            for (index, count) in counts.iter_mut().enumerate() {
                loop {
                    match group.socket(index).accept() {
                        Ok(_) => *count += 1,
                        Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                        Err(err) => panic!("accept: {err}"),
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        drop(clients);
        counts
    }

    #[test]
    fn every_socket_of_a_group_gets_connections() {
        let group = Group::open("127.0.0.1:0".parse().unwrap(), 128, 4).unwrap();
        assert_eq!(group.len(), 4);
        let counts = spread(&group, 200);
        assert!(counts.iter().all(|&c| c > 10), "uneven spread: {counts:?}");
    }

    #[test]
    fn steering_skips_the_sockets_left_out() {
        let group = Group::open("127.0.0.1:0".parse().unwrap(), 128, 3).unwrap();
        group.steer(&[0, 2]).unwrap();
        let counts = spread(&group, 120);
        assert_eq!(counts[1], 0, "socket 1 is steered around: {counts:?}");
        assert!(
            counts[0] > 20 && counts[2] > 20,
            "uneven spread: {counts:?}"
        );
        // And back: with every socket live again, socket 1 gets its share.
        group.steer(&[0, 1, 2]).unwrap();
        let counts = spread(&group, 120);
        assert!(counts.iter().all(|&c| c > 10), "uneven spread: {counts:?}");
    }

    #[test]
    fn a_grown_group_shares_the_port() {
        let mut group = Group::open("127.0.0.1:0".parse().unwrap(), 16, 1).unwrap();
        let addr = group.local_addr().unwrap();
        group.grow_to(3).unwrap();
        for index in 0..3 {
            assert_eq!(group.socket(index).local_addr().unwrap(), addr);
        }
    }
}
