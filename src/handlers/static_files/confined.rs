//! Opening files without ever leaving the served root.
//!
//! What it does: opens the root directory once (`O_PATH`) and resolves every
//! later lookup relative to that fd with `openat2` and `RESOLVE_BENEATH`, so
//! neither `..` inside a symlink nor a symlink pointing elsewhere can leave
//! the root, whatever renames race with us. Absolute symlinks are refused
//! even when they point inside the root, because `RESOLVE_BENEATH` refuses
//! them. Where `openat2` can't be used (a kernel before 5.6 answers
//! ENOSYS; a seccomp profile that doesn't know it answers ENOSYS or EPERM,
//! as container runtimes' defaults have done) it falls back to
//! canonicalising the path and checking its prefix, which a concurrent
//! symlink swap could race (a symlink swapped in between the check and
//! the open is followed), but which still refuses every plain escape.
//! EPERM can also be one file's own answer, so it switches to the fallback
//! only if `openat2` of the root itself fails the same way.
//!
//! What it doesn't: decode or vet request paths (see `path`), or decide what
//! an error means to a client: it hands back the kernel's `Errno` (EXDEV for
//! an escape) and the caller picks the status.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{self, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{self, FileStat, Mode};

/// The served directory, opened once; every open is resolved beneath it.
pub(crate) struct ConfinedRoot {
    /// The root, opened once with `O_PATH`: every lookup starts here.
    fd: OwnedFd,
    /// The canonical root path, only used by the no-`openat2` fallback.
    canonical: PathBuf,
    /// Set once `openat2` turned out unusable, so we stop trying it.
    /// Atomic because thread-mode pool threads share one root.
    no_openat2: AtomicBool,
}

impl ConfinedRoot {
    /// Opens the root directory; fails if it is missing or not a directory.
    pub(crate) fn open(root: &Path) -> io::Result<ConfinedRoot> {
        let fd = fcntl::open(
            root,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(ConfinedRoot {
            fd,
            canonical: std::fs::canonicalize(root)?,
            no_openat2: AtomicBool::new(false),
        })
    }

    /// Opens `rel` (relative, no `..`, no NUL) for reading, never outside
    /// the root. `O_NONBLOCK` so a FIFO can't block the worker.
    pub(crate) fn open_beneath(&self, rel: &[u8]) -> Result<OwnedFd, Errno> {
        let flags = OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
        if !self.no_openat2.load(Ordering::Relaxed) {
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            let mut tries = 0;
            loop {
                match fcntl::openat2(&self.fd, rel, how) {
                    // EAGAIN: a concurrent rename kept the kernel from
                    // proving the walk stayed beneath; openat2(2) says retry.
                    Err(Errno::EAGAIN | Errno::EINTR) if tries < 3 => tries += 1,
                    Err(err @ (Errno::ENOSYS | Errno::EPERM)) if self.openat2_refused() => {
                        log::warn!(
                            "static: openat2 refused ({err}: an old kernel or a seccomp \
                             filter), using the canonicalize fallback"
                        );
                        self.no_openat2.store(true, Ordering::Relaxed);
                        break;
                    }
                    other => return other,
                }
            }
        }
        self.open_canonical(rel, flags)
    }

    /// The status of `rel` beneath the root fd, its last component not
    /// followed (`fstatat`, `AT_SYMLINK_NOFOLLOW`). NOT confined: symlinks
    /// in its directories are followed wherever they lead. Only for
    /// comparing with the identity of a file this root opened (the cache's
    /// revalidation, whose docs say why that is enough).
    pub(crate) fn stat_nofollow(&self, rel: &[u8]) -> Result<FileStat, Errno> {
        stat::fstatat(&self.fd, rel, AtFlags::AT_SYMLINK_NOFOLLOW)
    }

    /// The root as a path through `/proc/self/fd` (the very directory this
    /// root's fd holds, whatever has been renamed since), for calls that
    /// take a path only (`inotify_add_watch`). NOT confined: only for
    /// watching what this root opened.
    pub(crate) fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    /// Whether `openat2` fails for the root itself, which it may always
    /// open: then the system refuses the call, not the file.
    fn openat2_refused(&self) -> bool {
        let how = OpenHow::new().flags(OFlag::O_PATH | OFlag::O_CLOEXEC);
        matches!(
            fcntl::openat2(&self.fd, ".", how),
            Err(Errno::ENOSYS | Errno::EPERM)
        )
    }

    /// The fallback for kernels without `openat2`: resolve every symlink
    /// ourselves, then insist the result is still under the root.
    fn open_canonical(&self, rel: &[u8], flags: OFlag) -> Result<OwnedFd, Errno> {
        let full = self.canonical.join(OsStr::from_bytes(rel));
        let real = std::fs::canonicalize(full).map_err(io_errno)?;
        if !real.starts_with(&self.canonical) {
            return Err(Errno::EXDEV);
        }
        fcntl::open(&real, flags, Mode::empty())
    }

    /// Makes this root behave as on a kernel without `openat2`, so tests
    /// cover both strategies.
    #[cfg(test)]
    pub(crate) fn force_fallback(&self) {
        self.no_openat2.store(true, Ordering::Relaxed);
    }
}

fn io_errno(err: io::Error) -> Errno {
    err.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::StaticFiles;
    use crate::handlers::static_files::test_support::{HELLO, TempRoot, body_bytes, get};
    use std::os::unix::fs::symlink;

    /// Both strategies over one fixture: openat2, and the ENOSYS fallback.
    fn roots(root: &TempRoot) -> [ConfinedRoot; 2] {
        let fallback = ConfinedRoot::open(&root.path).unwrap();
        fallback.force_fallback();
        [ConfinedRoot::open(&root.path).unwrap(), fallback]
    }

    #[test]
    fn openat2_is_kept_when_the_kernel_has_it() {
        let root = TempRoot::new();
        let sf = StaticFiles::open(&root.path).unwrap();
        let probe = fcntl::openat2(&sf.root.fd, ".", OpenHow::new());
        assert_eq!(get(&sf, "/hello.txt").status, 200);
        let has_openat2 = !matches!(probe, Err(Errno::ENOSYS));
        assert_eq!(sf.root.no_openat2.load(Ordering::Relaxed), !has_openat2);
        if has_openat2 {
            // RESOLVE_BENEATH refuses absolute symlinks, even into the root.
            let target = root.path.join("hello.txt");
            symlink(&target, root.path.join("abs-link")).unwrap();
            assert_eq!(get(&sf, "/abs-link").status, 404);
        }
    }

    /// Runs `f` on a thread of its own whose `openat2` calls fail with
    /// `errno`, as under a seccomp profile that doesn't know the call: a
    /// real seccomp filter, which binds only the thread that installs it.
    fn with_openat2_failing<T: Send>(errno: Errno, f: impl FnOnce() -> T + Send) -> T {
        let stmt = |code: u32, k: u32| libc::sock_filter {
            code: code as u16,
            jt: 0,
            jf: 0,
            k,
        };
        let program = [
            // Load the syscall number (offset 0 of struct seccomp_data).
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            libc::sock_filter {
                code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                jt: 0,
                jf: 1,
                k: libc::SYS_openat2 as u32,
            },
            stmt(
                libc::BPF_RET | libc::BPF_K,
                libc::SECCOMP_RET_ERRNO | errno as u32,
            ),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ];
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let fprog = libc::sock_fprog {
                        len: program.len() as u16,
                        filter: program.as_ptr() as *mut libc::sock_filter,
                    };
                    // SAFETY: prctl with integer arguments, then a pointer to
                    // a filter program that outlives the call (the kernel
                    // copies it). Without TSYNC the filter binds only this
                    // thread, which ends with `f`.
                    let installed = unsafe {
                        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
                            && libc::prctl(
                                libc::PR_SET_SECCOMP,
                                libc::SECCOMP_MODE_FILTER,
                                &fprog as *const libc::sock_fprog,
                            ) == 0
                    };
                    assert!(installed, "seccomp: {}", io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap()
        })
    }

    #[test]
    fn a_seccomp_filter_refusing_openat2_falls_back() {
        let root = TempRoot::new();
        for errno in [Errno::EPERM, Errno::ENOSYS] {
            let sf = StaticFiles::open(&root.path).unwrap();
            let (status, body, escape) = with_openat2_failing(errno, || {
                let mut hello = get(&sf, "/hello.txt");
                let escape = sf.root.open_beneath(b"link-outside/passwd");
                (hello.status, body_bytes(&mut hello), escape.unwrap_err())
            });
            assert_eq!((status, body.as_slice()), (200, HELLO), "{errno}");
            assert!(sf.root.no_openat2.load(Ordering::Relaxed), "{errno}");
            // The fallback still refuses escapes.
            assert_eq!(escape, Errno::EXDEV, "{errno}");
        }
        // Out of the filter's thread, openat2 works and is kept.
        let sf = StaticFiles::open(&root.path).unwrap();
        assert_eq!(get(&sf, "/hello.txt").status, 200);
        assert!(!sf.root.no_openat2.load(Ordering::Relaxed));
    }

    #[test]
    fn files_and_symlinks_inside_open() {
        let root = TempRoot::new();
        for confined in roots(&root) {
            for rel in [
                "hello.txt",
                "sub/inner.txt",
                "link-inside",
                "link-dir/inner.txt",
                ".",
            ] {
                assert!(confined.open_beneath(rel.as_bytes()).is_ok(), "{rel}");
            }
        }
    }

    #[test]
    fn escapes_are_exdev_in_both_strategies() {
        let root = TempRoot::new();
        for confined in roots(&root) {
            for rel in ["link-outside", "link-outside/passwd", "link-up", ".."] {
                assert_eq!(
                    confined.open_beneath(rel.as_bytes()).unwrap_err(),
                    Errno::EXDEV,
                    "{rel}"
                );
            }
        }
    }

    #[test]
    fn missing_paths_are_the_kernels_errors() {
        let root = TempRoot::new();
        for confined in roots(&root) {
            assert_eq!(confined.open_beneath(b"nope").unwrap_err(), Errno::ENOENT);
            assert_eq!(
                confined.open_beneath(b"hello.txt/").unwrap_err(),
                Errno::ENOTDIR
            );
        }
    }

    #[test]
    fn symlinks_inside_work_and_outside_are_404() {
        let root = TempRoot::new();
        for sf in root.servers() {
            let mut inside = get(&sf, "/link-inside");
            assert_eq!(inside.status, 200);
            assert_eq!(body_bytes(&mut inside), HELLO);
            assert_eq!(get(&sf, "/link-dir/inner.txt").status, 200);
            assert_eq!(get(&sf, "/link-outside").status, 404);
            assert_eq!(get(&sf, "/link-outside/").status, 404);
            assert_eq!(get(&sf, "/link-outside/passwd").status, 404);
            assert_eq!(get(&sf, "/link-up").status, 404);
        }
    }
}
