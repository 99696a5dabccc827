//! The workspace's tests: one binary (fast to link), driving the router over a real SQLite
//! store; `browser` drives a real headless Chromium.

mod account;
mod admin;
mod browser;
mod catalogue;
mod chat;
mod chat_browser;
mod conversation;
mod helpers;
mod lists;
mod security;
mod workspace;
