//! Reads the agent workspace needs for whole pages at once, so a page of 25 tickets costs a
//! fixed number of queries rather than one per row.

use std::collections::HashMap;

use otklik_domain::customer::Customer;
use otklik_domain::ids::CustomerId;
use otklik_domain::permission::{Action, Principal};

use crate::{App, AppResult};

impl App {
    /// The customers with these ids, in one read (unknown ids are left out).
    pub async fn get_customers(
        &self,
        principal: &Principal,
        ids: &[CustomerId],
    ) -> AppResult<Vec<Customer>> {
        principal.require(Action::ReadCustomers)?;
        Ok(self.store.find_customers(ids).await?)
    }

    /// The names of the customers with these ids, in one read.
    pub async fn customer_names(
        &self,
        principal: &Principal,
        ids: &[CustomerId],
    ) -> AppResult<HashMap<CustomerId, String>> {
        Ok(self
            .get_customers(principal, ids)
            .await?
            .into_iter()
            .map(|customer| (customer.id, customer.name))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use otklik_domain::clock::SystemClock;
    use otklik_domain::customer::{IdentityKind, IdentityValue};
    use otklik_store::blobs::LocalBlobStore;
    use otklik_store_sqlite::SqliteStore;

    use super::*;
    use crate::customers::CreateCustomerInput;

    #[tokio::test]
    async fn customer_names_come_from_one_batch_and_skip_unknown_ids() {
        let folder = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&folder.path().join("o.db")).unwrap());
        let blobs = Arc::new(LocalBlobStore::new(folder.path().join("blobs")));
        let app = App::new(store, blobs, Arc::new(SystemClock));
        let admin = app
            .create_admin_from_cli("a@shop.test", "Admin", "long enough password".into())
            .await
            .unwrap();
        let principal = App::principal_of(&admin, None, None);
        let mut ids = Vec::new();
        for (name, email) in [("Анна", "anna@example.ru"), ("Boris", "b@example.com")] {
            let customer = app
                .create_customer(
                    &principal,
                    CreateCustomerInput {
                        name: name.into(),
                        language: None,
                        identities: vec![
                            IdentityValue::parse(IdentityKind::Email, None, email).unwrap(),
                        ],
                    },
                    None,
                )
                .await
                .unwrap();
            ids.push(customer.id);
        }
        ids.push(CustomerId::new());
        let names = app.customer_names(&principal, &ids).await.unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names[&ids[0]], "Анна");
        assert_eq!(names[&ids[1]], "Boris");
    }
}
