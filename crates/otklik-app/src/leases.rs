//! Leases: a named job that one node at a time should run (watching a mailbox's IMAP folder),
//! held in the database so every node sees the same holder. A holder renews before the lease
//! ends; a node that dies simply stops renewing and another takes over once it ends.

use jiff::SignedDuration;
use otklik_store::{Mutation, StoreError, UnitOfWork};

use crate::{App, AppResult};

impl App {
    /// Takes or renews the lease `name` for `holder` for `ttl`; `false` when another holder's
    /// lease is still running.
    pub async fn hold_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: SignedDuration,
    ) -> AppResult<bool> {
        let now = self.clock.now();
        let until = now.checked_add(ttl).unwrap_or(now);
        let unit = UnitOfWork::new().with(Mutation::AcquireLease {
            name: name.into(),
            holder: holder.into(),
            now,
            until,
        });
        match self.store.commit(unit).await {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict { constraint }) if constraint == "leases.held" => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    /// Gives up a lease `holder` holds, so another node need not wait for it to end.
    pub async fn release_lease(&self, name: &str, holder: &str) -> AppResult<()> {
        self.store
            .commit(UnitOfWork::new().with(Mutation::ReleaseLease {
                name: name.into(),
                holder: holder.into(),
            }))
            .await?;
        Ok(())
    }
}
