//! The context every portal page shows: its language, the signed-in address (for the
//! navigation) and the session's CSRF token (for the sign-out form). Page structs embed it as
//! `ctx` and deref to it (`page_ctx!`), so templates keep writing `tr`, `address`, `csrf`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use std::sync::Arc;

use crate::AppState;
use crate::brand::PortalBrand;
use crate::error::WebError;
use crate::i18n::Tr;

pub struct PageCtx {
    pub tr: Tr,
    pub address: String,
    pub csrf: String,
    /// The organisation's brand (header, footer, the "is it genuine?" block).
    pub brand: Arc<PortalBrand>,
}

/// Without a session: a page in the browser's language (sign-in, errors).
impl FromRequestParts<AppState> for PageCtx {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PageCtx {
            tr: Tr::for_request(&parts.headers, None, &state.settings.get().default_language),
            address: String::new(),
            csrf: String::new(),
            brand: PortalBrand::current(),
        })
    }
}

/// Lets a page struct with a `ctx: PageCtx` field be used where templates read `tr`,
/// `address` and `csrf`.
macro_rules! page_ctx {
    ($page:ident) => {
        impl std::ops::Deref for $page {
            type Target = $crate::guards::PageCtx;
            fn deref(&self) -> &$crate::guards::PageCtx {
                &self.ctx
            }
        }
    };
}
pub(crate) use page_ctx;
