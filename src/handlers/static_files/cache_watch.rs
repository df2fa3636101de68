//! How the small-file cache learns that a file changed without looking it
//! up again on every hit: each worker watches the files it caches, and the
//! directories on their paths, with one inotify instance, and a hit asks
//! that instance whether anything happened with one `epoll_wait` of
//! timeout zero (about a third of an `fstatat`'s cost: no path walk, no
//! name copied in, no status copied out).
//!
//! Why a hit that finds nothing pending is fresh: the kernel queues an
//! inotify event inside the very system call that makes the change (the
//! `write`, `rename`, `unlink`, `chmod`, `truncate`), before that call
//! returns. A client that changes a file and then sends a request sends
//! it after the event was queued; we read the request, and only then ask.
//! So every change made before the request was sent is seen by the hit
//! that answers it, in every mode: the thread that serves a request is
//! the one that read it, or got it from the one that did.
//!
//! What is watched, per cached file (each watch added before the file's
//! identity is checked and its bytes are read, so a change in between is
//! an event too):
//! - the file itself ([`FILE_EVENTS`]): a write, a truncate, a chmod, a
//!   link or an unlink of it, through any of its names or mounts;
//! - every directory from the root down to it ([`DIRECTORY_EVENTS`]): a
//!   rename or a delete in any of them (of the file, or of a directory on
//!   its path, which changes what the path names), and a chmod (a
//!   directory made unsearchable). A path through a symlinked directory
//!   is not watched (the directories between the link and its target
//!   would go unseen): it falls back to `fstatat`.
//!
//! Any event at all, or a full queue, starts a new generation: every entry
//! made before it is stale, and goes at its next hit. So a dev server whose
//! files change often loses its cache often, never its freshness. A file
//! created next to a cached one changes nothing and wakes nothing.
//!
//! Where it is not used, and each entry is revalidated with its own
//! `fstatat` instead ([`Freshness::Stat`](super::cache::Freshness)):
//! - on file systems where a change need not pass through this kernel
//!   (NFS, SMB, 9p as in WSL2's `/mnt/c`, FUSE and virtiofs as in Docker
//!   Desktop's bind mounts, VirtualBox shares): a file is watched only if
//!   it and every directory on its path are on one of [`INOTIFY_SEES_ALL`];
//! - when inotify refuses (`fs.inotify.max_user_instances` or
//!   `max_user_watches` reached, `/proc` not mounted): that entry, or all
//!   of them, fall back, and serving goes on.
//!
//! Bounds: a worker holds at most [`MAX_WATCHES`] watches; past that it
//! starts over with a new instance (a new generation), so watches of
//! files long evicted don't pile up against the per-user limit.
//!
//! Left uncovered: writes through a shared `mmap`, which queue no event
//! (nor move the times `fstatat` compares at once; the normal path, for a
//! file not cached, shows them); a file system mounted or unmounted over
//! a directory on the path, which queues no event (`fstatat` would see
//! the other inode; it takes privilege, as in a container or an
//! automount); and changes made beneath an overlay, straight in its upper
//! or lower directory, which overlayfs itself leaves undefined.
//!
//! Once inotify refuses to start (instances), the worker stays on
//! `fstatat` for its life; a watch refused costs only its entry.
//!
//! Threads (thread and thread-loops modes) share the worker's one watch
//! and take its lock for every hit's `epoll_wait` (a fill holds it while
//! it adds its watches). Not measurable so far (thread mode served 0.98x
//! process mode's requests in the benchmark); if it ever is, the check can
//! go lock-free: an atomic generation, bumped before the queue is drained
//! and read after an empty wait.
//!
//! The instance is made lazily, by the first file cached, in the worker:
//! never in the master, whose forks would share one queue (and one
//! worker's read would take the events the others needed).

use std::collections::HashSet;
use std::fs::File;
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use nix::sys::statfs::{self, FsType};

use super::confined::ConfinedRoot;

/// Most watches one worker holds before it starts over (a new instance,
/// a new generation: every entry is filled again): room for a site of
/// several hundred small files in a few directories. Watches are a
/// per-user limit (`fs.inotify.max_user_watches`, 8192 on kernels before
/// 5.11) that live reload's watcher and the developer's other tools draw
/// on too; a watch refused only makes that entry revalidate by `fstatat`.
pub(super) const MAX_WATCHES: usize = 1024;

/// What changes a cached file: its bytes, its size, its mode or its links
/// (`IN_ATTRIB` covers chmod, utimes, link and unlink), or it going.
const FILE_EVENTS: AddWatchFlags = AddWatchFlags::IN_MODIFY
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_CLOSE_WRITE)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);

/// What changes what a path through a directory names: an entry renamed
/// or deleted, the directory's (or an entry's) mode, the directory going.
/// Not `IN_MODIFY`: a file written next to a cached one (a log) is no
/// change to it; the cached file's own watch sees its writes.
const DIRECTORY_EVENTS: AddWatchFlags = AddWatchFlags::IN_MOVED_FROM
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_DELETE)
    .union(AddWatchFlags::IN_ATTRIB)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF)
    .union(AddWatchFlags::IN_ONLYDIR);

/// File systems whose every change is made by this kernel (local disks,
/// memory, an overlay of them), so inotify sees it. ZFS and ramfs by
/// their magic numbers (nix names neither).
const INOTIFY_SEES_ALL: [FsType; 8] = [
    statfs::EXT4_SUPER_MAGIC,
    statfs::XFS_SUPER_MAGIC,
    statfs::BTRFS_SUPER_MAGIC,
    statfs::TMPFS_MAGIC,
    statfs::F2FS_SUPER_MAGIC,
    statfs::OVERLAYFS_SUPER_MAGIC,
    FsType(0x2fc1_2fc1), // ZFS
    FsType(0x8584_58f6), // ramfs
];

/// See the module docs.
pub(super) struct CacheWatch {
    state: Mutex<State>,
}

struct State {
    /// Bumped by every event and every new instance: an entry is fresh
    /// only while this is the generation it was made in.
    generation: u64,
    instance: Instance,
}

enum Instance {
    /// No file cached yet.
    NotYet,
    Open(Watches),
    /// inotify or epoll refused (or tests turned it off): every entry
    /// revalidates by `fstatat`.
    Refused,
}

struct Watches {
    inotify: Inotify,
    /// Holds only the inotify fd: a zero-timeout wait on it is the
    /// cheapest "anything pending?" the kernel offers.
    pending: Epoll,
    /// Distinct watches held (the kernel gives an inode one descriptor).
    held: HashSet<WatchDescriptor>,
}

impl Default for CacheWatch {
    fn default() -> CacheWatch {
        CacheWatch {
            state: Mutex::new(State {
                generation: 0,
                instance: Instance::NotYet,
            }),
        }
    }
}

impl CacheWatch {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing under the lock panics halfway; a poisoned lock is fine.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Never watches, as if inotify had refused: every entry revalidates
    /// by `fstatat` (for tests of that strategy).
    #[cfg(test)]
    pub(super) fn turn_off(&self) {
        self.state().instance = Instance::Refused;
    }

    /// Watches `rel` (opened as `file`) and the directories on its path,
    /// and returns the generation an entry made from what is read next
    /// belongs to; `None` if it can't be watched (the entry then
    /// revalidates by `fstatat`). Call it before checking the identity of
    /// `rel` and reading its bytes.
    pub(super) fn watch(&self, root: &ConfinedRoot, rel: &[u8], file: &File) -> Option<u64> {
        if !sees_all(statfs::fstatfs(file)) {
            return None;
        }
        let mut state = self.state();
        let state = &mut *state;
        let full = matches!(&state.instance, Instance::Open(w) if w.held.len() >= MAX_WATCHES);
        if matches!(state.instance, Instance::NotYet) || full {
            state.generation += 1;
            state.instance = match Watches::open() {
                Ok(watches) => Instance::Open(watches),
                Err(err) => {
                    log::info!(
                        "static: inotify unavailable ({err}); cached files are \
                         revalidated with fstatat on every hit"
                    );
                    Instance::Refused
                }
            };
        }
        let Instance::Open(watches) = &mut state.instance else {
            return None;
        };
        // Taken before the first watch: an event from here on is news.
        let generation = state.generation;
        // The root through its fd (a magic link, followed), then each
        // directory on the path, never through a symlink: a symlinked
        // directory would be watched at its target, and the directories
        // between the link and its target not at all.
        let mut path = root.proc_path();
        watches.add_directory(&path, AddWatchFlags::empty())?;
        let mut rest = rel;
        while let Some(slash) = rest.iter().position(|&b| b == b'/') {
            push_component(&mut path, &rest[..slash]);
            watches.add_directory(&path, AddWatchFlags::IN_DONT_FOLLOW)?;
            rest = &rest[slash + 1..];
        }
        push_component(&mut path, rest);
        watches.add(&path, FILE_EVENTS | AddWatchFlags::IN_DONT_FOLLOW)?;
        Some(generation)
    }

    /// Whether nothing watched has changed since `generation` began:
    /// takes every pending event first (see the module docs for why that
    /// makes a hit fresh). One `epoll_wait` when nothing is pending.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        let mut state = self.state();
        let changed = match &state.instance {
            Instance::Open(watches) => watches.take_pending(),
            // No instance: no entry has a generation from it.
            _ => true,
        };
        if changed {
            state.generation += 1;
        }
        state.generation == generation
    }
}

impl Watches {
    fn open() -> nix::Result<Watches> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let pending = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        pending.add(&inotify, EpollEvent::new(EpollFlags::EPOLLIN, 0))?;
        Ok(Watches {
            inotify,
            pending,
            held: HashSet::new(),
        })
    }

    /// Watches a directory on a cached file's path, if it is on a file
    /// system inotify sees all of (a directory of another one, a local disk
    /// mounted inside a network share, could be renamed unseen) and, with
    /// `IN_DONT_FOLLOW`, if it is a directory and not a symlink to one
    /// (`IN_ONLYDIR` then refuses it).
    fn add_directory(&mut self, path: &std::path::Path, follow: AddWatchFlags) -> Option<()> {
        if !sees_all(statfs::statfs(path)) {
            log::debug!("static: not watching {path:?}: not a local file system");
            return None;
        }
        self.add(path, DIRECTORY_EVENTS | follow)
    }

    fn add(&mut self, path: &std::path::Path, events: AddWatchFlags) -> Option<()> {
        match self.inotify.add_watch(path, events) {
            Ok(wd) => {
                self.held.insert(wd);
                Some(())
            }
            Err(err) => {
                log::debug!("static: not watching {path:?}: {err}");
                None
            }
        }
    }

    /// Whether any event was pending (all of them are taken).
    fn take_pending(&self) -> bool {
        let mut ready = [EpollEvent::empty()];
        match self.pending.wait(&mut ready, EpollTimeout::ZERO) {
            Ok(0) => false,
            // Pending, or the wait failed (EINTR): take what there is and
            // count it as a change either way.
            _ => {
                loop {
                    match self.inotify.read_events() {
                        Ok(events) if !events.is_empty() => {}
                        Ok(_) | Err(Errno::EAGAIN) => break,
                        Err(Errno::EINTR) => {}
                        Err(err) => {
                            log::warn!("static: reading cache watch events: {err}");
                            break;
                        }
                    }
                }
                true
            }
        }
    }
}

/// Whether a `statfs` says the file system is one inotify sees all of.
fn sees_all(fs: nix::Result<statfs::Statfs>) -> bool {
    fs.is_ok_and(|fs| INOTIFY_SEES_ALL.contains(&fs.filesystem_type()))
}

fn push_component(path: &mut std::path::PathBuf, component: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    path.push(std::ffi::OsStr::from_bytes(component));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileExt, PermissionsExt};
    use std::path::{Path, PathBuf};

    /// A throwaway directory on a file system inotify sees all of: the
    /// temp dir if it is one, else `/dev/shm`; `None` (the test can't run
    /// here) if neither is.
    struct WatchedDir {
        path: PathBuf,
    }

    impl WatchedDir {
        fn new(name: &str) -> Option<WatchedDir> {
            let bases = [std::env::temp_dir(), PathBuf::from("/dev/shm")];
            let base = bases.into_iter().find(|base| {
                statfs::statfs(base.as_path())
                    .is_ok_and(|fs| INOTIFY_SEES_ALL.contains(&fs.filesystem_type()))
            });
            let Some(base) = base else {
                eprintln!("skipped: no temp dir on a file system inotify sees all of");
                return None;
            };
            let path = base.join(format!("forkpool-watch-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(path.join("a/b")).unwrap();
            std::fs::write(path.join("a/b/f.txt"), b"cached").unwrap();
            std::fs::write(path.join("a/sibling.txt"), b"other").unwrap();
            Some(WatchedDir { path })
        }

        fn root(&self) -> ConfinedRoot {
            ConfinedRoot::open(&self.path).unwrap()
        }

        /// Watches `rel` as the cache would, and returns its generation.
        fn watch(&self, watch: &CacheWatch, root: &ConfinedRoot, rel: &str) -> u64 {
            let file = File::open(self.path.join(rel)).unwrap();
            watch
                .watch(root, rel.as_bytes(), &file)
                .expect("a file on this file system is watched")
        }
    }

    /// Overwrites the start of the file at `path` in place (same inode).
    fn overwrite(path: &Path, bytes: &[u8]) {
        let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        file.write_all_at(bytes, 0).unwrap();
    }

    impl Drop for WatchedDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }

    #[test]
    fn a_watched_file_is_current_until_it_changes() {
        let Some(dir) = WatchedDir::new("edit") else {
            return;
        };
        let (watch, root) = (CacheWatch::default(), dir.root());
        let generation = dir.watch(&watch, &root, "a/b/f.txt");
        assert!(watch.is_current(generation));
        assert!(watch.is_current(generation), "asking changes nothing");
        overwrite(&dir.path.join("a/b/f.txt"), b"C");
        assert!(!watch.is_current(generation), "the write was seen");
        assert!(!watch.is_current(generation), "and stays seen");
        // Watched again: a new generation, current until the next change.
        let again = dir.watch(&watch, &root, "a/b/f.txt");
        assert!(again > generation && watch.is_current(again));
    }

    #[test]
    fn writes_and_new_files_beside_a_watched_file_change_nothing() {
        let Some(dir) = WatchedDir::new("beside") else {
            return;
        };
        let (watch, root) = (CacheWatch::default(), dir.root());
        let generation = dir.watch(&watch, &root, "a/b/f.txt");
        let sibling = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path.join("a/sibling.txt"))
            .unwrap();
        sibling.write_all_at(b"more", 5).unwrap();
        drop(sibling);
        std::fs::write(dir.path.join("a/b/new.txt"), b"new").unwrap();
        std::fs::create_dir(dir.path.join("a/c")).unwrap();
        assert!(watch.is_current(generation));
    }

    #[test]
    fn every_change_to_what_the_path_names_is_seen() {
        type Change = fn(&Path);
        let changes: [(&str, Change); 8] = [
            ("rename over the file", |p| {
                std::fs::write(p.join("x.tmp"), b"other!").unwrap();
                std::fs::rename(p.join("x.tmp"), p.join("a/b/f.txt")).unwrap();
            }),
            ("delete the file", |p| {
                std::fs::remove_file(p.join("a/b/f.txt")).unwrap()
            }),
            ("chmod the file", |p| {
                let mode = std::fs::Permissions::from_mode(0o600);
                std::fs::set_permissions(p.join("a/b/f.txt"), mode).unwrap();
            }),
            ("truncate the file", |p| {
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(p.join("a/b/f.txt"))
                    .unwrap();
                file.set_len(0).unwrap();
            }),
            ("hard link to it from an unwatched place", |p| {
                std::fs::hard_link(p.join("a/b/f.txt"), p.join("elsewhere")).unwrap()
            }),
            ("move a directory on its path away", |p| {
                std::fs::rename(p.join("a"), p.join("a.old")).unwrap()
            }),
            ("move a directory away and make another", |p| {
                std::fs::rename(p.join("a/b"), p.join("b.old")).unwrap();
                std::fs::create_dir(p.join("a/b")).unwrap();
            }),
            ("chmod a directory on its path", |p| {
                let mode = std::fs::Permissions::from_mode(0o700);
                std::fs::set_permissions(p.join("a"), mode).unwrap();
            }),
        ];
        for (i, (what, change)) in changes.into_iter().enumerate() {
            let Some(dir) = WatchedDir::new(&format!("change{i}")) else {
                return;
            };
            let (watch, root) = (CacheWatch::default(), dir.root());
            let generation = dir.watch(&watch, &root, "a/b/f.txt");
            change(&dir.path);
            assert!(!watch.is_current(generation), "{what}");
        }
    }

    #[test]
    fn a_write_through_another_name_is_seen() {
        let Some(dir) = WatchedDir::new("alias") else {
            return;
        };
        std::fs::hard_link(dir.path.join("a/b/f.txt"), dir.path.join("alias")).unwrap();
        let (watch, root) = (CacheWatch::default(), dir.root());
        let generation = dir.watch(&watch, &root, "a/b/f.txt");
        overwrite(&dir.path.join("alias"), b"C");
        assert!(!watch.is_current(generation));
    }

    #[test]
    fn past_its_bound_it_starts_over_with_a_new_generation() {
        let Some(dir) = WatchedDir::new("many") else {
            return;
        };
        for i in 0..MAX_WATCHES {
            std::fs::write(dir.path.join(format!("{i}")), b"x").unwrap();
        }
        let (watch, root) = (CacheWatch::default(), dir.root());
        let first = dir.watch(&watch, &root, "a/b/f.txt");
        // The root, a, a/b and f.txt, then one each.
        for i in 0..MAX_WATCHES - 4 {
            assert_eq!(dir.watch(&watch, &root, &format!("{i}")), first);
        }
        assert!(watch.is_current(first));
        let next = dir.watch(&watch, &root, &format!("{}", MAX_WATCHES - 4));
        assert!(next > first && !watch.is_current(first) && watch.is_current(next));
        match &watch.state().instance {
            Instance::Open(watches) => assert_eq!(watches.held.len(), 2, "the root and the file"),
            _ => panic!("not watching"),
        }
    }

    #[test]
    fn a_file_system_inotify_may_not_see_all_of_is_not_watched() {
        // procfs: its files change with no write through this kernel's
        // VFS, like a network share's.
        let root = ConfinedRoot::open(Path::new("/proc/self")).unwrap();
        let file = File::open("/proc/self/status").unwrap();
        assert_eq!(CacheWatch::default().watch(&root, b"status", &file), None);
    }

    #[test]
    fn a_local_file_reached_through_a_directory_not_watched_is_not_watched() {
        let Some(dir) = WatchedDir::new("through") else {
            return;
        };
        // /proc (procfs) as the root, the file through /proc/PID/root.
        let root = ConfinedRoot::open(Path::new("/proc")).unwrap();
        let file = File::open(dir.path.join("a/b/f.txt")).unwrap();
        let through = format!(
            "{}/root{}/a/b/f.txt",
            std::process::id(),
            dir.path.display()
        );
        assert_eq!(
            CacheWatch::default().watch(&root, through.as_bytes(), &file),
            None
        );
    }

    #[test]
    fn a_path_through_a_symlinked_directory_is_not_watched() {
        let Some(dir) = WatchedDir::new("linked") else {
            return;
        };
        // `l` -> `a/b`: watching `l/f.txt` would watch `a/b` (the target)
        // and the root, never `a`, whose renames change what `l/` names.
        std::os::unix::fs::symlink("a/b", dir.path.join("l")).unwrap();
        let (watch, root) = (CacheWatch::default(), dir.root());
        let file = File::open(dir.path.join("l/f.txt")).unwrap();
        assert_eq!(watch.watch(&root, b"l/f.txt", &file), None);
        // The same file by its own path is watched.
        dir.watch(&watch, &root, "a/b/f.txt");
    }

    #[test]
    fn turned_off_it_watches_nothing() {
        let Some(dir) = WatchedDir::new("off") else {
            return;
        };
        let (watch, root) = (CacheWatch::default(), dir.root());
        watch.turn_off();
        let file = File::open(dir.path.join("a/b/f.txt")).unwrap();
        assert_eq!(watch.watch(&root, b"a/b/f.txt", &file), None);
    }
}
