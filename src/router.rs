//! Routing: which handler answers a request.
//!
//! Everything that is not a user's file lives under the reserved `/-/`
//! prefix (the convention GitLab uses), so a site's own paths never collide
//! with forkpool's. Method rules live here too, so handlers only ever see
//! methods they support. Both worker architectures call [`Router::handle`];
//! it must be `Sync` and must not block on anything but the handler's work.

use std::io;

use crate::config::Config;
use crate::http::{Method, Request, Response};
use crate::static_files::StaticFiles;

/// The prefix of every endpoint that is not a static file.
pub const RESERVED_PREFIX: &str = "/-/";

const STATIC_ALLOW: &str = "GET, HEAD, OPTIONS";

pub struct Router {
    files: StaticFiles,
}

impl Router {
    pub fn new(config: &Config) -> io::Result<Router> {
        Ok(Router {
            files: StaticFiles::open(&config.root)?,
        })
    }

    pub fn handle(&self, req: &Request) -> Response {
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

    /// The `/-/` space: no endpoint is defined yet, so every path is a 404.
    fn reserved(&self, _req: &Request) -> Response {
        Response::error(404)
    }
}

fn allow(response: Response) -> Response {
    response.header("Allow", STATIC_ALLOW)
}
