//! Routing: which handler answers a request, and whether it may be asked.
//!
//! Everything that is not a user's file lives under the reserved `/-/`
//! prefix (the convention GitLab uses), so a site's own paths never collide
//! with forkpool's. Method rules live here too, so handlers only ever see
//! methods they support: GET and HEAD everywhere, POST (only) for faults,
//! OPTIONS for static paths (answered by `static_files`: a CORS preflight
//! with `--cors`, else `Allow`; never CORS under `/-/`).
//! Live reload's script and event stream (`/-/livereload.js`,
//! `/-/livereload`) are served here when it is on, from `static_files`.
//! Before any of that, `access` decides who may ask: every request's `Host`
//! must name this server (421 otherwise), `/-/` answers loopback peers
//! unless the config opens a part of it (404 otherwise), and a fault or a
//! workload from another site's page is refused (403). Every worker architecture call the router through
//! [`Handler`](crate::http::Handler) (the master hands it to each worker);
//! it must be `Sync` and must not block on anything but the handler's work.

mod access;
mod faults;
mod lab;
mod observe;
pub(crate) mod static_files;
mod work;

use std::io;

use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::scoreboard::Scoreboard;
pub(crate) use access::exposure;
use access::{Access, Area, HostCheck};
use lab::{Identity, SharedCache};
use observe::ConfigView;
use static_files::live_reload;
use static_files::{ExtraHeaders, StaticFiles};

/// The prefix of every endpoint that is not a static file.
pub(crate) const RESERVED_PREFIX: &str = "/-/";

pub(crate) struct Router {
    files: StaticFiles,
    who: Identity,
    cache: SharedCache,
    faults: bool,
    access: Access,
    board: Scoreboard,
    config: ConfigView,
}

impl Router {
    /// The router of the worker at `position`. It opens the root, so it is
    /// built in the worker, after `fork`; an error is a boot failure.
    pub(crate) fn new(config: &Config, position: usize, board: Scoreboard) -> io::Result<Router> {
        Ok(Router {
            files: StaticFiles::open(&config.root)?
                .show_hidden(config.show_hidden)
                .compress(config.compress)
                .spa(config.spa)
                .live_reload(config.live_reload.then_some(&board.header().changes))
                .extra_headers(ExtraHeaders::new(config)),
            who: Identity {
                pid: std::process::id(),
                position,
                mode: config.mode,
            },
            cache: SharedCache::default(),
            faults: config.faults.enabled,
            access: Access::new(config),
            board,
            config: ConfigView::new(config),
        })
    }
}

impl crate::http::Handler for Router {
    fn handle(&self, req: &Request) -> Response {
        match self.access.check_host(&req.host) {
            HostCheck::Allowed => {}
            HostCheck::Misdirected => return access::misdirected(&req.host),
            HostCheck::Invalid => return Response::text(400, "400 Bad Request\ninvalid Host"),
        }
        if req.target == "*" {
            return match req.method {
                Method::Options => allow(Response::new(204, crate::http::Body::Empty)),
                _ => Response::error(400),
            };
        }
        if req.path().starts_with(RESERVED_PREFIX) {
            return self.reserved(req);
        }
        match req.method {
            Method::Get | Method::Head => self.files.serve(req),
            Method::Options => self.files.options(req),
            Method::Other => Response::error(501),
            _ => allow(Response::error(405)),
        }
    }
}

impl Router {
    /// The `/-/` space: the dashboard, status and metrics, workloads, and
    /// faults when enabled. A peer the config doesn't let in gets the 404
    /// an empty `/-/` would give, whatever it asks.
    fn reserved(&self, req: &Request) -> Response {
        let path = &req.path()[RESERVED_PREFIX.len()..];
        let (section, name) = path.split_once('/').unwrap_or((path, ""));
        let area = Area::of(section);
        if !self.access.peer_allowed(area, req.peer) {
            return Response::error(404);
        }
        if area == Area::Faults {
            return self.fault(name, req);
        }
        if !matches!(req.method, Method::Get | Method::Head) {
            return Response::error(405).header("Allow", "GET, HEAD");
        }
        if area == Area::Work
            && let Some(refused) = refuse_cross_origin(req)
        {
            // A page the developer has open must not burn 10 s of CPU or
            // 64 MiB per `<img src>` either.
            return refused;
        }
        let found = match area {
            Area::Views if name.is_empty() => observe::handle(section, &self.board, &self.config),
            Area::Work => work::handle(name, req, &self.who, &self.cache),
            Area::LiveReload if name.is_empty() => self.live_reload(section, req),
            _ => None,
        };
        found.unwrap_or_else(|| Response::error(404))
    }

    /// Live reload's script or event stream; `None` (404) when it is off.
    fn live_reload(&self, section: &str, req: &Request) -> Option<Response> {
        let generation = self.files.reload_generation()?;
        match section {
            live_reload::SCRIPT_NAME => Some(live_reload::script()),
            live_reload::STREAM_NAME => Some(live_reload::stream(req, generation)),
            _ => None,
        }
    }

    /// `/-/fault/NAME`: 404 unless enabled, POST only, and never for a
    /// request another site's page sent (CSRF).
    fn fault(&self, name: &str, req: &Request) -> Response {
        let Some(fault) = faults::Fault::named(name).filter(|_| self.faults) else {
            return Response::error(404);
        };
        if req.method != Method::Post {
            return Response::error(405).header("Allow", "POST");
        }
        if let Some(refused) = refuse_cross_origin(req) {
            return refused;
        }
        faults::inject(fault, req, &self.who, &self.cache)
    }
}

/// The 403 for a request another site's page sent (CSRF) to an endpoint
/// with effects (a fault, a workload), or `None` if it may run.
fn refuse_cross_origin(req: &Request) -> Option<Response> {
    let why = access::cross_origin(req)?;
    log::warn!(
        "refused {} {} from another origin: {why}",
        req.method_token,
        req.target
    );
    Some(
        Response::text(
            403,
            format!(
                "403 Forbidden\nfaults and workloads run only for this server's own pages, or \
                 for clients that send no Origin (curl, scripts, load generators): {why}"
            ),
        )
        .header("X-Content-Type-Options", "nosniff"),
    )
}

fn allow(response: Response) -> Response {
    response.header("Allow", static_files::ALLOWED_METHODS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::test_support::{TempRoot, header};
    use crate::http::Handler;
    use crate::http::request::parse_head;

    const LOCAL: &str = "127.0.0.1:40000";
    const REMOTE: &str = "192.0.2.9:40000";

    /// A router over a fixture root, with `edit` applied to its config.
    fn router(root: &TempRoot, edit: impl FnOnce(&mut Config)) -> Router {
        let mut config = crate::config::defaults();
        config.root = root.path.clone();
        edit(&mut config);
        Router::new(&config, 0, Scoreboard::new(2).unwrap()).unwrap()
    }

    fn ask(router: &Router, peer: &str, head: &str) -> Response {
        let mut req = Request::default();
        parse_head(head.as_bytes(), 16384, &mut req).unwrap();
        req.peer = Some(peer.parse().unwrap());
        router.handle(&req)
    }

    fn get(router: &Router, peer: &str, path: &str) -> u16 {
        let head = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
        ask(router, peer, &head).status
    }

    #[test]
    fn lab_endpoints_answer_loopback_peers_only() {
        let root = TempRoot::new();
        let closed = router(&root, |_| {});
        for path in ["/-/", "/-/status", "/-/metrics", "/-/work/cpu?ms=0"] {
            assert_eq!(get(&closed, LOCAL, path), 200, "{path}");
            assert_eq!(get(&closed, "[::1]:1", path), 200, "{path}");
            assert_eq!(get(&closed, REMOTE, path), 404, "{path}");
        }
        assert_eq!(get(&closed, REMOTE, "/hello.txt"), 200);
        // Every method gets the same 404 from another machine.
        let head = "POST /-/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(ask(&closed, REMOTE, head).status, 404);
        assert_eq!(ask(&closed, LOCAL, head).status, 405);
        // A request without a known peer is not trusted.
        let mut req = Request::default();
        parse_head(
            b"GET /-/status HTTP/1.1\r\nHost: localhost\r\n\r\n",
            16384,
            &mut req,
        )
        .unwrap();
        assert_eq!(closed.handle(&req).status, 404);

        let views = router(&root, |c| c.lab.allow_remote = true);
        for path in ["/-/", "/-/status", "/-/metrics"] {
            assert_eq!(get(&views, REMOTE, path), 200, "{path}");
        }
        assert_eq!(get(&views, REMOTE, "/-/work/cpu?ms=0"), 404);
        let work = router(&root, |c| c.lab.allow_remote_work = true);
        assert_eq!(get(&work, REMOTE, "/-/work/cpu?ms=0"), 200);
        assert_eq!(get(&work, REMOTE, "/-/status"), 404);
    }

    #[test]
    fn every_request_must_name_this_server() {
        let root = TempRoot::new();
        let named = router(&root, |c| c.server_names = vec!["dev.example".into()]);
        for (host, status) in [
            ("127.0.0.1:8080", 200),
            ("localhost:8080", 200),
            ("dev.example:8080", 200),
            ("attacker.example:8080", 421),
            ("localhost:x", 400),
        ] {
            for path in ["/hello.txt", "/-/status"] {
                let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
                let response = ask(&named, LOCAL, &head);
                assert_eq!(response.status, status, "{host} {path}");
            }
        }
        // No Host at all (HTTP/1.0): not a browser, so not DNS rebinding.
        let head = "GET /hello.txt HTTP/1.0\r\n\r\n";
        assert_eq!(ask(&named, LOCAL, head).status, 200);
        let head = "OPTIONS * HTTP/1.1\r\nHost: attacker.example\r\n\r\n";
        assert_eq!(ask(&named, LOCAL, head).status, 421);
        // An absolute-form target names the host itself (RFC 9112 3.2.2):
        // a harmless Host field doesn't let a foreign name through.
        let head = "GET http://attacker.example/hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(ask(&named, LOCAL, head).status, 421);
        let head = "GET http://127.0.0.1:8080/hello.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
        assert_eq!(ask(&named, LOCAL, head).status, 200);
    }

    #[test]
    fn faults_take_post_only_and_not_from_other_origins() {
        let root = TempRoot::new();
        let on = router(&root, |c| c.faults.enabled = true);
        let host = "Host: 127.0.0.1:8080\r\n";
        for method in ["GET", "HEAD", "PUT", "OPTIONS", "DELETE"] {
            let head = format!("{method} /-/fault/leak?mb=0 HTTP/1.1\r\n{host}\r\n");
            let response = ask(&on, LOCAL, &head);
            assert_eq!(response.status, 405, "{method}");
            assert_eq!(header(&response, "Allow"), Some("POST"), "{method}");
        }
        let post = |extra: &str| {
            let head = format!("POST /-/fault/leak?mb=0 HTTP/1.1\r\n{host}{extra}\r\n");
            ask(&on, LOCAL, &head).status
        };
        assert_eq!(post(""), 200);
        assert_eq!(post("Origin: http://127.0.0.1:8080\r\n"), 200);
        assert_eq!(post("Origin: http://attacker.example\r\n"), 403);
        assert_eq!(post("Sec-Fetch-Site: cross-site\r\n"), 403);
        assert_eq!(post("Sec-Fetch-Site: same-site\r\n"), 403);
        // Unknown faults, and every fault when they are off, are 404.
        let head = format!("POST /-/fault/nope HTTP/1.1\r\n{host}\r\n");
        assert_eq!(ask(&on, LOCAL, &head).status, 404);
        let head = format!("POST /-/fault/leak?mb=0 HTTP/1.1\r\n{host}\r\n");
        assert_eq!(ask(&on, REMOTE, &head).status, 404);
        let off = router(&root, |_| {});
        assert_eq!(ask(&off, LOCAL, &head).status, 404);
        assert_eq!(get(&off, LOCAL, "/-/fault/leak?mb=0"), 404);
        let remote = router(&root, |c| {
            c.faults.enabled = true;
            c.faults.allow_remote = true;
        });
        assert_eq!(ask(&remote, REMOTE, &head).status, 200);
        assert_eq!(get(&remote, REMOTE, "/-/status"), 404);
    }

    #[test]
    fn other_lab_endpoints_keep_get_and_head() {
        let root = TempRoot::new();
        let router = router(&root, |_| {});
        for path in ["/-/status", "/-/work/cpu?ms=0", "/-/nothing"] {
            let head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let response = ask(&router, LOCAL, &head);
            assert_eq!(response.status, 405, "{path}");
            assert_eq!(header(&response, "Allow"), Some("GET, HEAD"), "{path}");
        }
        assert_eq!(get(&router, LOCAL, "/-/nothing"), 404);
        assert_eq!(get(&router, LOCAL, "/-/status/x"), 404);
    }

    #[test]
    fn cors_answers_preflights_outside_the_lab_only() {
        let root = TempRoot::new();
        let preflight = |path: &str| {
            format!(
                "OPTIONS {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: http://a.example\r\n\
                 Access-Control-Request-Method: GET\r\n\r\n"
            )
        };
        let cors = router(&root, |c| {
            c.cors = true;
            c.headers = vec![("X-A".into(), "1".into())];
        });
        let answer = ask(&cors, LOCAL, &preflight("/hello.txt"));
        assert_eq!(answer.status, 204);
        assert_eq!(header(&answer, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(
            header(&answer, "Access-Control-Allow-Methods"),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(header(&answer, "X-A"), Some("1"));
        let get = ask(
            &cors,
            LOCAL,
            "GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n",
        );
        assert_eq!(header(&get, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(header(&get, "X-A"), Some("1"));
        // The lab keeps its own rules: no CORS, no extra headers, and
        // OPTIONS is still not a method it takes.
        for path in ["/-/status", "/-/work/cpu?ms=0"] {
            let lab = ask(&cors, LOCAL, &preflight(path));
            assert_eq!(lab.status, 405, "{path}");
            assert!(header(&lab, "Access-Control-Allow-Origin").is_none());
            let head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
            let lab = ask(&cors, LOCAL, &head);
            assert!(header(&lab, "Access-Control-Allow-Origin").is_none());
            assert!(header(&lab, "X-A").is_none());
        }
        // Without --cors a preflight is a plain OPTIONS.
        let plain = ask(&router(&root, |_| {}), LOCAL, &preflight("/hello.txt"));
        assert_eq!(plain.status, 204);
        assert_eq!(header(&plain, "Allow"), Some("GET, HEAD, OPTIONS"));
        assert!(header(&plain, "Access-Control-Allow-Origin").is_none());
    }

    #[test]
    fn live_reload_answers_every_peer_the_files_answer_and_only_when_on() {
        let root = TempRoot::new();
        let on = router(&root, |c| c.live_reload = true);
        for peer in [LOCAL, REMOTE] {
            assert_eq!(get(&on, peer, "/-/livereload.js"), 200, "{peer}");
            let stream = ask(
                &on,
                peer,
                "GET /-/livereload?since=0 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
            );
            assert!(matches!(
                stream.body,
                crate::http::Body::Events { since: 0 }
            ));
            // No CORS: another site's page can't read the stream.
            assert!(header(&stream, "Access-Control-Allow-Origin").is_none());
            assert_eq!(get(&on, peer, "/-/livereload/x"), 404, "{peer}");
        }
        // The Host check comes first, as for everything (DNS rebinding).
        let head = "GET /-/livereload.js HTTP/1.1\r\nHost: attacker.example\r\n\r\n";
        assert_eq!(ask(&on, LOCAL, head).status, 421);
        // With --cors on, still no CORS under /-/.
        let cors = router(&root, |c| {
            c.live_reload = true;
            c.cors = true;
        });
        let script = ask(
            &cors,
            REMOTE,
            "GET /-/livereload.js HTTP/1.1\r\nHost: localhost\r\nOrigin: http://a.example\r\n\r\n",
        );
        assert!(header(&script, "Access-Control-Allow-Origin").is_none());
        // Off: nothing there, for anyone.
        let off = router(&root, |_| {});
        for peer in [LOCAL, REMOTE] {
            assert_eq!(get(&off, peer, "/-/livereload.js"), 404, "{peer}");
            assert_eq!(get(&off, peer, "/-/livereload"), 404, "{peer}");
        }
    }

    #[test]
    fn dotfiles_follow_show_hidden() {
        let root = TempRoot::new();
        assert_eq!(get(&router(&root, |_| {}), REMOTE, "/.hidden"), 404);
        let shown = router(&root, |c| c.show_hidden = true);
        assert_eq!(get(&shown, REMOTE, "/.hidden"), 200);
    }
}
