//! Routing: which handler answers a request.
//!
//! Everything that is not a user's file lives under the reserved `/-/`
//! prefix (the convention GitLab uses), so a site's own paths never collide
//! with forkpool's. Method rules live here too, so handlers only ever see
//! methods they support. Both worker architectures call the router through
//! [`Handler`](crate::http::Handler) (the master hands it to each worker);
//! it must be `Sync` and must not block on anything but the handler's work.

mod faults;
mod lab;
mod observe;
pub(crate) mod static_files;
mod work;

use std::io;

use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::scoreboard::Scoreboard;
use lab::{Identity, SharedCache};
use observe::ConfigView;
use static_files::StaticFiles;

/// The prefix of every endpoint that is not a static file.
pub(crate) const RESERVED_PREFIX: &str = "/-/";

const STATIC_ALLOW: &str = "GET, HEAD, OPTIONS";

pub(crate) struct Router {
    files: StaticFiles,
    who: Identity,
    cache: SharedCache,
    faults: bool,
    board: Scoreboard,
    config: ConfigView,
}

impl Router {
    /// The router of the worker at `position`. It opens the root, so it is
    /// built in the worker, after `fork`; an error is a boot failure.
    pub(crate) fn new(config: &Config, position: usize, board: Scoreboard) -> io::Result<Router> {
        Ok(Router {
            files: StaticFiles::open(&config.root)?,
            who: Identity {
                pid: std::process::id(),
                position,
                mode: config.mode,
            },
            cache: SharedCache::default(),
            faults: config.faults.enabled,
            board,
            config: ConfigView::new(config),
        })
    }
}

impl crate::http::Handler for Router {
    fn handle(&self, req: &Request) -> Response {
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
            Method::Options => allow(Response::new(204, crate::http::Body::Empty)),
            Method::Other => Response::error(501),
            _ => allow(Response::error(405)),
        }
    }
}

impl Router {
    /// The `/-/` space: the dashboard, status and metrics, workloads, and
    /// faults when enabled.
    fn reserved(&self, req: &Request) -> Response {
        let path = &req.path()[RESERVED_PREFIX.len()..];
        if !matches!(req.method, Method::Get | Method::Head) {
            return Response::error(405).header("Allow", "GET, HEAD");
        }
        let (section, name) = path.split_once('/').unwrap_or((path, ""));
        let found = match section {
            "" | "status" | "metrics" if name.is_empty() => {
                observe::handle(section, &self.board, &self.config)
            }
            "work" => work::handle(name, req, &self.who, &self.cache),
            "fault" if self.faults => faults::inject(name, req, &self.who, &self.cache),
            _ => None,
        };
        found.unwrap_or_else(|| Response::error(404))
    }
}

fn allow(response: Response) -> Response {
    response.header("Allow", STATIC_ALLOW)
}
