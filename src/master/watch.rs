//! Live reload's one watcher: the master watches the root with inotify and
//! publishes each burst of changes on the change feed.
//!
//! Why inotify by hand, in the master's own loop, rather than the `notify`
//! crate: `notify` runs its watcher on a thread of its own, and the master
//! forks. A child gets only the forking thread; whatever lock the other
//! thread held at that moment (the logger's, an allocator arena's) stays
//! locked in the child forever. So the master stays single-threaded: the
//! inotify fd joins the signal fd in the poll it already sleeps in, and
//! this module is the ~200 lines that crate would have saved.
//!
//! What it watches: every directory under the root, recursively, as it is
//! now and as directories come and go (a new one is watched, with what it
//! already holds; one moved out of the root is watched no more; after a
//! queue overflow the whole tree is walked again). Not dot-directories (`.git` changes on every `git
//! status`, and is never served) nor `node_modules` (huge, and changed by
//! installs, not edits); not symlinks to directories (they may loop).
//! What counts as a change: a file written and closed, created, deleted,
//! moved in or out, or touched (`IN_ATTRIB`), except names no page can be
//! made of (dotfiles, editor swap and backup files: `.x.swp`, `x~`, vim's
//! `4913` probe).
//!
//! Debounce: an editor's save is several events (write a temporary file,
//! rename it over the old one, delete the backup); a build writes many
//! files. A burst is published once, [`QUIET`] after its last event, or
//! [`MOST_DELAY`] after its first if it never goes quiet. A burst that
//! touched only stylesheets is published as [`Change::Stylesheets`] (the
//! page swaps them without a reload), anything else as a reload.
//!
//! Limits: inotify watches are a per-user kernel resource
//! (`fs.inotify.max_user_watches`); when they run out, the directories not
//! yet watched are named in one warning and changes there don't reload.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};

use crate::changes::{Change, ChangeFeed};

/// A burst is over when no event came for this long.
pub(super) const QUIET: Duration = Duration::from_millis(50);
/// A burst that never goes quiet (a long build) is published this long
/// after its first event anyway, and again as it goes on.
pub(super) const MOST_DELAY: Duration = Duration::from_millis(300);
/// Directories watched at most, whatever the kernel allows: a root with
/// more is not a site being edited by hand.
const MOST_DIRECTORIES: usize = 20_000;

/// The events that mean a file's content or presence changed.
fn change_events() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_DELETE
        | AddWatchFlags::IN_MOVED_FROM
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_ATTRIB
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

/// The burst being collected.
#[derive(Debug, Clone, Copy)]
struct Burst {
    first: Instant,
    last: Instant,
    /// Every change so far was a stylesheet's.
    stylesheets_only: bool,
}

/// The watcher of one root; see the module docs.
pub(super) struct Watcher {
    inotify: Inotify,
    /// The root, walked again when events were lost.
    root: PathBuf,
    /// Each watched directory's path, for watching what appears inside it.
    dirs: HashMap<WatchDescriptor, PathBuf>,
    feed: ChangeFeed,
    burst: Option<Burst>,
    /// The watch limit was hit (warned about once).
    full: bool,
}

impl Watcher {
    /// Watches `root` and everything below it, publishing on `feed`.
    pub(super) fn start(root: &Path, feed: ChangeFeed) -> io::Result<Watcher> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        let mut watcher = Watcher {
            inotify,
            root: root.to_path_buf(),
            dirs: HashMap::new(),
            feed,
            burst: None,
            full: false,
        };
        watcher.watch_tree(root.to_path_buf())?;
        log::info!(
            "live reload: watching {} director{} under {}",
            watcher.dirs.len(),
            if watcher.dirs.len() == 1 { "y" } else { "ies" },
            root.display()
        );
        Ok(watcher)
    }

    /// The fd to poll for readability.
    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    /// Watches `top` and the directories below it. Only a failure to watch
    /// `top` itself is an error (the root must be watchable); below it, a
    /// directory that vanished meanwhile is skipped.
    fn watch_tree(&mut self, top: PathBuf) -> io::Result<()> {
        let mut pending = vec![top];
        let mut first = true;
        while let Some(dir) = pending.pop() {
            if self.dirs.len() >= MOST_DIRECTORIES {
                let why = format!("forkpool watches at most {MOST_DIRECTORIES} directories");
                self.warn_full(&dir, &why);
                return Ok(());
            }
            match self.inotify.add_watch(&dir, change_events()) {
                Ok(wd) => {
                    self.dirs.insert(wd, dir.clone());
                }
                Err(Errno::ENOSPC) => {
                    self.warn_full(&dir, "fs.inotify.max_user_watches is reached");
                    return Ok(());
                }
                Err(err) if first => return Err(err.into()),
                Err(_) => continue, // gone already, or not a directory now
            }
            first = false;
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // file_type() doesn't follow symlinks: a link to a
                // directory is not descended into.
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if is_dir && watched_directory(&entry.file_name()) {
                    pending.push(entry.path());
                }
            }
        }
        Ok(())
    }

    fn warn_full(&mut self, dir: &Path, why: &str) {
        if !self.full {
            self.full = true;
            log::warn!(
                "live reload: {why}; changes in {} and the directories not watched yet \
                 will not reload pages",
                dir.display()
            );
        }
    }

    /// Takes every pending inotify event; a change starts or extends the
    /// burst, a new directory is watched.
    pub(super) fn read(&mut self, now: Instant) {
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => continue,
                Err(err) => {
                    log::warn!("live reload: reading inotify events: {err}");
                    return;
                }
            };
            for event in events {
                if event.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    // Events were lost, directories that appeared among
                    // them too: look at the whole tree again, and reload.
                    let _ = self.watch_tree(self.root.clone());
                    self.note(now, false);
                    continue;
                }
                if event.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&event.wd); // its directory is gone
                    continue;
                }
                let Some(name) = event.name else { continue };
                let is_dir = event.mask.contains(AddWatchFlags::IN_ISDIR);
                let appeared = event
                    .mask
                    .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO);
                if is_dir
                    && event.mask.contains(AddWatchFlags::IN_MOVED_FROM)
                    && let Some(parent) = self.dirs.get(&event.wd)
                {
                    // Moved away, perhaps out of the root: its watches go
                    // (a move within the root is watched again at its
                    // IN_MOVED_TO, which follows).
                    self.unwatch_tree(&parent.join(&name));
                }
                if is_dir
                    && appeared
                    && watched_directory(&name)
                    && let Some(parent) = self.dirs.get(&event.wd)
                {
                    // Files may be in it already: the burst below covers
                    // them (the page reloads once).
                    let _ = self.watch_tree(parent.join(&name));
                }
                if is_dir && !watched_directory(&name) || !is_dir && !page_material(&name) {
                    continue;
                }
                self.note(now, !is_dir && is_stylesheet(&name));
            }
        }
    }

    /// Stops watching `top` and every directory below it.
    fn unwatch_tree(&mut self, top: &Path) {
        let gone: Vec<WatchDescriptor> = self
            .dirs
            .iter()
            .filter(|(_, dir)| dir.starts_with(top))
            .map(|(wd, _)| *wd)
            .collect();
        for wd in gone {
            let _ = self.inotify.rm_watch(wd);
            self.dirs.remove(&wd);
        }
    }

    fn note(&mut self, now: Instant, stylesheet: bool) {
        let burst = self.burst.get_or_insert(Burst {
            first: now,
            last: now,
            stylesheets_only: true,
        });
        burst.last = now;
        burst.stylesheets_only &= stylesheet;
    }

    /// When the burst being collected is due, if there is one.
    pub(super) fn due(&self) -> Option<Instant> {
        self.burst
            .map(|burst| (burst.last + QUIET).min(burst.first + MOST_DELAY))
    }

    /// Publishes the burst if it is due.
    pub(super) fn publish_if_due(&mut self, now: Instant) {
        let (Some(due), Some(burst)) = (self.due(), self.burst) else {
            return;
        };
        if now < due {
            return;
        }
        self.burst = None;
        let change = match burst.stylesheets_only {
            true => Change::Stylesheets,
            false => Change::Reload,
        };
        log::debug!("live reload: {}", change.event_name());
        self.feed.publish(change);
    }
}

/// A directory worth watching (by its name).
fn watched_directory(name: &OsStr) -> bool {
    let name = name.as_bytes();
    !name.starts_with(b".") && name != b"node_modules"
}

/// A file name a page may be made of: not a dotfile, nor an editor's swap,
/// backup or probe file.
fn page_material(name: &OsStr) -> bool {
    let name = name.as_bytes();
    !(name.starts_with(b".")
        || name.ends_with(b"~")
        || name.ends_with(b".swp")
        || name.ends_with(b".swx")
        || name == b"4913")
}

fn is_stylesheet(name: &OsStr) -> bool {
    Path::new(name)
        .extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("css"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn feed() -> ChangeFeed {
        let word: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        ChangeFeed::new(word).unwrap()
    }

    struct TempTree(PathBuf);

    impl TempTree {
        fn new() -> TempTree {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = &N;
            let path = std::env::temp_dir().join(format!(
                "forkpool-watch-{}-{:?}-{}",
                std::process::id(),
                std::thread::current().id(),
                n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir_all(path.join("css")).unwrap();
            std::fs::create_dir_all(path.join(".git")).unwrap();
            std::fs::create_dir_all(path.join("node_modules/x")).unwrap();
            TempTree(path)
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Reads events until a burst is due and publishes it, or until a
    /// deadline: the change published, if any.
    fn next_change(watcher: &mut Watcher, feed: &ChangeFeed, within: Duration) -> Option<Change> {
        let before = feed.generation();
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut fds = [nix::poll::PollFd::new(
                watcher.fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10u16));
            let now = Instant::now();
            watcher.read(now);
            watcher.publish_if_due(now);
            if feed.generation() != before {
                return feed.news_since(before).map(|(change, _)| change);
            }
        }
        None
    }

    const WAIT: Duration = Duration::from_secs(5);

    #[test]
    fn a_burst_is_one_change_and_its_kind_is_what_it_touched() {
        let tree = TempTree::new();
        let feed = feed();
        let mut watcher = Watcher::start(&tree.0, feed).unwrap();
        assert_eq!(
            watcher.dirs.len(),
            2,
            "the root and css/, no .git or node_modules"
        );
        std::fs::write(tree.0.join("css/site.css"), "a {}").unwrap();
        std::fs::write(tree.0.join("CSS2.CSS"), "a {}").unwrap();
        assert_eq!(
            next_change(&mut watcher, &feed, WAIT),
            Some(Change::Stylesheets)
        );
        assert_eq!(feed.generation(), 1, "two writes, one burst");
        // An editor's save: write a temporary, rename it over, along with
        // a stylesheet: a reload.
        std::fs::write(tree.0.join("css/site.css"), "b {}").unwrap();
        std::fs::write(tree.0.join("index.html.tmp"), "<p>").unwrap();
        std::fs::rename(tree.0.join("index.html.tmp"), tree.0.join("index.html")).unwrap();
        assert_eq!(next_change(&mut watcher, &feed, WAIT), Some(Change::Reload));
        assert_eq!(feed.generation(), 2);
    }

    #[test]
    fn new_directories_are_watched_and_noise_is_not_a_change() {
        let tree = TempTree::new();
        let feed = feed();
        let mut watcher = Watcher::start(&tree.0, feed).unwrap();
        for noise in [".index.html.swp", "index.html~", "4913", ".env"] {
            std::fs::write(tree.0.join(noise), "x").unwrap();
        }
        std::fs::write(tree.0.join(".git/index"), "x").unwrap();
        std::fs::write(tree.0.join("node_modules/x/a.js"), "x").unwrap();
        let quiet = Duration::from_millis(300);
        assert_eq!(next_change(&mut watcher, &feed, quiet), None);
        std::fs::create_dir_all(tree.0.join("new/deeper")).unwrap();
        assert_eq!(next_change(&mut watcher, &feed, WAIT), Some(Change::Reload));
        std::fs::write(tree.0.join("new/deeper/page.html"), "x").unwrap();
        assert_eq!(next_change(&mut watcher, &feed, WAIT), Some(Change::Reload));
        // A directory moved out of the root is watched no more: a change
        // in it, out there, is no change here.
        let out = TempTree::new();
        std::fs::create_dir(tree.0.join("leaving")).unwrap();
        assert_eq!(next_change(&mut watcher, &feed, WAIT), Some(Change::Reload));
        let watched_before = watcher.dirs.len();
        std::fs::rename(tree.0.join("leaving"), out.0.join("left")).unwrap();
        assert_eq!(next_change(&mut watcher, &feed, WAIT), Some(Change::Reload));
        assert_eq!(watcher.dirs.len(), watched_before - 1);
        std::fs::write(out.0.join("left/page.html"), "x").unwrap();
        assert_eq!(next_change(&mut watcher, &feed, quiet), None);
        // A removed directory's watch goes with it.
        let watched = watcher.dirs.len();
        std::fs::remove_dir_all(tree.0.join("new")).unwrap();
        assert_eq!(next_change(&mut watcher, &feed, WAIT), Some(Change::Reload));
        assert_eq!(watcher.dirs.len(), watched - 2);
    }

    #[test]
    fn a_burst_that_never_goes_quiet_is_published_anyway() {
        let tree = TempTree::new();
        let feed = feed();
        let mut watcher = Watcher::start(&tree.0, feed).unwrap();
        let start = Instant::now();
        watcher.note(start, false);
        watcher.note(start + Duration::from_millis(40), false);
        assert_eq!(watcher.due(), Some(start + Duration::from_millis(90)));
        // An event every 40 ms: never quiet, due at MOST_DELAY.
        for n in 2..20 {
            watcher.note(start + Duration::from_millis(40 * n), false);
        }
        assert_eq!(watcher.due(), Some(start + MOST_DELAY));
        watcher.publish_if_due(start + MOST_DELAY - Duration::from_millis(1));
        assert_eq!(feed.generation(), 0);
        watcher.publish_if_due(start + MOST_DELAY);
        assert_eq!(feed.generation(), 1);
        assert_eq!(watcher.due(), None);
    }

    #[test]
    fn a_root_that_cannot_be_watched_is_an_error() {
        let missing = std::env::temp_dir().join("forkpool-watch-missing-root");
        assert!(Watcher::start(&missing, feed()).is_err());
    }
}
