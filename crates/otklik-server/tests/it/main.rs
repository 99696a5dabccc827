//! Black-box tests of the whole server over HTTP, on SQLite and on PostgreSQL. One binary for
//! all of them: each test file would otherwise link the whole server again.

mod authz;
mod chat;
mod cli;
mod customers;
mod email;
mod helpers;
mod ops;
mod realtime;
mod search;
mod staff;
mod tickets;
