//! A dev server shows every file as it is now, whatever the worker cached:
//! in every architecture, a file edited in place (same size, other bytes),
//! through another of its names, replaced by `rename` or deleted, or a
//! directory on its path replaced by another, is answered fresh by the
//! very next request on the same connection (so by the same worker, whose
//! cache had it), and a directory swapped for a symlink out of the root is
//! refused.
//!
//! The worker caches a small file only once its ctime has settled (see
//! `src/handlers/static_files/cache.rs`); the tests wait for that, by the
//! file's own ctime, with a deadline, then ask twice before the change, so
//! the change meets a cached file.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::*;

/// Longer than the cache's settling margin (50 ms for a file system with
/// sub-second timestamps), so a file this old is cached when asked for.
const SETTLED: Duration = Duration::from_millis(250);

/// Files per kind of change: each meets a cache filled on its connection.
const FILES: usize = 6;

/// Waits (deadline, not a fixed sleep) until every file in `paths` last
/// changed at least [`SETTLED`] ago, by its ctime.
fn settle(paths: &[&Path]) {
    use std::os::unix::fs::MetadataExt;
    let settled = || {
        paths.iter().all(|path| {
            let meta = std::fs::symlink_metadata(path).unwrap();
            let ctime = SystemTime::UNIX_EPOCH
                + Duration::new(meta.ctime() as u64, meta.ctime_nsec() as u32);
            SystemTime::now()
                .duration_since(ctime)
                .is_ok_and(|age| age >= SETTLED)
        })
    };
    assert!(wait_until(DEADLINE, settled), "files never settled");
}

/// `version` of a file's content: always 32 bytes.
fn content(name: &str, version: usize) -> Vec<u8> {
    format!("{name:<12}version {version:>10}\n").into_bytes()
}

/// Asks twice on `client` (a fill and a hit in that worker) and checks
/// the answer is `expected`.
fn cache(client: &mut Client, target: &str, expected: &[u8]) {
    for _ in 0..2 {
        let response = client.get(target);
        assert_eq!(response.status, 200, "{target}");
        assert_eq!(response.body, expected, "{target}");
    }
}

every_mode!(edits_renames_and_deletes_are_served_at_once, |mode| {
    let server = Server::start(mode, &[]);
    let root = server.root.path();
    let name = |kind: &str, i: usize| format!("{kind}{i}.txt");
    let mut paths = Vec::new();
    for kind in ["edit", "rename", "delete"] {
        for i in 0..FILES {
            let path = root.join(name(kind, i));
            std::fs::write(&path, content(&name(kind, i), 0)).unwrap();
            paths.push(path);
        }
    }
    settle(&paths.iter().map(|p| p.as_path()).collect::<Vec<_>>());
    for i in 0..FILES {
        // A new connection each: it may land on any worker or loop.
        let mut client = server.connect();
        let edit = name("edit", i);
        cache(&mut client, &format!("/{edit}"), &content(&edit, 0));
        // In place: same inode, same size, other bytes.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(root.join(&edit))
            .unwrap();
        file.write_all_at(&content(&edit, 1), 0).unwrap();
        drop(file);
        assert_eq!(client.get(&format!("/{edit}")).body, content(&edit, 1));

        let renamed = name("rename", i);
        cache(&mut client, &format!("/{renamed}"), &content(&renamed, 0));
        let tmp = root.join(format!("{renamed}.tmp"));
        std::fs::write(&tmp, content(&renamed, 1)).unwrap();
        std::fs::rename(&tmp, root.join(&renamed)).unwrap();
        assert_eq!(
            client.get(&format!("/{renamed}")).body,
            content(&renamed, 1)
        );

        let deleted = name("delete", i);
        cache(&mut client, &format!("/{deleted}"), &content(&deleted, 0));
        std::fs::remove_file(root.join(&deleted)).unwrap();
        assert_eq!(client.get(&format!("/{deleted}")).status, 404);
    }
});

every_mode!(a_file_edited_over_and_over_is_always_fresh, |mode| {
    let server = Server::start(mode, &[]);
    let path = server.root.path().join("busy.txt");
    std::fs::write(&path, content("busy", 0)).unwrap();
    settle(&[&path]);
    // Two connections, perhaps two workers, each with the file cached.
    let mut clients = [server.connect(), server.connect()];
    for client in &mut clients {
        cache(client, "/busy.txt", &content("busy", 0));
    }
    for version in 1..300 {
        let next = content("busy", version);
        if version % 3 == 0 {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, &next).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        } else {
            // In place, opened anew: a rename may have replaced the inode.
            let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            file.write_all_at(&next, 0).unwrap();
        }
        let client = &mut clients[version % 2];
        let response = client.get("/busy.txt");
        assert_eq!(response.body, next, "version {version}");
    }
});

every_mode!(a_directory_swapped_for_a_symlink_out_is_refused, |mode| {
    let server = Server::start(mode, &[]);
    let root = server.root.path();
    let outside = TempDir::new();
    std::fs::create_dir(root.join("dir")).unwrap();
    std::fs::create_dir(outside.path().join("dir")).unwrap();
    std::fs::write(root.join("dir/f.txt"), "inside\n").unwrap();
    std::fs::write(outside.path().join("dir/f.txt"), "secret\n").unwrap();
    settle(&[&root.join("dir/f.txt")]);
    let mut client = server.connect();
    cache(&mut client, "/dir/f.txt", b"inside\n");
    std::fs::rename(root.join("dir"), root.join("dir.old")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("dir"), root.join("dir")).unwrap();
    assert_eq!(client.get("/dir/f.txt").status, 404);
});

every_mode!(
    a_directory_replaced_or_a_write_through_another_name_is_fresh,
    |mode| {
        let server = Server::start(mode, &[]);
        let root = server.root.path();
        std::fs::create_dir_all(root.join("deep/a/b")).unwrap();
        std::fs::create_dir(root.join("links")).unwrap();
        std::fs::write(root.join("deep/a/b/f.txt"), content("deep", 0)).unwrap();
        std::fs::write(root.join("linked.txt"), content("linked", 0)).unwrap();
        // Linked before it settles: a new link changes the file's ctime.
        std::fs::hard_link(root.join("linked.txt"), root.join("links/alias.txt")).unwrap();
        settle(&[&root.join("deep/a/b/f.txt"), &root.join("linked.txt")]);
        let mut client = server.connect();

        cache(&mut client, "/deep/a/b/f.txt", &content("deep", 0));
        // A whole directory on the path moved away and made anew: the same
        // path now names another file, of the same size.
        std::fs::rename(root.join("deep/a"), root.join("deep/a.old")).unwrap();
        std::fs::create_dir_all(root.join("deep/a/b")).unwrap();
        std::fs::write(root.join("deep/a/b/f.txt"), content("deep", 1)).unwrap();
        assert_eq!(client.get("/deep/a/b/f.txt").body, content("deep", 1));

        cache(&mut client, "/linked.txt", &content("linked", 0));
        // Written through its other name, in another directory.
        let alias = std::fs::OpenOptions::new()
            .write(true)
            .open(root.join("links/alias.txt"))
            .unwrap();
        alias.write_all_at(&content("linked", 1), 0).unwrap();
        drop(alias);
        assert_eq!(client.get("/linked.txt").body, content("linked", 1));
    }
);
