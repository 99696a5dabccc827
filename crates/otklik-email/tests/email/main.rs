//! One integration-test binary for the crate (one link instead of one per file).

mod corpus;
mod html;
mod inbound;
mod limits;
mod outbound;
mod quotes;
mod threading;
