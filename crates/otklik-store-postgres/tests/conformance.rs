//! The storage port's conformance suite on PostgreSQL: one brand-new database per case.

#[path = "support/test_database.rs"]
#[allow(dead_code)] // Shared with tests/postgres.rs, which uses the rest.
mod test_database;

use test_database::fresh_store;

otklik_store::conformance_tests!(fresh_store);
