//! The organisation's brand as the portal shows it: name, logo, accent colour, support
//! contact, imprint and privacy links, and the portal's host name in words (the one a
//! recipient should see in the address bar). Taken from the settings once per request and kept
//! in a task-local, so that every page, including error pages made far from any handler, shows
//! the same brand.
//!
//! The accent colour reaches the page through `/static/brand.css` and the logo through
//! `/brand/logo`, both from this origin: the strict CSP (`style-src 'self'`, `img-src 'self'`)
//! stays, no inline style is needed.

use std::sync::Arc;

use sealpost_core::Settings;

tokio::task_local! {
    static REQUEST_BRAND: Arc<PortalBrand>;
}

#[derive(Debug, Clone)]
pub struct PortalBrand {
    pub org: String,
    /// A logo is configured (served at `/brand/logo`).
    pub logo: bool,
    /// Phone number or URL; empty = none.
    pub support_contact: String,
    /// `https://` links; empty = none.
    pub imprint_url: String,
    pub privacy_url: String,
    /// The portal's host name (from `web.public_url`).
    pub host: String,
}

impl Default for PortalBrand {
    fn default() -> Self {
        PortalBrand::of(&Settings::default())
    }
}

impl PortalBrand {
    pub fn of(settings: &Settings) -> Self {
        let branding = settings.branding();
        PortalBrand {
            org: branding.org().to_string(),
            logo: settings.logo.image().is_some(),
            support_contact: branding.support_contact,
            imprint_url: branding.imprint_url,
            privacy_url: branding.privacy_url,
            host: sealpost_core::url::host(&settings.public_url)
                .unwrap_or_default()
                .to_string(),
        }
    }

    /// The brand of the current request (the defaults outside one).
    pub fn current() -> Arc<PortalBrand> {
        REQUEST_BRAND
            .try_with(Arc::clone)
            .unwrap_or_else(|_| Arc::new(PortalBrand::default()))
    }

    /// Whether the support contact is a link (else it is shown as text, e.g. a phone number).
    pub fn contact_is_link(&self) -> bool {
        self.support_contact.starts_with("https://")
    }

    /// Runs `f` with this brand as the request's.
    pub fn scope<F: Future>(self, f: F) -> impl Future<Output = F::Output> {
        REQUEST_BRAND.scope(Arc::new(self), f)
    }
}

/// The style sheet that gives the portal the organisation's accent colour. The admin UI keeps
/// its own colour and uses the organisation's only inside the branding preview.
pub fn accent_css(settings: &Settings) -> String {
    // `Branding::accent` passes only a strict #RRGGBB, so nothing else reaches the CSS.
    let accent = settings.branding().accent().to_string();
    format!(
        ":root {{ --accent: {accent}; }}\nbody.admin {{ --accent: {DEFAULT_ACCENT}; }}\n.brand-preview {{ --accent: {accent}; }}\n"
    )
}

/// The admin UI's own accent (portal.css's default).
const DEFAULT_ACCENT: &str = "#1f5fa8";
