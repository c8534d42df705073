//! The start page: upload secure.htm by hand (the fallback for phones that cannot open it).

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::render;
use crate::AppState;
use crate::error::WebError;
use crate::i18n::Tr;
use crate::session::MaybeUser;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    tr: Tr,
    address: &'a str,
    csrf: &'a str,
}

pub async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    MaybeUser(user): MaybeUser,
) -> Result<Response, WebError> {
    let Some(user) = user else {
        return Ok(Redirect::to("/login").into_response());
    };
    let settings = state.settings.get();
    if let Some(detour) = super::welcome::detour(&user, &settings, "/") {
        return Ok(detour);
    }
    let tr = Tr::for_request(
        &headers,
        user.account.language.as_deref(),
        &settings.default_language,
    );
    Ok(render(&HomePage {
        tr,
        address: &user.account.address,
        csrf: &user.csrf,
    })?
    .into_response())
}
