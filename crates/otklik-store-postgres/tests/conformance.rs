//! The storage port's conformance suite on PostgreSQL: one brand-new database per case.

use otklik_store_postgres::testkit as test_database;

use test_database::fresh_store;

otklik_store::conformance_tests!(fresh_store);
