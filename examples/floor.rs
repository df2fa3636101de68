//! The syscall floor: a minimal fixed-response HTTP/1.1 server, so
//! `scripts/bench.sh` can show how far forkpool is from the least work a
//! keep-alive server can do on this machine.
//!
//! ```text
//! cargo run --release --example floor -- [--listen 127.0.0.1:0] [--workers N]
//!     [--body-bytes 1024]
//! ```
//!
//! What it does: the master binds one listening socket (backlog 1024),
//! prints `listening on http://IP:PORT` on stdout exactly as forkpool does,
//! forks `--workers` children that share that socket, and waits. Each
//! worker runs one level-triggered `epoll` loop on raw file descriptors:
//! it accepts (`accept4`, non-blocking, `TCP_NODELAY`), reads what a
//! connection has, and for every request head (everything up to `\r\n\r\n`)
//! queues one fixed `200 OK` response with `Content-Length` (`--body-bytes`
//! of body, 1 KiB by default) and writes it, keeping the connection open.
//! Per keep-alive request that is `epoll_wait`, `read` and `write`: three
//! system calls. It reads once per wake-up (a short read means the socket
//! is drained, and a level-triggered epoll reports whatever arrives later),
//! so it never pays the `read` that ends in `EAGAIN` an edge-triggered loop
//! needs. A response that doesn't fit the socket waits for `EPOLLOUT`, and
//! no more input is read until it is out.
//!
//! What it doesn't: parse anything (method, target, headers, bodies and
//! `Connection: close` are ignored; a request body would be taken for the
//! next request), send a `Date`, time anything out, supervise or respawn
//! workers, or drain gracefully. A head over 16 KiB closes its connection.
//! It is a measuring stick, not a server. SIGTERM, SIGINT or SIGQUIT to the
//! master stops the workers (SIGTERM), reaps them and exits with code 0;
//! when a worker dies, the master stops the others and exits with code 1;
//! workers also die with the master (`PR_SET_PDEATHSIG`), even by SIGKILL.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use clap::Parser;
use socket2::{Domain, Socket, Type};

/// Largest request head kept; a longer one closes its connection.
const INPUT_BYTES: usize = 16 * 1024;
/// Stop answering buffered (pipelined) requests once this much is queued.
const OUTPUT_HIGH_WATER: usize = 256 * 1024;
/// Readiness events taken per `epoll_wait`.
const EVENTS: usize = 256;

#[derive(Parser)]
#[command(about = "The syscall floor: a fixed-response HTTP/1.1 server for benchmarks")]
struct Args {
    /// Address to bind (port 0 picks a free one).
    #[arg(short, long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Worker processes sharing the listening socket.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    workers: u32,
    /// Size of the response body.
    #[arg(long, default_value_t = 1024)]
    body_bytes: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("floor: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The signals the master waits for: the stop signals and SIGCHLD.
fn master_signals() -> libc::sigset_t {
    // SAFETY: sigemptyset initialises the set; sigaddset only writes to it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGCHLD] {
            libc::sigaddset(&mut set, signal);
        }
        set
    }
}

/// Blocks (`SIG_BLOCK`) or unblocks (`SIG_UNBLOCK`) the master's signals.
fn mask_master_signals(how: libc::c_int) -> io::Result<()> {
    let set = master_signals();
    // SAFETY: `set` is an initialised sigset_t; the old mask isn't wanted.
    let ret = unsafe { libc::sigprocmask(how, &set, std::ptr::null_mut()) };
    check(ret as isize).map(drop)
}

/// Binds, announces, forks the workers, and waits until one of them ends
/// or a stop signal comes.
fn run(args: &Args) -> io::Result<ExitCode> {
    let response: &'static [u8] = Box::leak(fixed_response(args.body_bytes).into_boxed_slice());
    let listener = Socket::new(Domain::for_address(args.listen), Type::STREAM, None)?;
    listener.set_reuse_address(true)?;
    listener.bind(&args.listen.into())?;
    listener.listen(1024)?;
    listener.set_nonblocking(true)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("the listening socket has no IP address"))?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on http://{addr}")?;
    // Flushed before forking, so no child inherits (and repeats) the line.
    stdout.flush()?;
    drop(stdout);

    let master = std::process::id();
    // Blocked before forking, so none is lost; the master takes them with
    // sigwaitinfo, and each child unblocks them first.
    mask_master_signals(libc::SIG_BLOCK)?;
    let mut children = Vec::new();
    for _ in 0..args.workers {
        // SAFETY: the master is single-threaded here (nothing has spawned a
        // thread), so the child starts with a consistent copy of the whole
        // process: no lock held by another thread, allocator included.
        let pid = unsafe { libc::fork() };
        match pid {
            -1 => {
                let err = io::Error::last_os_error();
                stop(&children);
                return Err(err);
            }
            0 => {
                let code = match mask_master_signals(libc::SIG_UNBLOCK)
                    .and_then(|()| worker(listener.as_raw_fd(), master, response))
                {
                    Ok(()) => 0,
                    Err(err) => {
                        eprintln!("floor: worker {}: {err}", std::process::id());
                        1
                    }
                };
                // SAFETY: ends this child at once, without running the
                // master's exit path (atexit handlers, stdio flushes) twice.
                unsafe { libc::_exit(code) };
            }
            pid => children.push(pid),
        }
    }
    drop(listener);

    // The first worker to end, or a stop signal, ends the run.
    let signals = master_signals();
    loop {
        // SAFETY: `signals` is an initialised sigset_t; the info isn't wanted.
        let signal = unsafe { libc::sigwaitinfo(&signals, std::ptr::null_mut()) };
        match signal {
            libc::SIGCHLD => {
                let mut status = 0;
                // SAFETY: `status` is a valid, writable int; -1 means any child.
                let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
                if pid > 0 {
                    eprintln!("floor: worker {pid} ended (wait status {status}), stopping");
                    children.retain(|&child| child != pid);
                    stop(&children);
                    return Ok(ExitCode::FAILURE);
                }
            }
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            -1 => {
                let err = io::Error::last_os_error();
                stop(&children);
                return Err(err);
            }
            _ => {
                stop(&children);
                return Ok(ExitCode::SUCCESS);
            }
        }
    }
}

/// Sends SIGTERM to each worker and reaps it.
fn stop(children: &[libc::pid_t]) {
    for &pid in children {
        // SAFETY: plain syscalls on our own children's pids, which stay
        // valid (unreaped) until the waitpid below.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
}

/// The one response every request gets.
fn fixed_response(body_bytes: usize) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nServer: floor\r\nContent-Type: text/plain\r\nContent-Length: {body_bytes}\r\n\r\n"
    )
    .into_bytes();
    response.extend((0..body_bytes).map(|i| b'a' + (i % 26) as u8));
    response
}

/// Turns a `-1` return into the thread's `errno`.
fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// Registers or updates `fd` in `epoll` with `events`, level-triggered.
fn epoll_ctl(epoll: RawFd, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events,
        u64: fd as u64,
    };
    // SAFETY: `event` is a valid epoll_event that outlives the call; the
    // kernel only reads it.
    check(unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) } as isize).map(drop)
}

/// One worker: an epoll loop over the shared listener and its connections.
fn worker(listener: RawFd, master: u32, response: &'static [u8]) -> io::Result<()> {
    // SAFETY: prctl with PR_SET_PDEATHSIG only sets a flag of this process.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) } as isize)?;
    // The master may have died before the flag was set.
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } as u32 != master {
        return Ok(());
    }
    // SAFETY: creates a new fd; no pointers involved.
    let epoll = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) } as isize)? as RawFd;
    // EPOLLEXCLUSIVE: a new connection wakes one waiting worker, not all.
    epoll_ctl(
        epoll,
        libc::EPOLL_CTL_ADD,
        listener,
        (libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
    )?;
    let mut conns: Vec<Option<Box<Conn>>> = Vec::new();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS];
    loop {
        // SAFETY: `events` has room for EVENTS entries, which the kernel
        // fills; we only read the first `n` it reports.
        let ready = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), EVENTS as i32, -1) };
        let n = match check(ready as isize) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        for event in &events[..n] {
            let fd = event.u64 as RawFd;
            if fd == listener {
                accept_all(epoll, listener, &mut conns);
                continue;
            }
            let Some(conn) = conns.get_mut(fd as usize).and_then(Option::as_mut) else {
                continue;
            };
            match conn.on_ready(fd, response) {
                Some(want) if want == conn.interest => {}
                Some(want) => {
                    conn.interest = want;
                    if epoll_ctl(epoll, libc::EPOLL_CTL_MOD, fd, want).is_err() {
                        close(fd, &mut conns);
                    }
                }
                // Closing the fd also removes it from the epoll set.
                None => close(fd, &mut conns),
            }
        }
    }
}

/// Accepts until the backlog is empty.
fn accept_all(epoll: RawFd, listener: RawFd, conns: &mut Vec<Option<Box<Conn>>>) {
    loop {
        // SAFETY: null address pointers are allowed (we don't want the peer).
        let fd = unsafe {
            libc::accept4(
                listener,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            )
        };
        if fd < 0 {
            // EAGAIN: done (another worker may have taken it); anything else
            // (EMFILE, ECONNABORTED) is retried at the next wake-up.
            return;
        }
        let one: libc::c_int = 1;
        // SAFETY: `one` is a valid c_int for the duration of the call and
        // its size is passed along.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        let interest = libc::EPOLLIN as u32;
        if epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, interest).is_err() {
            // SAFETY: `fd` was just accepted and is ours alone.
            unsafe { libc::close(fd) };
            continue;
        }
        let slot = fd as usize;
        if conns.len() <= slot {
            conns.resize_with(slot + 1, || None);
        }
        conns[slot] = Some(Box::new(Conn::new(interest)));
    }
}

/// Closes a connection and forgets it.
fn close(fd: RawFd, conns: &mut [Option<Box<Conn>>]) {
    conns[fd as usize] = None;
    // SAFETY: `fd` belongs to the connection just dropped and nothing else
    // holds it.
    unsafe { libc::close(fd) };
}

/// One client connection's buffers.
struct Conn {
    /// `input[..filled]` is received; request heads end at `\r\n\r\n`.
    input: Box<[u8; INPUT_BYTES]>,
    filled: usize,
    /// Where the search for the next `\r\n\r\n` resumes in `input`.
    scanned: usize,
    /// `output[written..]` is still to be sent.
    output: Vec<u8>,
    written: usize,
    /// What it is registered for: `EPOLLIN`, or `EPOLLOUT` while output waits.
    interest: u32,
}

impl Conn {
    fn new(interest: u32) -> Conn {
        Conn {
            input: Box::new([0; INPUT_BYTES]),
            filled: 0,
            scanned: 0,
            output: Vec::new(),
            written: 0,
            interest,
        }
    }

    /// Serves what the socket allows; returns the readiness to wait for
    /// next, or `None` to close.
    fn on_ready(&mut self, fd: RawFd, response: &'static [u8]) -> Option<u32> {
        let mut has_read = false;
        loop {
            // Fast path: no queued output, exactly one request buffered:
            // send the static response without copying it.
            if self.written == self.output.len() && self.take_requests(1) == 1 {
                if self.input_has_request() {
                    // More pipelined requests follow: queue them all.
                    self.output.extend_from_slice(response);
                } else {
                    match self.write_from(fd, response) {
                        Ok(true) => continue,
                        Ok(false) => return Some(libc::EPOLLOUT as u32),
                        Err(_) => return None,
                    }
                }
            }
            while self.output.len() < OUTPUT_HIGH_WATER && self.take_requests(1) == 1 {
                self.output.extend_from_slice(response);
            }
            if self.written < self.output.len() {
                match self.flush(fd) {
                    Ok(true) => continue,
                    Ok(false) => return Some(libc::EPOLLOUT as u32),
                    Err(_) => return None,
                }
            }
            // Nothing queued, no complete request: read, once per wake-up.
            if has_read {
                return Some(libc::EPOLLIN as u32);
            }
            if self.filled == INPUT_BYTES {
                return None; // a head larger than the buffer
            }
            let buf = &mut self.input[self.filled..];
            // SAFETY: `buf` is valid for `buf.len()` writable bytes.
            let got = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            match check(got) {
                Ok(0) => return None,
                Ok(n) => self.filled += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Some(libc::EPOLLIN as u32);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
            has_read = true;
        }
    }

    /// Whether a complete request head is buffered (without consuming it).
    fn input_has_request(&self) -> bool {
        find_head_end(&self.input[..self.filled], 0).is_some()
    }

    /// Consumes up to `max` complete request heads; returns how many.
    fn take_requests(&mut self, max: usize) -> usize {
        let mut taken = 0;
        while taken < max {
            let Some(end) = find_head_end(&self.input[..self.filled], self.scanned) else {
                // Resume where a `\r\n\r\n` could still begin.
                self.scanned = self.filled.saturating_sub(3);
                break;
            };
            self.input.copy_within(end..self.filled, 0);
            self.filled -= end;
            self.scanned = 0;
            taken += 1;
        }
        taken
    }

    /// Writes `response` directly; the unsent rest, if any, is queued.
    /// `Ok(true)`: all sent.
    fn write_from(&mut self, fd: RawFd, response: &[u8]) -> io::Result<bool> {
        let sent = loop {
            // SAFETY: `response` is valid for `response.len()` bytes.
            match check(unsafe { libc::write(fd, response.as_ptr().cast(), response.len()) }) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(err) => return Err(err),
            }
        };
        if sent == response.len() {
            return Ok(true);
        }
        self.output.clear();
        self.output.extend_from_slice(&response[sent..]);
        self.written = 0;
        Ok(false)
    }

    /// Writes queued output until done (`Ok(true)`) or the socket is full.
    fn flush(&mut self, fd: RawFd) -> io::Result<bool> {
        while self.written < self.output.len() {
            let rest = &self.output[self.written..];
            // SAFETY: `rest` is valid for `rest.len()` bytes.
            match check(unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) }) {
                Ok(n) => self.written += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) => return Err(err),
            }
        }
        self.output.clear();
        self.written = 0;
        if self.output.capacity() > 4 * OUTPUT_HIGH_WATER {
            self.output.shrink_to(OUTPUT_HIGH_WATER);
        }
        Ok(true)
    }
}

/// The end (just past `\r\n\r\n`) of the first request head in `input`,
/// searching from `from`.
fn find_head_end(input: &[u8], from: usize) -> Option<usize> {
    input
        .get(from..)?
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| from + at + 4)
}
