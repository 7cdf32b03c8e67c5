//! HTTP routes. Handlers only extract and validate, then call plain functions.

pub mod admin;
pub mod health;
pub mod webhook;
