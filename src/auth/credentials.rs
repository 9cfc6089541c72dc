//! What a client request brings to prove who makes it, carried while the request is served.
//!
//! The client port's router runs every gRPC call and every gateway call inside
//! [`with_credentials`], which records the request's `token` header (what etcd clients send;
//! the gateway's `Authorization` header is accepted too, as etcd does) and the Common Name of
//! the client certificate the TLS layer verified, in a task-local. The API reads them with
//! [`current_credentials`] when a check needs them, so every handler and everything it calls
//! (the Lock and Election services call the KV functions) is checked as the same user.
//!
//! Code running outside a scope (kvd's own background work) has no credentials and is trusted.
//! A handler that hands work to a spawned task wraps it with [`inherit`] to keep the caller.

use std::future::Future;

tokio::task_local! {
    static CURRENT: Credentials;
}

/// The Common Name of a verified client certificate, as a request extension. With
/// `--client-cert-auth` and auth enabled, a request without a token is made by the user of
/// that name. The TLS layer attaches a [`crate::tls::PeerIdentity`] to each request, whose
/// Common Name is used the same way; this type lets other front ends (and tests) do the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity(pub String);

/// A request's credentials, unresolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The `token` (or `authorization`) header.
    pub token: Option<String>,
    /// The Common Name of the verified client certificate, if any.
    pub common_name: Option<String>,
}

impl Credentials {
    /// The credentials of an HTTP (gRPC or gateway) request.
    pub fn from_http(headers: &http::HeaderMap, extensions: &http::Extensions) -> Self {
        let token = ["token", "authorization"]
            .iter()
            .find_map(|name| headers.get(*name))
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let common_name = extensions
            .get::<CertIdentity>()
            .map(|c| c.0.clone())
            .or_else(|| {
                extensions
                    .get::<crate::tls::PeerIdentity>()
                    .and_then(|p| p.common_name.clone())
            });
        Self { token, common_name }
    }
}

/// The credentials of the request being served; `None` outside any request (kvd itself).
pub fn current_credentials() -> Option<Credentials> {
    CURRENT.try_with(Credentials::clone).ok()
}

/// Runs `f` as a request made with `credentials`.
pub async fn scoped<F: Future>(credentials: Credentials, f: F) -> F::Output {
    CURRENT.scope(credentials, f).await
}

/// `f` running with the current request's credentials (for work spawned by a handler).
pub fn inherit<F>(f: F) -> impl Future<Output = F::Output>
where
    F: Future,
{
    let credentials = current_credentials();
    async move {
        match credentials {
            Some(c) => CURRENT.scope(c, f).await,
            None => f.await,
        }
    }
}

/// The client port's middleware: serves `request` inside its credentials scope.
pub async fn with_credentials(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let credentials = Credentials::from_http(request.headers(), request.extensions());
    CURRENT.scope(credentials, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_header_wins_over_authorization() {
        let mut h = http::HeaderMap::new();
        h.insert("authorization", http::HeaderValue::from_static("b"));
        let mut e = http::Extensions::new();
        assert_eq!(Credentials::from_http(&h, &e).token.as_deref(), Some("b"));
        h.insert("token", http::HeaderValue::from_static("a"));
        e.insert(CertIdentity("cn".into()));
        let c = Credentials::from_http(&h, &e);
        assert_eq!(c.token.as_deref(), Some("a"));
        assert_eq!(c.common_name.as_deref(), Some("cn"));
    }

    #[tokio::test]
    async fn scopes_carry_credentials_into_inherited_tasks() {
        assert_eq!(current_credentials(), None);
        let c = Credentials {
            token: Some("t".into()),
            common_name: None,
        };
        let seen = scoped(c.clone(), async {
            tokio::spawn(inherit(async { current_credentials() }))
                .await
                .expect("join")
        })
        .await;
        assert_eq!(seen, Some(c));
    }
}
