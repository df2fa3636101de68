//! The worker's cache of small files: their bytes and prebuilt headers,
//! checked for freshness on every hit.
//!
//! What it does: keeps, per decoded relative path that passed the request
//! flow's vetting (never a hidden path unless shown), a file of at most
//! [`MAX_FILE`] bytes as it was read: its bytes, its identity (device,
//! inode, mode, size, mtime and ctime with nanoseconds), its
//! `Content-Type`, validators and whether its answer says `Vary`. The
//! bounds: [`MAX_ENTRIES`] entries and [`MAX_BYTES`] bytes per worker,
//! over [`SHARDS`] mutex-guarded shards (the threads of a worker share one
//! cache), each evicting by the clock (second chance). No file descriptor
//! is kept: the bytes are the point, and a kept fd would only trade
//! `openat2` for a `dup`, cost an fd per entry against the connections'
//! limit, and keep reading a file chmod'ed unreadable.
//!
//! A hit is fresh by one of two checks ([`Freshness`]), each one system
//! call; anything changed (an edit in place, a rename over it, a delete,
//! a chmod, a symlink in its place) is a miss, the entry goes, and the
//! request takes the normal path (`openat2` with `RESOLVE_BENEATH`), which
//! decides as if there were no cache:
//! - watched (on local file systems, the usual case): the worker's inotify
//!   instance watches the file and every directory on its path, and a hit
//!   asks it whether anything happened with a zero-timeout `epoll_wait`
//!   (see `cache_watch`, which says why that is fresh);
//! - by status (where inotify can't see every change, or refuses): an
//!   `fstatat` of the path beneath the root fd with `AT_SYMLINK_NOFOLLOW`,
//!   compared with the identity.
//!
//! Freshness by status rests on this: every change to a file changes its
//! ctime (write, truncate, chmod, link, unlink, rename of it), and a
//! rename over it or a new file changes the inode. But a ctime only moves
//! by the file system's timestamp tick (the kernel's coarse clock, one
//! jiffy, on ext4, tmpfs, xfs and btrfs before multigrain timestamps in
//! Linux 6.13; whole seconds on ext3 or small ext4 inodes; 2 s on FAT), so
//! two same-size writes within one tick look alike. So a file is only
//! cached once its ctime is at least [`SETTLE_FINE`] old ([`SETTLE_COARSE`]
//! if its timestamps have no sub-second part), read on the coarse clock
//! before its bytes are read: every write that could still share its ctime
//! happened before that, and any later one stamps a later ctime (as git's
//! index handles "racily clean" files). A file just saved goes the normal
//! way until it settles. Watched entries settle too: their validators
//! (ETag, Last-Modified) come from the same times, and a 304 must not
//! answer for bytes that changed within one tick. Left uncovered: a single
//! `write(2)` still copying into the file when it settles (over 50 ms for
//! at most 16 KiB; a watched entry sees its event), a wall clock stepped
//! forward, and a remote file system whose server clock lags ours by more
//! than the margin; also writes through a shared `mmap`, which stamp times
//! late and queue no inotify event (the normal path would show them).
//!
//! Confinement: `fstatat` follows symlinks in the path's directories,
//! where `openat2` would refuse some (out of the root, or absolute). The
//! identity is what keeps that from mattering: a directory swapped for a
//! symlink leads to another inode (a miss, then `openat2` refuses) unless
//! it leads to the very inode we cached with the same ctime. An unchanged
//! ctime means no link or unlink touched it since, so it has every name it
//! had when we read it through the root: the same bytes we served, with
//! the same mode, that any client could have fetched then. Only the path
//! to it changed. The last component is never followed (`NOFOLLOW`), and a
//! path whose last component is a symlink is never cached (its `fstatat`
//! identity is the link's, not the file's). A watched entry is checked the
//! same way once, after its watches are in place; from then on, a swap of
//! any directory on its path is a rename or delete in a watched directory.
//!
//! Which requests it answers ([`StaticFiles::cacheable`], and per entry
//! [`negotiates`]): GET or HEAD (the only methods static files see)
//! without `Range` or a trailing slash, not a page live reload tags, and
//! none that negotiates a coding.
//!
//! What it doesn't: cache directories, listings, large files or compressed
//! bodies.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::stat::FileStat;
use nix::time::{ClockId, clock_gettime};

use super::cache_watch::CacheWatch;
use super::compress::{negotiates, read_whole};
use super::path::is_page;
use super::validators::{Validators, not_modified};
use super::{StaticFiles, content_type, file_answer, file_name, file_not_modified};
use crate::http::{Body, Request, Response};

/// The largest file cached: small files are where per-request costs
/// (open, stat, read, close, building headers) dominate.
pub(super) const MAX_FILE: u64 = 16 * 1024;
/// Entries per worker, over all shards.
const MAX_ENTRIES: usize = 1024;
/// Cached bytes per worker, over all shards (file bytes only).
const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Independent locks: threads of a worker asking for different files
/// rarely wait for each other.
const SHARDS: usize = 8;
/// How old a ctime with nanoseconds must be to be trusted: many jiffies
/// (4 ms at HZ=250, 10 ms at HZ=100), and a 10 ms FAT-style tick.
const SETTLE_FINE: i64 = 50_000_000;
/// How old a ctime without a sub-second part must be: the file system
/// may count whole seconds (ext3) or two (FAT).
const SETTLE_COARSE: i64 = 2_000_000_000;

/// What identifies a file's state: a change to any of it is a change to
/// the file (or another file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Identity {
    dev: u64,
    ino: u64,
    mode: u32,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Identity {
    pub(super) fn of(st: &FileStat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
            mode: st.st_mode,
            size: st.st_size,
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        }
    }

    /// Whether no same-size change could still share this ctime (see the
    /// module docs): its tick is over, by the coarse clock the kernel
    /// stamps ctimes with.
    pub(super) fn settled(&self) -> bool {
        let Ok(now) = clock_gettime(ClockId::CLOCK_REALTIME_COARSE) else {
            return false;
        };
        let (secs, nsec) = self.ctime;
        let margin = if nsec == 0 && self.mtime.1 == 0 {
            SETTLE_COARSE
        } else {
            SETTLE_FINE
        };
        let age =
            i128::from(now.tv_sec() - secs) * 1_000_000_000 + i128::from(now.tv_nsec() - nsec);
        age >= i128::from(margin)
    }
}

/// A cached file: everything its plain answer needs.
pub(super) struct Entry {
    pub(super) identity: Identity,
    pub(super) bytes: Arc<[u8]>,
    pub(super) content_type: std::borrow::Cow<'static, str>,
    pub(super) validators: Validators,
    /// The answer says `Vary: Accept-Encoding` (another client could get
    /// it compressed).
    pub(super) vary: bool,
    /// How a hit knows the file is unchanged.
    pub(super) freshness: Freshness,
}

/// How a hit on an entry knows its file is unchanged (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Freshness {
    /// Watched (see `cache_watch`): fresh while no event has come since
    /// this generation began.
    Watched(u64),
    /// Not watchable: fresh while an `fstatat` of its path finds the same
    /// identity.
    Stat,
}

/// See the module docs.
pub(super) struct FileCache {
    shards: Box<[Mutex<Shard>]>,
    /// What tells a hit on a watched entry that nothing changed.
    pub(super) watch: CacheWatch,
}

/// One lock's share of the cache: a clock of slots and an index into it.
struct Shard {
    index: HashMap<Box<[u8]>, usize>,
    slots: Vec<Option<Slot>>,
    /// Slots emptied by a miss, to reuse before the clock evicts.
    free: Vec<usize>,
    /// The clock hand: the next slot eviction looks at.
    hand: usize,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
}

struct Slot {
    key: Box<[u8]>,
    entry: Arc<Entry>,
    /// Hit since the hand last passed: spared once.
    referenced: bool,
}

impl Default for FileCache {
    fn default() -> FileCache {
        FileCache::with_limits(MAX_ENTRIES, MAX_BYTES)
    }
}

impl FileCache {
    /// A cache of at most `entries` files and `bytes` bytes, split evenly
    /// over the shards.
    pub(super) fn with_limits(entries: usize, bytes: usize) -> FileCache {
        let shards = (0..SHARDS)
            .map(|_| {
                Mutex::new(Shard {
                    index: HashMap::new(),
                    slots: Vec::new(),
                    free: Vec::new(),
                    hand: 0,
                    bytes: 0,
                    max_entries: entries.div_ceil(SHARDS),
                    max_bytes: bytes / SHARDS,
                })
            })
            .collect();
        FileCache {
            shards,
            watch: CacheWatch::default(),
        }
    }

    fn shard(&self, key: &[u8]) -> std::sync::MutexGuard<'_, Shard> {
        // FNV-1a: paths are short; the map hashes again with its own keys.
        let hash = key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        self.shards[hash as usize % SHARDS]
            .lock()
            // Nothing under the lock can panic halfway: the map and the
            // clock stay consistent, so a poisoned lock is still good.
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry for `key`, if any. The lock is held for a lookup and a
    /// reference count, no system call.
    pub(super) fn get(&self, key: &[u8]) -> Option<Arc<Entry>> {
        let mut shard = self.shard(key);
        let at = *shard.index.get(key)?;
        let slot = shard.slots[at].as_mut()?;
        slot.referenced = true;
        Some(Arc::clone(&slot.entry))
    }

    /// Drops `entry` from `key`, unless another thread already put a newer
    /// one there.
    pub(super) fn remove(&self, key: &[u8], entry: &Arc<Entry>) {
        let mut shard = self.shard(key);
        let Some(&at) = shard.index.get(key) else {
            return;
        };
        if shard.slots[at]
            .as_ref()
            .is_some_and(|slot| Arc::ptr_eq(&slot.entry, entry))
        {
            shard.clear(at);
        }
    }

    /// Caches `entry` at `key`, replacing what was there, evicting others
    /// to stay within the bounds.
    pub(super) fn insert(&self, key: &[u8], entry: Arc<Entry>) {
        let mut shard = self.shard(key);
        if entry.bytes.len() > shard.max_bytes || shard.max_entries == 0 {
            return;
        }
        if let Some(&at) = shard.index.get(key) {
            shard.clear(at);
        }
        while shard.index.len() >= shard.max_entries
            || shard.bytes + entry.bytes.len() > shard.max_bytes
        {
            shard.evict_one();
        }
        shard.bytes += entry.bytes.len();
        let slot = Slot {
            key: key.into(),
            entry,
            referenced: false,
        };
        let at = match shard.free.pop() {
            Some(at) => {
                shard.slots[at] = Some(slot);
                at
            }
            None => {
                shard.slots.push(Some(slot));
                shard.slots.len() - 1
            }
        };
        shard.index.insert(key.into(), at);
    }

    /// Entries and bytes held, over all shards.
    #[cfg(test)]
    pub(super) fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), shard| {
            let shard = shard.lock().unwrap();
            (n + shard.index.len(), b + shard.bytes)
        })
    }
}

impl Shard {
    /// Empties slot `at` (which holds an entry).
    fn clear(&mut self, at: usize) {
        if let Some(slot) = self.slots[at].take() {
            self.index.remove(&slot.key);
            self.bytes -= slot.entry.bytes.len();
            self.free.push(at);
        }
    }

    /// The clock: the first slot past the hand not hit since the hand last
    /// passed it goes; hit ones are spared once. Ends within two turns.
    fn evict_one(&mut self) {
        for _ in 0..2 * self.slots.len() {
            let at = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            match &mut self.slots[at] {
                Some(slot) if slot.referenced => slot.referenced = false,
                Some(_) => return self.clear(at),
                None => {}
            }
        }
    }
}

impl StaticFiles {
    /// Whether the cache may answer `req` for `rel` (`path` as requested),
    /// as far as the request goes: no trailing slash (a directory's
    /// index goes the normal way), no range, and not a page live reload
    /// tags. Whether a coding would be negotiated depends on the size too:
    /// see [`StaticFiles::serve_cached`].
    pub(super) fn cacheable(&self, req: &Request, path: &str, rel: &[u8]) -> bool {
        !path.ends_with('/')
            && req.range.is_empty()
            && !(self.live_reload.is_some() && is_page(file_name(rel)))
    }

    /// The cached answer for `rel`, if there is one that fits `req` and
    /// `rel` still names the same unchanged file; a changed one is dropped.
    pub(super) fn serve_cached(&self, req: &Request, rel: &[u8]) -> Option<Response> {
        let entry = self.cache.get(rel)?;
        if negotiates(req, entry.bytes.len() as u64) {
            return None; // not a miss: the entry stays for plain requests
        }
        let fresh = match entry.freshness {
            Freshness::Watched(generation) => self.cache.watch.is_current(generation),
            Freshness::Stat => self
                .root
                .stat_nofollow(rel)
                .is_ok_and(|st| Identity::of(&st) == entry.identity),
        };
        if !fresh {
            self.cache.remove(rel, &entry);
            return None;
        }
        Some(answer(req, &entry))
    }

    /// A regular file opened from `rel` (status `st`) for a request the
    /// cache may answer: cached, if it may be, and answered from its entry;
    /// else served the normal way.
    pub(super) fn serve_and_cache(
        &self,
        req: &Request,
        rel: &[u8],
        file: File,
        st: &FileStat,
    ) -> Response {
        match self.fill(req, rel, &file, st) {
            Some(entry) => answer(req, &entry),
            None => self.serve_negotiated(req, rel, file, st),
        }
    }

    /// Reads `file` into a new entry for `rel`, if it is small, settled,
    /// and named by `rel` itself (not through a symlink as its last
    /// component), and caches it.
    fn fill(&self, req: &Request, rel: &[u8], file: &File, st: &FileStat) -> Option<Arc<Entry>> {
        let size = u64::try_from(st.st_size).ok()?;
        if size > MAX_FILE || negotiates(req, size) {
            return None;
        }
        let identity = Identity::of(st);
        // Before reading the bytes: see the module docs.
        if !identity.settled() {
            return None;
        }
        // Watched before the path is checked and the bytes are read: a
        // change from here on is an event.
        let freshness = match self.cache.watch.watch(&self.root, rel, file) {
            Some(generation) => Freshness::Watched(generation),
            None => Freshness::Stat,
        };
        // The path must name what we opened, so a hit's `fstatat` can
        // match: a symlink as the last component would never match (and
        // a rename since the open is caught here too).
        if Identity::of(&self.root.stat_nofollow(rel).ok()?) != identity {
            return None;
        }
        let bytes = read_whole(file, size).ok()?;
        if bytes.len() as u64 != size {
            return None; // shrunk since: its next stat differs anyway
        }
        let mime = content_type(file_name(rel));
        let entry = Arc::new(Entry {
            identity,
            bytes: bytes.into(),
            vary: self.compressed_on_the_fly(&mime, size),
            content_type: mime,
            validators: Validators::of(st),
            freshness,
        });
        self.cache.insert(rel, Arc::clone(&entry));
        Some(entry)
    }
}

/// What `serve_file` answers for the whole file (a 304 or a 200), made
/// from the entry: its bytes shared, clones of its strings, nothing
/// formatted.
fn answer(req: &Request, entry: &Entry) -> Response {
    let v = &entry.validators;
    let resp = if not_modified(&req.if_none_match, &req.if_modified_since, v) {
        file_not_modified(v.etag.clone(), v.last_modified.clone())
    } else {
        // Shared, not copied: the write queue copies it once, into its buffer.
        let body = Body::Shared(Arc::clone(&entry.bytes));
        let content_type = entry.content_type.clone();
        file_answer(
            200,
            body,
            content_type,
            v.etag.clone(),
            v.last_modified.clone(),
        )
    };
    match entry.vary {
        true => resp.header("Vary", "Accept-Encoding"),
        false => resp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::test_support::{
        HELLO, TempRoot, body_bytes, get, get_with, header,
    };
    use std::os::unix::fs::{FileExt, symlink};
    use std::path::Path;
    use std::time::{Duration, Instant};

    /// A status with every field zero (a valid `stat`: plain old data).
    fn zeroed_stat() -> FileStat {
        // SAFETY: `stat` is plain integers; all zeroes is a valid value.
        unsafe { std::mem::zeroed() }
    }

    fn entry(len: usize) -> Arc<Entry> {
        let st = zeroed_stat();
        Arc::new(Entry {
            identity: Identity::of(&st),
            bytes: vec![0; len].into(),
            content_type: "text/plain".into(),
            validators: Validators::of(&st),
            vary: false,
            freshness: Freshness::Stat,
        })
    }

    /// Waits (with a deadline) until the file at `path` may be cached:
    /// its ctime is past the settling margin.
    fn settle(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Identity::of(&nix::sys::stat::lstat(path).unwrap()).settled() {
            assert!(Instant::now() < deadline, "{path:?} never settled");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether a 200 came from the cache (its body is the entry's bytes,
    /// shared; the normal path hands the connection the file).
    fn from_cache(resp: &Response) -> bool {
        resp.status == 200 && matches!(resp.body, Body::Shared(_))
    }

    /// `GET target` twice: a fill, then a hit, both answered from the cache.
    fn cache(sf: &StaticFiles, target: &str) -> Vec<u8> {
        let mut first = get(sf, target);
        let mut second = get(sf, target);
        assert!(from_cache(&first) && from_cache(&second), "{target}");
        let body = body_bytes(&mut first);
        assert_eq!(body, body_bytes(&mut second));
        body
    }

    #[test]
    fn a_settled_file_is_answered_from_the_cache_as_it_would_be_without() {
        let root = TempRoot::new();
        std::fs::write(root.path.join("app.js"), vec![b'x'; 4000]).unwrap();
        settle(&root.path.join("hello.txt"));
        settle(&root.path.join("app.js"));
        for sf in root.servers() {
            assert_eq!(cache(&sf, "/hello.txt"), HELLO);
            assert_eq!(sf.cache.usage(), (1, HELLO.len()));
            // The uncached flow's answer for the same file: a range of all
            // of it, whose headers are a 200's plus Content-Range.
            for (target, extra) in [("/hello.txt", ""), ("/app.js", "")] {
                let hit = get_with(&sf, target, extra);
                assert!(from_cache(&hit), "{target}");
                let ranged = get_with(&sf, target, &format!("{extra}Range: bytes=0-\r\n"));
                assert_eq!(ranged.status, 206);
                let mut expected = ranged.headers.clone();
                expected.retain(|(name, _)| *name != "Content-Range");
                assert_eq!(hit.headers, expected, "{target}");
                assert_eq!(hit.body.len(), ranged.body.len());
            }
            // A compressible file over 1 KiB says Vary, as it would.
            assert_eq!(
                header(&get(&sf, "/app.js"), "Vary"),
                Some("Accept-Encoding")
            );
            // Conditionals are answered from the cached validators, with
            // the uncached 304's headers (a range doesn't change a 304).
            let etag = header(&get(&sf, "/hello.txt"), "ETag").unwrap().to_owned();
            let modified = header(&get(&sf, "/hello.txt"), "Last-Modified")
                .unwrap()
                .to_owned();
            for condition in [
                format!("If-None-Match: {etag}\r\n"),
                format!("If-Modified-Since: {modified}\r\n"),
            ] {
                let hit = get_with(&sf, "/hello.txt", &condition);
                assert_eq!(hit.status, 304, "{condition}");
                let ranged = get_with(
                    &sf,
                    "/hello.txt",
                    &format!("{condition}Range: bytes=0-\r\n"),
                );
                assert_eq!(hit.headers, ranged.headers, "{condition}");
            }
            let other = get_with(&sf, "/hello.txt", "If-None-Match: \"other\"\r\n");
            assert!(from_cache(&other));
            // HEAD: the same answer.
            let head = sf.serve(&crate::handlers::static_files::test_support::request(
                "HEAD",
                "/hello.txt",
                "",
            ));
            assert_eq!(head.headers, get(&sf, "/hello.txt").headers);
            assert_eq!(head.body.len(), HELLO.len() as u64);
        }
    }

    #[test]
    fn an_edit_in_place_with_the_same_size_is_served_at_once() {
        let root = TempRoot::new();
        let path = root.path.join("hello.txt");
        for sf in root.servers() {
            for round in 0..4u8 {
                settle(&path);
                let before = cache(&sf, "/hello.txt");
                // Same inode, same size, other bytes.
                let mut next = before.clone();
                next[0] = b'A' + round;
                let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                file.write_all_at(&next, 0).unwrap();
                drop(file);
                let mut resp = get(&sf, "/hello.txt");
                assert_eq!(body_bytes(&mut resp), next, "round {round}");
                // Just changed: not cached until it settles.
                assert!(!from_cache(&resp));
            }
        }
    }

    #[test]
    fn a_rename_over_or_a_delete_is_served_at_once() {
        let root = TempRoot::new();
        let path = root.path.join("hello.txt");
        for sf in root.servers() {
            std::fs::write(&path, HELLO).unwrap();
            settle(&path);
            cache(&sf, "/hello.txt");
            let mut swapped = HELLO.to_vec();
            swapped.reverse();
            std::fs::write(root.path.join("new.tmp"), &swapped).unwrap();
            std::fs::rename(root.path.join("new.tmp"), &path).unwrap();
            assert_eq!(body_bytes(&mut get(&sf, "/hello.txt")), swapped);
            settle(&path);
            cache(&sf, "/hello.txt");
            std::fs::remove_file(&path).unwrap();
            assert_eq!(get(&sf, "/hello.txt").status, 404);
            assert_eq!(sf.cache.usage(), (0, 0), "the stale entry went");
        }
    }

    #[test]
    fn a_parent_swapped_for_a_symlink_out_of_the_root_is_refused() {
        let root = TempRoot::new();
        let outside = TempRoot::new();
        for (n, sf) in root.servers().into_iter().enumerate() {
            // Outside: another file at the same relative path, and a hard
            // link to the very inode we cache.
            let dir = format!("d{n}");
            let linked = format!("l{n}");
            for name in [&dir, &linked] {
                std::fs::create_dir(root.path.join(name)).unwrap();
                std::fs::write(root.path.join(name).join("f.txt"), b"inside").unwrap();
                std::fs::create_dir(outside.path.join(name)).unwrap();
                settle(&root.path.join(name).join("f.txt"));
                assert_eq!(cache(&sf, &format!("/{name}/f.txt")), b"inside");
            }
            std::fs::write(outside.path.join(&dir).join("f.txt"), b"secret").unwrap();
            std::fs::hard_link(
                root.path.join(&linked).join("f.txt"),
                outside.path.join(&linked).join("f.txt"),
            )
            .unwrap();
            for name in [&dir, &linked] {
                std::fs::rename(root.path.join(name), root.path.join(format!("{name}.old")))
                    .unwrap();
                symlink(outside.path.join(name), root.path.join(name)).unwrap();
                let resp = get(&sf, &format!("/{name}/f.txt"));
                assert_eq!(resp.status, 404, "{name}");
            }
        }
    }

    #[test]
    fn a_directory_replaced_behind_a_symlinked_one_is_served_at_once() {
        let root = TempRoot::new();
        for (n, sf) in root.servers().into_iter().enumerate() {
            // `l{n}` -> `p{n}/q/r`: the cached path runs through `q`, which
            // no watch on the link's parent or its target would see.
            let p = root.path.join(format!("p{n}"));
            std::fs::create_dir_all(p.join("q/r")).unwrap();
            std::fs::write(p.join("q/r/f.txt"), b"old").unwrap();
            symlink(format!("p{n}/q/r"), root.path.join(format!("l{n}"))).unwrap();
            settle(&p.join("q/r/f.txt"));
            let target = format!("/l{n}/f.txt");
            assert_eq!(cache(&sf, &target), b"old");
            std::fs::rename(p.join("q"), p.join("q.old")).unwrap();
            std::fs::create_dir_all(p.join("q/r")).unwrap();
            std::fs::write(p.join("q/r/f.txt"), b"new").unwrap();
            assert_eq!(body_bytes(&mut get(&sf, &target)), b"new", "server {n}");
        }
    }

    #[test]
    fn a_file_swapped_for_a_symlink_is_not_served_from_the_cache() {
        let root = TempRoot::new();
        let path = root.path.join("hello.txt");
        for sf in root.servers() {
            std::fs::write(&path, HELLO).unwrap();
            settle(&path);
            cache(&sf, "/hello.txt");
            std::fs::remove_file(&path).unwrap();
            symlink("/etc/hostname", &path).unwrap();
            assert_eq!(get(&sf, "/hello.txt").status, 404);
            // A symlink inside is followed as ever, but never cached (its
            // fstatat identity is the link's).
            std::fs::remove_file(&path).unwrap();
            symlink("sub/inner.txt", &path).unwrap();
            settle(&root.path.join("sub/inner.txt"));
            settle(&path);
            for _ in 0..2 {
                let mut resp = get(&sf, "/hello.txt");
                assert_eq!(body_bytes(&mut resp), b"inner");
                assert!(!from_cache(&resp));
            }
            std::fs::remove_file(&path).unwrap();
        }
    }

    #[test]
    fn a_file_made_unreadable_is_403_at_once() {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return; // root reads everything
        }
        use std::os::unix::fs::PermissionsExt;
        let root = TempRoot::new();
        let path = root.path.join("hello.txt");
        settle(&path);
        let sf = StaticFiles::open(&root.path).unwrap();
        cache(&sf, "/hello.txt");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert_eq!(get(&sf, "/hello.txt").status, 403);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A directory on the way made unsearchable: fstatat fails too.
        settle(&root.path.join("sub/inner.txt"));
        cache(&sf, "/sub/inner.txt");
        let sub = root.path.join("sub");
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o600)).unwrap();
        let status = get(&sf, "/sub/inner.txt").status;
        std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(status, 403);
    }

    #[test]
    fn only_plain_answers_of_small_settled_files_are_cached() {
        let root = TempRoot::new();
        let write = |name: &str, len: usize| {
            std::fs::write(root.path.join(name), vec![b'x'; len]).unwrap();
        };
        write("page.html", 100);
        write("large.bin", MAX_FILE as usize + 1);
        write("mid.txt", 2048);
        write("sub/index.html", 10);
        for name in [
            "page.html",
            "large.bin",
            "mid.txt",
            "sub/index.html",
            "hello.txt",
        ] {
            settle(&root.path.join(name));
        }
        let sf = StaticFiles::open(&root.path).unwrap();
        let reloading = StaticFiles::open(&root.path)
            .unwrap()
            .live_reload(Some(Box::leak(Box::new(
                std::sync::atomic::AtomicU64::new(0),
            ))));
        let gzip = "Accept-Encoding: gzip\r\n";
        for (sf, target, extra) in [
            (&sf, "/large.bin", ""),
            (&sf, "/sub/", ""),
            (&sf, "/hello.txt", "Range: bytes=0-3\r\n"),
            (&sf, "/mid.txt", gzip),
            (&reloading, "/page.html", ""),
            (&sf, "/nope.txt", ""),
        ] {
            get_with(sf, target, extra);
            assert_eq!(sf.cache.usage(), (0, 0), "{target} {extra}");
        }
        // A small file is plain for every client, a larger one only for
        // those that don't negotiate a coding: their entry serves them.
        get_with(&sf, "/hello.txt", gzip);
        get(&sf, "/mid.txt");
        assert_eq!(sf.cache.usage(), (2, HELLO.len() + 2048));
        assert!(from_cache(&get_with(&sf, "/hello.txt", gzip)));
        let encoded = get_with(&sf, "/mid.txt", gzip);
        assert_eq!(header(&encoded, "Content-Encoding"), Some("gzip"));
        assert!(from_cache(&get(&sf, "/mid.txt")));
        assert_eq!(sf.cache.usage(), (2, HELLO.len() + 2048));
        // Live reload leaves files other than pages to the cache.
        get(&reloading, "/hello.txt");
        assert_eq!(reloading.cache.usage(), (1, HELLO.len()));
        // A file just written waits until it settles.
        write("new.txt", 10);
        assert!(!from_cache(&get(&sf, "/new.txt")));
    }

    #[test]
    fn many_files_stay_within_the_bounds_and_keep_no_file_open() {
        let root = TempRoot::new();
        std::fs::create_dir(root.path.join("many")).unwrap();
        let n = MAX_ENTRIES + 100;
        for i in 0..n {
            std::fs::write(root.path.join(format!("many/{i}.txt")), b"x").unwrap();
        }
        settle(&root.path.join(format!("many/{}.txt", n - 1)));
        let sf = StaticFiles::open(&root.path).unwrap();
        for i in 0..n {
            assert!(from_cache(&get(&sf, &format!("/many/{i}.txt"))));
        }
        let (entries, bytes) = sf.cache.usage();
        assert!(
            entries <= MAX_ENTRIES && entries > MAX_ENTRIES / 2,
            "{entries}"
        );
        assert!(bytes <= MAX_BYTES);
        // No descriptor of ours points into the root: the cache holds
        // bytes, not files.
        let root_path = std::fs::canonicalize(&root.path).unwrap();
        for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                assert!(
                    !target.starts_with(root_path.join("many")),
                    "{target:?} is open"
                );
            }
        }
    }

    #[test]
    fn threads_share_one_cache_and_see_every_change() {
        let root = TempRoot::new();
        let path = root.path.join("hello.txt");
        settle(&path);
        let sf = StaticFiles::open(&root.path).unwrap();
        cache(&sf, "/hello.txt");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let renamed = std::sync::atomic::AtomicBool::new(false);
        let mut swapped = HELLO.to_vec();
        swapped.reverse();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    while !stop.load(std::sync::atomic::Ordering::Acquire) {
                        // Read the flag first: a rename it reports
                        // happened before this request.
                        let after = renamed.load(std::sync::atomic::Ordering::Acquire);
                        let body = body_bytes(&mut get(&sf, "/hello.txt"));
                        if after {
                            assert_eq!(body, swapped);
                        } else {
                            assert!(body == HELLO || body == swapped);
                        }
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(20));
            std::fs::write(root.path.join("new.tmp"), &swapped).unwrap();
            std::fs::rename(root.path.join("new.tmp"), &path).unwrap();
            renamed.store(true, std::sync::atomic::Ordering::Release);
            std::thread::sleep(Duration::from_millis(20));
            stop.store(true, std::sync::atomic::Ordering::Release);
        });
    }

    #[test]
    fn entries_and_bytes_stay_bounded() {
        let cache = FileCache::with_limits(64, 64 * 100);
        for i in 0..1000 {
            cache.insert(format!("f{i}").as_bytes(), entry(50 + i % 100));
            let (n, bytes) = cache.usage();
            assert!(n <= 64, "{n}");
            assert!(bytes <= 64 * 100, "{bytes}");
        }
        // Byte-bound: few large ones fit.
        let cache = FileCache::with_limits(1024, 8 * 4096);
        for i in 0..100 {
            cache.insert(format!("f{i}").as_bytes(), entry(4096));
        }
        let (n, bytes) = cache.usage();
        assert!(n <= 8 && bytes <= 8 * 4096, "{n} {bytes}");
        assert!(n > 0);
    }

    #[test]
    fn the_clock_spares_what_was_hit() {
        // One shard's worth: 2 entries per shard.
        let cache = FileCache::with_limits(2 * SHARDS, 1 << 20);
        let keys: Vec<String> = (0..200).map(|i| format!("k{i}")).collect();
        let hot = keys[0].as_bytes();
        cache.insert(hot, entry(1));
        for key in &keys[1..] {
            assert!(cache.get(hot).is_some(), "hot evicted before {key}");
            cache.insert(key.as_bytes(), entry(1));
        }
    }

    #[test]
    fn remove_spares_a_newer_entry_and_replace_counts_bytes_once() {
        let cache = FileCache::with_limits(16, 1 << 20);
        let old = entry(10);
        cache.insert(b"a", Arc::clone(&old));
        let new = entry(20);
        cache.insert(b"a", Arc::clone(&new));
        assert_eq!(cache.usage(), (1, 20));
        cache.remove(b"a", &old);
        assert!(Arc::ptr_eq(&cache.get(b"a").unwrap(), &new));
        cache.remove(b"a", &new);
        assert!(cache.get(b"a").is_none());
        assert_eq!(cache.usage(), (0, 0));
        // Emptied slots are reused.
        cache.insert(b"b", entry(1));
        assert_eq!(cache.usage(), (1, 1));
    }

    #[test]
    fn a_ctime_settles_after_its_margin() {
        let mut st = zeroed_stat();
        let now = clock_gettime(ClockId::CLOCK_REALTIME_COARSE).unwrap();
        // Changed "now" (a little ahead, so a slow test can't pass the
        // margin in between), then a second ago.
        st.st_ctime = now.tv_sec();
        st.st_ctime_nsec = now.tv_nsec().max(1);
        st.st_mtime_nsec = 1;
        st.st_ctime_nsec += SETTLE_FINE / 2;
        assert!(!Identity::of(&st).settled());
        st.st_ctime -= 1;
        assert!(Identity::of(&st).settled());
        // Whole seconds only: two of them.
        st.st_ctime_nsec = 0;
        st.st_mtime_nsec = 0;
        assert!(!Identity::of(&st).settled());
        st.st_ctime -= 2;
        assert!(Identity::of(&st).settled());
        // A ctime in the future (another clock) never settles early.
        st.st_ctime = now.tv_sec() + 100;
        assert!(!Identity::of(&st).settled());
    }
}
