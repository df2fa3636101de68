//! The command-line contract: the readiness line, exit code 2 for bad
//! flags and config (naming the culprit, binding nothing), `--help`.

mod common;

use common::*;

#[test]
fn readiness_line_names_the_real_port() {
    let server = Server::start("process", &[]);
    assert_eq!(server.addr.ip().to_string(), "127.0.0.1");
    assert_ne!(server.addr.port(), 0);
    assert_eq!(server.get("/hello.txt").status, 200);
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    for (args, culprit) in [
        (&["--workers", "lots"][..], "--workers"),
        (&["--workers", "0"][..], "--workers"),
        (&["--mode", "fiber"][..], "--mode"),
        (&["--threads", "0"][..], "--threads"),
        (&["--listen", "nowhere"][..], "--listen"),
        (&["--server-name", "*.example"][..], "--server-name"),
        (&["--bogus"][..], "--bogus"),
        (&["/definitely/not/a/dir"][..], "root"),
    ] {
        let out = run_to_exit(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(culprit),
            "{args:?} should name {culprit}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed a readiness line");
    }
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = TempDir::new();
    for (text, key) in [
        ("workerz = 2\n", "workerz"),
        ("[supervisor]\ntimeot = \"1s\"\n", "timeot"),
        ("keepalive_timeout = \"soon\"\n", "keepalive_timeout"),
        ("max_body_bytes = \"lots\"\n", "max_body_bytes"),
        ("server_names = [\"a:1\"]\n", "server_names"),
        ("[lab]\nallow_remote = 1\n", "lab.allow_remote"),
        (
            "listen = \"0.0.0.0:0\"\n[faults]\nenabled = true\n",
            "faults",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        // The faults case needs the file's public listen address, so it
        // must not be overridden by --listen.
        let args: &[&str] = if key == "faults" {
            &["--config", path.to_str().unwrap()]
        } else {
            &[
                "--config",
                path.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ]
        };
        let out = run_to_exit(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(key), "{text:?} should name {key}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

// The shipped file says `mode = "process"`; the flag (which wins) runs its
// keys under every architecture.
every_mode!(the_shipped_config_file_starts_the_server, |mode| {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/config/forkpool.toml");
    let root = TempDir::new();
    write_fixtures(root.path());
    let args: Vec<String> = vec![
        root.path().display().to_string(),
        "--config".into(),
        config.into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--workers".into(),
        "1".into(),
        "--mode".into(),
        mode.into(),
    ];
    let server = Server::start_with(root, &args);
    assert_eq!(server.get("/hello.txt").status, 200);
});

#[test]
fn port_in_use_is_a_clear_error() {
    let server = Server::start("process", &[]);
    let addr = server.addr.to_string();
    let out = run_to_exit(&["--listen", &addr]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
}

#[test]
fn help_lists_flags_and_signals() {
    let out = run_to_exit(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "--workers",
        "--mode",
        "--threads",
        "--config",
        "--faults",
        "--hidden",
        "--server-name",
        "SIGHUP",
        "SIGTERM",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}
