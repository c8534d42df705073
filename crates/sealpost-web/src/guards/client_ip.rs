//! The client's address, by one rule: the peer, or the nearest untrusted X-Forwarded-For hop
//! when the peer is a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use sealpost_core::Settings;

use crate::AppState;
use crate::error::WebError;

/// The address a request comes from, for audit, rate limits and the admin network rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        client_ip(&state.settings.get(), peer, &parts.headers)
            .map(ClientIp)
            .ok_or(WebError::Forbidden)
    }
}

impl std::fmt::Display for ClientIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The client's address of a request with this peer and these headers.
pub(crate) fn client_ip(
    settings: &Settings,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Option<IpAddr> {
    let peer = peer?.ip();
    let proxies = &settings.trusted_proxies;
    let trusted = |ip: &IpAddr| proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !trusted(ip))
            .unwrap_or(peer),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let settings = Settings {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..Settings::default()
        };
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.9, 10.1.1.1".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.2:1".parse().unwrap();
        let direct: SocketAddr = "198.51.100.1:1".parse().unwrap();
        assert_eq!(
            client_ip(&settings, Some(proxy), &h),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(
            client_ip(&settings, Some(direct), &h),
            Some("198.51.100.1".parse().unwrap())
        );
    }
}
