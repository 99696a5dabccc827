//! Otklik's domain: the types and rules of a helpdesk, with no I/O.
//!
//! This crate decides *what is allowed* (status transitions, who may see a ticket, what a valid
//! e-mail identity or tag name is) and *what a change looks like* (the new state plus the audit
//! event that records it). It never talks to a database, the network or the system clock
//! directly: time comes through [`clock::Clock`], persistence is the store crates' job.
//!
//! It must not depend on any other Otklik crate, nor on async runtimes, SQL or HTTP crates.

pub mod agent;
pub mod attachment;
pub mod audit;
pub mod chat;
pub mod clock;
pub mod customer;
pub mod email;
pub mod error;
pub mod ids;
pub mod message;
pub mod permission;
pub mod settings;
pub mod ticket;
pub mod view;

pub use error::DomainError;
pub use jiff::Timestamp;
