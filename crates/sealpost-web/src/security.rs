//! Security headers on every response.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The portal's own pages load nothing from elsewhere and may not be framed.
const DEFAULT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The two pages that load /static/passkey.js (sign-in and profile) may run scripts from this
/// origin and send them back to it; no page may run inline script.
const PASSKEY_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
    script-src 'self'; connect-src 'self'; \
    form-action 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page at `path`.
fn csp_for(path: &str) -> &'static str {
    // Also the profile re-rendered with an error by a form post under /profile/.
    if path == "/login"
        || path == "/login/second"
        || path == "/profile"
        || path.starts_with("/profile/")
    {
        PASSKEY_CSP
    } else {
        DEFAULT_CSP
    }
}

/// The Outlook add-in's hosted files (`/addins/outlook/...`, see `addins::public_file`) are
/// the one exception, marked by this response extension: their page loads Office.js from
/// Microsoft's CDN (Office.js fetches its locale scripts from there too), and Outlook on the
/// web runs it in a hidden frame of its own page, so it must be frameable. Any https page may
/// frame it, because Exchange on premises serves Outlook on the web from the site's own host;
/// the page has no visible content and no action to trick anyone into.
#[derive(Debug, Clone, Copy)]
pub struct OfficeAddin;

const OFFICE_ADDIN_CSP: &str = "default-src 'none'; \
    script-src 'self' https://appsforoffice.microsoft.com; \
    connect-src https://appsforoffice.microsoft.com; style-src 'self'; img-src 'self' data:; \
    form-action 'none'; frame-ancestors https:; base-uri 'none'";

pub async fn headers(request: Request, next: Next) -> Response {
    let csp = csp_for(request.uri().path());
    let mut response = next.run(request).await;
    let office_addin = response.extensions().get::<OfficeAddin>().is_some();
    let h = response.headers_mut();
    if office_addin {
        set_default(h, header::CONTENT_SECURITY_POLICY, OFFICE_ADDIN_CSP);
    } else {
        set_default(h, header::CONTENT_SECURITY_POLICY, csp);
        // Not on the add-in's files: X-Frame-Options has no allow-list, their CSP's
        // frame-ancestors says who may frame them.
        set_default(h, header::X_FRAME_OPTIONS, "DENY");
    }
    set_default(
        h,
        header::STRICT_TRANSPORT_SECURITY,
        "max-age=31536000; includeSubDomains",
    );
    set_default(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set_default(h, header::REFERRER_POLICY, "no-referrer");
    set_default(h, header::CACHE_CONTROL, "no-store");
    set_default(
        h,
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set_default(
        h,
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    response
}

fn set_default(h: &mut HeaderMap, name: HeaderName, value: &'static str) {
    if !h.contains_key(&name) {
        h.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_passkey_pages_may_run_scripts_and_none_inline() {
        for path in ["/login", "/profile", "/profile/password"] {
            assert!(csp_for(path).contains("script-src 'self';"), "{path}");
        }
        for path in [
            "/",
            "/open/x",
            "/welcome",
            "/forgot",
            "/admin",
            "/login/code",
            "/profiles",
        ] {
            assert!(!csp_for(path).contains("script-src"), "{path}");
        }
        assert!(!PASSKEY_CSP.contains("unsafe-inline"));
    }
}
