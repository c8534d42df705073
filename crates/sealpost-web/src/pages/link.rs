//! `/m/{id}`: the main button of a carrier under the opt-in `link` delivery profile. The
//! [`Linked`] guard has found the encrypted copy for the signed-in reader; it is parked as a
//! temporary open, exactly as if its secure.htm had been posted to `/open`, and the reader is
//! sent on to `/open/{token}`, where it is opened and shown like any other message (reading,
//! downloads, reply). The copy itself stays until `delivery.link_days` have passed.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};

use super::open_upload;
use crate::AppState;
use crate::error::WebError;
use crate::guards::ClientIp;
use crate::guards::linked::Linked;

pub async fn open_link(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Linked { reader, copy }: Linked,
) -> Result<Response, WebError> {
    let settings = state.settings.get();
    let (token, token_hash) = sealpost_crypto::new_token();
    let now = sealpost_store::unix_now();
    let expires_at = now + settings.temp_open_ttl_secs;
    let ttl =
        std::time::Duration::from_secs(u64::try_from(settings.temp_open_ttl_secs).unwrap_or(0));
    // Counted like uploads: following a link again and again parks a copy each time.
    let slot = state
        .rate_limits
        .uploads
        .start(ip, ttl)
        .map_err(open_upload::refusal)?;
    let envelope = open_upload::Spool::new(&state.store, &token_hash, now, expires_at, slot)
        .finish(copy.envelope)
        .await?;
    crate::handoff::park(&token_hash, envelope, expires_at);
    sealpost_core::link::audit_opened(
        &state.store,
        &reader.account,
        &copy.envelope_id,
        &ip.to_string(),
    )
    .await;
    Ok(Redirect::to(&format!("/open/{token}")).into_response())
}
