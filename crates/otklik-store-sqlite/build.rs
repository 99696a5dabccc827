//! Rebuilds the crate when a migration file is added or removed: `embed_migrations!` reads the
//! folder at compile time, and without this a cached build would keep the old list.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
