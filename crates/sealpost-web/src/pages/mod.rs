//! One module per page or page group.

pub mod assets;
pub mod forgot;
pub mod health;
pub mod home;
pub mod link;
pub mod login;
pub mod login_code;
pub mod open;
mod open_upload;
pub mod passkey;
pub mod profile;
pub mod profile_factors;
pub mod reply;
pub mod reset;
pub mod second_factor;
pub mod sender;
pub mod welcome;

use crate::error::WebError;

pub async fn not_found() -> WebError {
    WebError::NotFound
}

/// Renders an askama page into a response.
pub fn render(page: &impl askama::Template) -> Result<axum::response::Html<String>, WebError> {
    Ok(axum::response::Html(page.render()?))
}
