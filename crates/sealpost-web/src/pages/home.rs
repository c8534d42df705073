//! The start page: upload secure.htm by hand (the fallback for phones that cannot open it).

use askama::Template;
use axum::response::{IntoResponse, Response};

use super::render;
use crate::error::WebError;
use crate::guards::page::page_ctx;
use crate::guards::{PageCtx, Reader};

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    ctx: PageCtx,
}
page_ctx!(HomePage);

pub async fn home(reader: Reader) -> Result<Response, WebError> {
    Ok(render(&HomePage { ctx: reader.page() })?.into_response())
}
