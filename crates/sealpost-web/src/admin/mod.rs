//! The administrators' web UI under `/admin` (see the admin issue); routes are merged into the
//! main router here so the portal and admin can grow independently.

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
}
