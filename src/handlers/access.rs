//! Who may reach what, decided for each request before any handler runs.
//!
//! Three checks, each against a different attacker:
//! - **Host** (DNS rebinding): a web page the developer opens can point a
//!   name it controls at 127.0.0.1 and then read this server as its own
//!   origin. So every request, static files included, must name this
//!   server in `Host`: an IP literal, `localhost`, a `*.localhost` name
//!   (browsers resolve those to loopback themselves), or a name in
//!   `server_names`. Anything else gets 421. A request without `Host` (only
//!   HTTP/1.0 may omit it) passes: browsers always send one.
//! - **Peer** (other machines): the endpoints under `/-/` answer loopback
//!   peers only, decided from the connection's peer address, not from the
//!   listen address. `[lab] allow_remote` opens the read-only views,
//!   `[lab] allow_remote_work` the workloads, `[faults] allow_remote` the
//!   faults. Everyone else gets 404, as if there were nothing there. Live
//!   reload's stream and script are the exception: they tell only that
//!   files changed, so they answer whoever may fetch the files.
//! - **Origin** (CSRF): faults change state, so they take POST only, and a
//!   fault or a workload (`/-/work/*`, any method: each may burn seconds of
//!   CPU) sent by another site's page (its `Origin` is not this server's,
//!   or `Sec-Fetch-Site` says `cross-site` or `same-site`) is refused. A
//!   request with neither header is not a browser's (curl, scripts) and
//!   runs.
//!
//! What it doesn't do: authenticate anyone. Anything that can connect from
//! loopback (every local user and process) gets everything; the checks
//! keep out other machines and other sites' pages, not local users.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::static_files::live_reload::{SCRIPT_NAME, STREAM_NAME};
use crate::config::{Config, is_loopback};
use crate::http::{Request, Response};

/// The parts of `/-/` that can be opened to other machines separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Area {
    /// The dashboard, `/-/status`, `/-/metrics`: read-only.
    Views,
    /// `/-/work/*`: each request may burn seconds of CPU.
    Work,
    /// `/-/fault/*`: kills processes.
    Faults,
    /// `/-/livereload` and its script: only says that files changed, which
    /// whoever may fetch the files can see anyway, so it is open to every
    /// peer the files are (and 404 unless live reload is on).
    LiveReload,
    /// Any other name under `/-/`: nothing, or something not built yet.
    Other,
}

impl Area {
    /// The area of the first path segment after `/-/`.
    pub(crate) fn of(section: &str) -> Area {
        match section {
            "" | "status" | "metrics" => Area::Views,
            "work" => Area::Work,
            "fault" => Area::Faults,
            STREAM_NAME | SCRIPT_NAME => Area::LiveReload,
            _ => Area::Other,
        }
    }
}

/// The access policy of one worker, built once from the config.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// Lower case, no trailing dot; a leading dot allows a whole domain.
    server_names: Vec<String>,
    remote_views: bool,
    remote_work: bool,
    remote_faults: bool,
}

/// What the `Host` check makes of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostCheck {
    Allowed,
    /// Well formed, but not a name this server answers to: 421.
    Misdirected,
    /// Not a valid `Host` value (RFC 9112 section 3.2): 400.
    Invalid,
}

impl Access {
    pub(crate) fn new(config: &Config) -> Access {
        Access {
            server_names: config.server_names.clone(),
            remote_views: config.lab.allow_remote,
            remote_work: config.lab.allow_remote_work,
            remote_faults: config.faults.allow_remote,
        }
    }

    /// Whether `host` (the `Host` value, empty when absent) names this server.
    pub(crate) fn check_host(&self, host: &str) -> HostCheck {
        if host.is_empty() {
            return HostCheck::Allowed;
        }
        match parse_host(host) {
            None => HostCheck::Invalid,
            Some(HostName::Ip) => HostCheck::Allowed,
            Some(HostName::Name(name)) if self.names(name) => HostCheck::Allowed,
            Some(HostName::Name(_)) => HostCheck::Misdirected,
        }
    }

    /// `localhost`, a name under it, or one of `server_names`.
    fn names(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("localhost")
            || is_below(name, "localhost")
            || self
                .server_names
                .iter()
                .any(|allowed| match allowed.strip_prefix('.') {
                    Some(domain) => name.eq_ignore_ascii_case(domain) || is_below(name, domain),
                    None => name.eq_ignore_ascii_case(allowed),
                })
    }

    /// Whether a connection from `peer` may reach `area`. A connection
    /// without a known peer is treated as remote.
    pub(crate) fn peer_allowed(&self, area: Area, peer: Option<SocketAddr>) -> bool {
        let open_to_all = match area {
            Area::Views => self.remote_views,
            Area::Work => self.remote_work,
            Area::Faults => self.remote_faults,
            Area::LiveReload => true,
            Area::Other => false,
        };
        open_to_all || peer.is_some_and(|peer| is_loopback(peer.ip()))
    }
}

/// A `Host` value without its port.
#[derive(Debug, PartialEq, Eq)]
enum HostName<'a> {
    /// `[v6]` or an IPv4 literal.
    Ip,
    /// A registered name, as sent, without one trailing dot.
    Name(&'a str),
}

/// Splits `host[:port]` or `[v6][:port]`; `None` when the brackets or the
/// port are malformed (the port is `*DIGIT`, RFC 3986).
fn parse_host(value: &str) -> Option<HostName<'_>> {
    let (name, port) = match value.strip_prefix('[') {
        Some(rest) => {
            let (literal, port) = rest.split_once(']')?;
            literal.parse::<Ipv6Addr>().ok()?;
            (None, port)
        }
        None => match value.find(':') {
            Some(colon) => (Some(&value[..colon]), &value[colon..]),
            None => (Some(value), ""),
        },
    };
    let digits = if port.is_empty() {
        ""
    } else {
        port.strip_prefix(':')?
    };
    if digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match name {
        None => Some(HostName::Ip),
        Some("") => None,
        Some(name) if name.parse::<Ipv4Addr>().is_ok() => Some(HostName::Ip),
        Some(name) => Some(HostName::Name(name.strip_suffix('.').unwrap_or(name))),
    }
}

/// Whether `name` is strictly below `domain` (`a.b.domain`), ignoring case.
fn is_below(name: &str, domain: &str) -> bool {
    let (name, domain) = (name.as_bytes(), domain.as_bytes());
    name.len() > domain.len() + 1
        && name[name.len() - domain.len()..].eq_ignore_ascii_case(domain)
        && name[name.len() - domain.len() - 1] == b'.'
}

/// Why a state-changing request looks sent by another site's page, or
/// `None` if it may run: `Sec-Fetch-Site` is `cross-site` or `same-site`
/// (another port on localhost is the same site, not the same origin), or
/// `Origin` is present and is not `http://` + this request's `Host`.
pub(crate) fn cross_origin(req: &Request) -> Option<String> {
    let site = req.sec_fetch_site.as_str();
    if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site") {
        return Some(format!("Sec-Fetch-Site is {site}"));
    }
    if req.origin.is_empty() || same_origin(&req.origin, &req.host) {
        return None;
    }
    Some(format!(
        "Origin {:?} is not this server's own (http://{})",
        req.origin, req.host
    ))
}

/// `origin` is `http://` and the same authority as `host` (port 80 may be
/// left out of either).
fn same_origin(origin: &str, host: &str) -> bool {
    let scheme = "http://";
    let http = origin
        .get(..scheme.len())
        .is_some_and(|s| s.eq_ignore_ascii_case(scheme));
    // An empty port is the default port too (RFC 3986 6.2.3).
    let without_port_80 = |authority: &str| {
        let authority = authority.strip_suffix(":80").unwrap_or(authority);
        authority.strip_suffix(':').unwrap_or(authority).to_owned()
    };
    http && !host.is_empty()
        && without_port_80(&origin[scheme.len()..]).eq_ignore_ascii_case(&without_port_80(host))
}

/// The 421 for a `Host` this server doesn't answer to: what happened and
/// how to allow the name if it is the user's own.
pub(crate) fn misdirected(host: &str) -> Response {
    let shown: String = host.chars().take(200).collect();
    let mut body = format!(
        "421 Misdirected Request\n\
         This server does not answer to the name in Host: {shown:?}.\n\
         It answers to IP addresses, localhost and *.localhost, and to the names in \
         server_names, so that a web page can't reach it through a name of its own \
         (DNS rebinding).\n"
    );
    if let Some(HostName::Name(name)) = parse_host(host) {
        let name = name.to_ascii_lowercase();
        let _ = writeln!(
            body,
            "If {name:?} is yours, add it: server_names = [{name:?}] in the config file, \
             or --server-name {name}."
        );
    }
    Response::text(421, body).header("X-Content-Type-Options", "nosniff")
}

/// The one line the master logs when it listens on an address other
/// machines may reach (`bound`, the socket's own address, port included):
/// what they get. `None` on a loopback address.
pub(crate) fn exposure(config: &Config, bound: SocketAddr) -> Option<String> {
    if is_loopback(bound.ip()) {
        return None;
    }
    let to = |open: bool| {
        if open {
            "every peer"
        } else {
            "loopback peers only"
        }
    };
    let faults = &config.faults;
    Some(format!(
        "listening on {}, not a loopback address: every peer that can reach it gets the files \
         under {}{}; the dashboard, /-/status and /-/metrics: {} ([lab] allow_remote); \
         /-/work: {} ([lab] allow_remote_work); /-/fault: {}",
        bound,
        config.root.display(),
        if config.show_hidden {
            " (dotfiles included)"
        } else {
            " (not dotfiles)"
        },
        to(config.lab.allow_remote),
        to(config.lab.allow_remote_work),
        if faults.enabled {
            to(faults.allow_remote)
        } else {
            "off"
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::lab::test_support::body;
    use crate::http::request::parse_head;

    fn access(names: &[&str]) -> Access {
        let mut config = crate::config::defaults();
        config.server_names = names.iter().map(|n| n.to_string()).collect();
        Access::new(&config)
    }

    #[test]
    fn ip_literals_and_localhost_pass_with_or_without_a_port() {
        let access = access(&[]);
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "192.0.2.7:80",
            "[::1]",
            "[::1]:8080",
            "[fe80::1]:1",
            "localhost",
            "LOCALHOST:8080",
            "localhost.",
            "localhost.:3000",
            "app.localhost:8080",
            "a.b.Localhost",
            "localhost:",
            // HTTP/1.0 without Host: not a browser.
            "",
        ] {
            assert_eq!(access.check_host(host), HostCheck::Allowed, "{host}");
        }
    }

    #[test]
    fn other_names_are_misdirected() {
        let access = access(&[]);
        for host in [
            "attacker.example",
            "attacker.example:8080",
            "t",
            "test",
            "localhost.attacker.example",
            "evillocalhost",
            ".localhost",
            "127.0.0.1.attacker.example",
            "127.1",
            "0x7f000001",
            "a b",
        ] {
            assert_eq!(access.check_host(host), HostCheck::Misdirected, "{host}");
        }
    }

    #[test]
    fn malformed_hosts_are_invalid() {
        let access = access(&[]);
        for host in [
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:x",
            "[nonsense]",
            "localhost:80:80",
            "localhost:123456",
            "localhost:-1",
            ":8080",
        ] {
            assert_eq!(access.check_host(host), HostCheck::Invalid, "{host}");
        }
    }

    #[test]
    fn server_names_allow_exact_names_and_dotted_domains() {
        let access = access(&["dev.example", ".corp.example"]);
        for host in [
            "dev.example",
            "DEV.example:8080",
            "dev.example.",
            "corp.example",
            "a.corp.example:1",
            "b.a.corp.example",
        ] {
            assert_eq!(access.check_host(host), HostCheck::Allowed, "{host}");
        }
        for host in [
            "a.dev.example",
            "xdev.example",
            "xcorp.example",
            "corp.example.attacker",
        ] {
            assert_eq!(access.check_host(host), HostCheck::Misdirected, "{host}");
        }
    }

    #[test]
    fn peers_reach_lab_areas_by_config() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        let remote: SocketAddr = "192.0.2.9:5000".parse().unwrap();
        let areas = [Area::Views, Area::Work, Area::Faults, Area::Other];
        let closed = access(&[]);
        for area in areas {
            assert!(closed.peer_allowed(area, Some(local)), "{area:?}");
            assert!(closed.peer_allowed(area, Some(mapped)), "{area:?}");
            assert!(!closed.peer_allowed(area, Some(remote)), "{area:?}");
            assert!(!closed.peer_allowed(area, None), "{area:?}");
        }
        for (flag, opened) in [(0, Area::Views), (1, Area::Work), (2, Area::Faults)] {
            let mut config = crate::config::defaults();
            config.lab.allow_remote = flag == 0;
            config.lab.allow_remote_work = flag == 1;
            config.faults.allow_remote = flag == 2;
            let access = Access::new(&config);
            for area in areas {
                assert_eq!(
                    access.peer_allowed(area, Some(remote)),
                    area == opened,
                    "{area:?} with {opened:?} open"
                );
            }
        }
        assert_eq!(Area::of(""), Area::Views);
        assert_eq!(Area::of("metrics"), Area::Views);
        assert_eq!(Area::of("work"), Area::Work);
        assert_eq!(Area::of("fault"), Area::Faults);
        assert_eq!(Area::of("livereload"), Area::LiveReload);
        assert_eq!(Area::of("livereload.js"), Area::LiveReload);
        assert_eq!(Area::of("livereload2"), Area::Other);
    }

    fn post(extra: &str) -> Request {
        let mut req = Request::default();
        let head = format!("POST /-/fault/panic HTTP/1.1\r\n{extra}\r\n");
        parse_head(head.as_bytes(), 16384, &mut req).unwrap();
        req
    }

    #[test]
    fn a_post_from_another_origin_is_refused() {
        for extra in [
            "Host: 127.0.0.1:8080\r\nOrigin: http://attacker.example\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8081\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: https://127.0.0.1:8080\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: null\r\n",
            "Host: localhost:8080\r\nOrigin: http://127.0.0.1:8080\r\n",
            "Host: 127.0.0.1:8080\r\nSec-Fetch-Site: cross-site\r\n",
            "Host: 127.0.0.1:8080\r\nSec-Fetch-Site: same-site\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\nSec-Fetch-Site: same-site\r\n",
            "Origin: http://127.0.0.1:8080\r\n",
        ] {
            let req = if extra.starts_with("Host") {
                post(extra)
            } else {
                let mut req = Request::default();
                let head = format!("POST /-/fault/panic HTTP/1.0\r\n{extra}\r\n");
                parse_head(head.as_bytes(), 16384, &mut req).unwrap();
                req
            };
            assert!(cross_origin(&req).is_some(), "{extra:?}");
        }
    }

    #[test]
    fn a_post_from_this_origin_or_no_browser_runs() {
        for extra in [
            "Host: 127.0.0.1:8080\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\n",
            "Host: 127.0.0.1:8080\r\nOrigin: HTTP://127.0.0.1:8080\r\nSec-Fetch-Site: same-origin\r\n",
            "Host: localhost\r\nOrigin: http://localhost:80\r\n",
            "Host: localhost:80\r\nOrigin: http://localhost\r\n",
            "Host: localhost\r\nOrigin: http://localhost:\r\n",
            "Host: localhost:\r\nOrigin: http://localhost:80\r\n",
            "Host: [::1]:9\r\nOrigin: http://[::1]:9\r\n",
            "Host: 127.0.0.1:8080\r\nSec-Fetch-Site: none\r\n",
        ] {
            assert_eq!(cross_origin(&post(extra)), None, "{extra:?}");
        }
    }

    #[test]
    fn the_421_says_how_to_allow_the_name() {
        let response = misdirected("Dev.Example:8080");
        assert_eq!(response.status, 421);
        let text = body(&response);
        assert!(text.contains("\"Dev.Example:8080\""), "{text}");
        assert!(text.contains("server_names = [\"dev.example\"]"), "{text}");
        assert!(text.contains("--server-name dev.example"), "{text}");
    }

    #[test]
    fn exposure_names_what_other_machines_get() {
        let mut config = crate::config::defaults();
        let public = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(exposure(&config, config.listen), None);
        assert_eq!(
            exposure(&config, "[::ffff:127.0.0.1]:80".parse().unwrap()),
            None
        );
        let line = exposure(&config, public).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("listening on 0.0.0.0:8080, not a loopback"));
        assert!(line.contains("(not dotfiles)"), "{line}");
        assert!(line.contains("/-/metrics: loopback peers only"), "{line}");
        assert!(line.contains("/-/work: loopback peers only"), "{line}");
        assert!(line.ends_with("/-/fault: off"), "{line}");
        config.lab.allow_remote = true;
        config.faults.enabled = true;
        config.faults.allow_remote = true;
        let line = exposure(&config, public).unwrap();
        assert!(line.contains("/-/metrics: every peer"), "{line}");
        assert!(line.contains("/-/work: loopback peers only"), "{line}");
        assert!(line.ends_with("/-/fault: every peer"), "{line}");
    }
}
