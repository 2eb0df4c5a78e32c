//! The REST API's handlers, one module per area; each returns an
//! `OpenApiRouter` so that the routes and their OpenAPI document are one.

pub mod auth;
pub mod banking;
pub mod ops;
pub mod risk;
pub mod streams;
pub mod users;
