//! Bearer tokens, for every guarded HTTP route (the serving routes in [`crate::serve`], the
//! admin routes, `PUT /log-level`): which token a route needs, the check, and the refusal.
//!
//! - `http.read_token` opens reading and predicting; the admin token opens those too.
//! - `http.admin_token` opens the admin API: `POST /v1/models/{model}/retrain` and
//!   `PUT /log-level`. Without one configured, those routes answer 404 saying how to enable them.
//!
//! The check runs as a route layer, before the handler's extractors, so no body is read for
//! a caller without the right token. Tokens are compared as SHA-256 digests in constant time,
//! so neither a token's content nor its length shows in the time taken. The scheme `Bearer`
//! is matched case-insensitively (RFC 9110). An empty token is refused at load
//! ([`crate::config`]), and an empty presented token is never accepted.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::api_error::error;
use crate::config::Secret;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reading models and predicting: the read token or the admin token.
    Read,
    /// Changing things: the admin token only.
    Admin,
}

type Digested = [u8; 32];

fn digest(s: &str) -> Digested {
    Sha256::digest(s.as_bytes()).into()
}

/// Equality of two digests in time independent of their content.
fn same(a: &Digested, b: &Digested) -> bool {
    a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The configured tokens, as digests.
#[derive(Clone, Default)]
pub struct Tokens {
    read: Option<Digested>,
    admin: Option<Digested>,
}

impl Tokens {
    pub fn new(read: Option<&Secret>, admin: Option<&Secret>) -> Self {
        Tokens {
            read: read.map(|t| digest(t.expose())),
            admin: admin.map(|t| digest(t.expose())),
        }
    }

    pub fn admin_configured(&self) -> bool {
        self.admin.is_some()
    }

    /// Whether `headers` carry a bearer token that grants `access`.
    pub fn allows(&self, headers: &HeaderMap, access: Access) -> bool {
        let Some(presented) = presented(headers) else {
            return false;
        };
        let d = digest(presented);
        // Both comparisons always run, so the time does not tell which token matched.
        let admin = self.admin.as_ref().is_some_and(|t| same(t, &d));
        let read = self.read.as_ref().is_some_and(|t| same(t, &d));
        match access {
            Access::Admin => admin,
            Access::Read => admin | read,
        }
    }
}

/// The token of `Authorization: Bearer <token>` (any case of `Bearer`), if one is given.
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The 401 for a request without the token `access` needs, saying which token that is.
pub fn unauthorized(tokens: &Tokens, access: Access) -> Response {
    let why = match access {
        Access::Admin => {
            "this route needs the admin token (http.admin_token) as `Authorization: Bearer <token>`; the read token does not open it"
        }
        Access::Read if tokens.read.is_none() && tokens.admin.is_none() => {
            "reading models and predicting need a bearer token, and none is configured: set http.read_token (or http.admin_token)"
        }
        Access::Read => {
            "this route needs the read token (http.read_token) or the admin token (http.admin_token) as `Authorization: Bearer <token>`"
        }
    };
    let mut r = error(StatusCode::UNAUTHORIZED, why).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// The 404 of an admin route when no admin token is configured.
pub fn admin_off() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "the admin API is off: set http.admin_token (or http.admin_token_file, or the environment variable DRIFTD_HTTP__ADMIN_TOKEN_FILE) to enable it",
    )
    .into_response()
}

/// A route layer's state: the tokens and what the routes behind it need.
#[derive(Clone)]
pub struct Guard {
    pub tokens: Arc<Tokens>,
    pub access: Access,
}

impl Guard {
    pub fn new(tokens: Arc<Tokens>, access: Access) -> Self {
        Guard { tokens, access }
    }
}

/// The route layer: passes the request on only with the right token (before any extractor
/// of the handler has read the body).
pub async fn require(State(g): State<Guard>, req: Request, next: Next) -> Response {
    if g.access == Access::Admin && !g.tokens.admin_configured() {
        return admin_off();
    }
    if g.tokens.allows(req.headers(), g.access) {
        next.run(req).await
    } else {
        unauthorized(&g.tokens, g.access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(auth).unwrap());
        h
    }

    #[test]
    fn each_token_opens_what_it_should() {
        let t = Tokens::new(Some(&Secret::new("r3ad")), Some(&Secret::new("adm1n")));
        assert!(t.allows(&with("Bearer r3ad"), Access::Read));
        assert!(t.allows(&with("bearer r3ad"), Access::Read));
        assert!(t.allows(&with("BEARER  r3ad "), Access::Read));
        assert!(!t.allows(&with("Bearer r3ad"), Access::Admin));
        assert!(t.allows(&with("Bearer adm1n"), Access::Admin));
        assert!(t.allows(&with("Bearer adm1n"), Access::Read));
        assert!(!t.allows(&with("Bearer r3a"), Access::Read));
        assert!(!t.allows(&with("Basic r3ad"), Access::Read));
        assert!(!t.allows(&with("Bearer "), Access::Read));
        assert!(!t.allows(&HeaderMap::new(), Access::Read));
        let none = Tokens::default();
        assert!(!none.allows(&with("Bearer x"), Access::Read));
        assert!(!none.allows(&HeaderMap::new(), Access::Admin));
    }

    #[test]
    fn digests_compare_exactly() {
        assert!(same(&digest("s3cret"), &digest("s3cret")));
        assert!(!same(&digest("s3cret"), &digest("s3creT")));
        assert!(!same(&digest("s3cret"), &digest("s3cret2")));
    }
}
