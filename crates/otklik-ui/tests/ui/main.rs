//! The workspace's tests: one binary (fast to link), driving the router over a real SQLite
//! store; `browser` drives a real headless Chromium.

mod browser;
mod catalogue;
mod helpers;
mod security;
mod workspace;
