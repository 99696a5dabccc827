//! Customer use cases: the profile, its identities, and explainable merge and un-merge.

use otklik_domain::DomainError;
use otklik_domain::audit::{Actor, AuditEvent, FieldChange, set};
use otklik_domain::customer::{
    Customer, CustomerMerge, Identity, IdentityValue, check_merge, parse_language,
    parse_person_name,
};
use otklik_domain::ids::{CustomerId, CustomerMergeId, IdentityId};
use otklik_domain::permission::{Action, Principal};
use otklik_store::{CustomerQuery, MAX_PAGE_SIZE, Mutation, StoreError, UnitOfWork};

use crate::idempotency::{Committed, IdempotencyKey, commit_with_key, find_replay};
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// The fields of a new customer.
#[derive(Debug, Clone)]
pub struct CreateCustomerInput {
    pub name: String,
    pub language: Option<String>,
    pub identities: Vec<IdentityValue>,
}

/// A change to a customer; `None` leaves a field alone.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub language: Option<Option<String>>,
    pub add_identities: Vec<IdentityValue>,
    pub remove_identity_ids: Vec<IdentityId>,
}

/// A page of customers and where the next one starts.
#[derive(Debug, Clone)]
pub struct CustomerPage {
    pub customers: Vec<Customer>,
    pub next: Option<CustomerId>,
}

/// Customers carry at most this many identities (a guard against runaway imports).
pub const MAX_IDENTITIES: usize = 50;

fn identity_conflict(error: StoreError) -> AppError {
    match error {
        StoreError::Conflict { constraint } if constraint == "customer_identities.value" => AppError::Conflict {
            code: "identity_taken",
            message: "this identity already belongs to another customer; merge the two customers instead".into(),
        },
        other => other.into(),
    }
}

impl App {
    async fn existing_customer(&self, id: CustomerId) -> AppResult<Customer> {
        self.store
            .find_customer(id)
            .await?
            .ok_or(AppError::NotFound { what: "customer" })
    }

    /// Creates a customer with its identities.
    pub async fn create_customer(
        &self,
        principal: &Principal,
        input: CreateCustomerInput,
        key: Option<&IdempotencyKey>,
    ) -> AppResult<Customer> {
        principal.require(Action::WriteCustomers)?;
        if let Some(resource_id) = find_replay(self.store.as_ref(), key).await? {
            return self.existing_customer(CustomerId(resource_id)).await;
        }
        let name = parse_person_name(&input.name)?;
        let language = input.language.as_deref().map(parse_language).transpose()?;
        if input.identities.len() > MAX_IDENTITIES {
            return Err(
                DomainError::invalid("identities", format!("at most {MAX_IDENTITIES}")).into(),
            );
        }
        let now = self.clock.now();
        let id = CustomerId::new();
        let mut identities: Vec<Identity> = Vec::new();
        for value in input.identities {
            if identities.iter().all(|identity| identity.value != value) {
                identities.push(Identity {
                    id: IdentityId::new(),
                    customer_id: id,
                    value,
                    created_at: now,
                });
            }
        }
        let customer = Customer {
            id,
            name,
            language,
            identities,
            merged_into: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut changes = vec![set("name", &customer.name)];
        changes.extend(
            customer
                .identities
                .iter()
                .map(|identity| set("identity", describe(&identity.value))),
        );
        let unit = UnitOfWork::new()
            .with(Mutation::InsertCustomer(customer.clone()))
            .with(Mutation::Audit(AuditEvent::new(
                now,
                Actor::Agent(principal.agent_id),
                "customer.created",
                "customer",
                id.0,
                changes,
            )));
        match commit_with_key(self.store.as_ref(), unit, key, "customer", id.0, now).await {
            Ok(Committed::Fresh(_)) => Ok(customer),
            Ok(Committed::Replayed(resource_id)) => {
                self.existing_customer(CustomerId(resource_id)).await
            }
            Err(AppError::Store(error)) => Err(identity_conflict(error)),
            Err(error) => Err(error),
        }
    }

    /// A customer, merged or not (a merged one names its survivor).
    pub async fn get_customer(&self, principal: &Principal, id: CustomerId) -> AppResult<Customer> {
        principal.require(Action::ReadCustomers)?;
        self.existing_customer(id).await
    }

    /// The customer owning an identity.
    pub async fn find_customer_by_identity(
        &self,
        principal: &Principal,
        identity: &IdentityValue,
    ) -> AppResult<Option<Customer>> {
        principal.require(Action::ReadCustomers)?;
        Ok(self.store.find_customer_by_identity(identity).await?)
    }

    /// A page of customers, newest first.
    pub async fn list_customers(
        &self,
        principal: &Principal,
        after: Option<CustomerId>,
        limit: u32,
        include_merged: bool,
    ) -> AppResult<CustomerPage> {
        principal.require(Action::ReadCustomers)?;
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let customers = self
            .store
            .list_customers(&CustomerQuery {
                include_merged,
                after,
                limit,
            })
            .await?;
        let next = (customers.len() == limit as usize)
            .then(|| customers.last().map(|customer| customer.id))
            .flatten();
        Ok(CustomerPage { customers, next })
    }

    /// Changes a customer's name, language and identities.
    pub async fn update_customer(
        &self,
        principal: &Principal,
        id: CustomerId,
        patch: CustomerPatch,
    ) -> AppResult<Customer> {
        principal.require(Action::WriteCustomers)?;
        let name = patch.name.as_deref().map(parse_person_name).transpose()?;
        let language = match &patch.language {
            Some(Some(language)) => Some(Some(parse_language(language)?)),
            Some(None) => Some(None),
            None => None,
        };
        for _ in 0..MAX_ATTEMPTS {
            let mut customer = self.existing_customer(id).await?;
            if customer.merged_into.is_some() {
                return Err(DomainError::InvalidMerge(
                    "a merged customer cannot be changed; change the survivor".into(),
                )
                .into());
            }
            let expected_version = customer.version;
            let now = self.clock.now();
            let mut changes: Vec<FieldChange> = Vec::new();
            let mut unit = UnitOfWork::new();
            if let Some(name) = &name
                && *name != customer.name
            {
                changes.push(FieldChange {
                    field: "name",
                    before: Some(customer.name.clone()),
                    after: Some(name.clone()),
                });
                customer.name = name.clone();
            }
            if let Some(language) = &language
                && *language != customer.language
            {
                changes.push(FieldChange {
                    field: "language",
                    before: customer.language.clone(),
                    after: language.clone(),
                });
                customer.language = language.clone();
            }
            for identity_id in &patch.remove_identity_ids {
                let Some(position) = customer
                    .identities
                    .iter()
                    .position(|identity| identity.id == *identity_id)
                else {
                    return Err(AppError::InvalidReference {
                        field: "remove_identity_ids",
                        reason: format!("the customer has no identity {identity_id}"),
                    });
                };
                let removed = customer.identities.remove(position);
                changes.push(FieldChange {
                    field: "identity",
                    before: Some(describe(&removed.value)),
                    after: None,
                });
                unit.push(Mutation::DeleteIdentity(removed.id));
            }
            for value in &patch.add_identities {
                if customer
                    .identities
                    .iter()
                    .any(|identity| identity.value == *value)
                {
                    continue;
                }
                let identity = Identity {
                    id: IdentityId::new(),
                    customer_id: id,
                    value: value.clone(),
                    created_at: now,
                };
                changes.push(FieldChange {
                    field: "identity",
                    before: None,
                    after: Some(describe(value)),
                });
                customer.identities.push(identity.clone());
                unit.push(Mutation::InsertIdentity(identity));
            }
            if customer.identities.len() > MAX_IDENTITIES {
                return Err(DomainError::invalid(
                    "identities",
                    format!("at most {MAX_IDENTITIES}"),
                )
                .into());
            }
            if changes.is_empty() {
                return Ok(customer);
            }
            customer.updated_at = now;
            unit.push(Mutation::UpdateCustomer {
                customer: customer.clone(),
                expected_version,
            });
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                Actor::Agent(principal.agent_id),
                "customer.updated",
                "customer",
                id.0,
                changes,
            )));
            match self.store.commit(unit).await {
                Ok(_) => return self.existing_customer(id).await,
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(identity_conflict(error)),
            }
        }
        Err(StoreError::VersionConflict { what: "customer" }.into())
    }

    /// Merges `source` into `target`: identities and tickets move, the source points to the
    /// survivor, and a merge record keeps exactly what moved so it can be undone.
    pub async fn merge_customers(
        &self,
        principal: &Principal,
        source_id: CustomerId,
        target_id: CustomerId,
    ) -> AppResult<CustomerMerge> {
        principal.require(Action::MergeCustomers)?;
        for _ in 0..MAX_ATTEMPTS {
            let mut source = self.existing_customer(source_id).await?;
            let target = self.existing_customer(target_id).await.map_err(|_| {
                AppError::InvalidReference {
                    field: "target_customer_id",
                    reason: format!("no customer {target_id}"),
                }
            })?;
            check_merge(&source, &target)?;
            let now = self.clock.now();
            let merge = CustomerMerge {
                id: CustomerMergeId::new(),
                source_id,
                target_id,
                moved_identity_ids: source
                    .identities
                    .iter()
                    .map(|identity| identity.id)
                    .collect(),
                moved_ticket_ids: self.store.list_customer_ticket_ids(source_id).await?,
                merged_by: Some(principal.agent_id),
                merged_at: now,
                undone_at: None,
            };
            let expected_version = source.version;
            source.merged_into = Some(target_id);
            source.updated_at = now;
            let actor = Actor::Agent(principal.agent_id);
            let summary = vec![
                set("merge_id", merge.id),
                set("source_id", source_id),
                set("target_id", target_id),
                set("moved_identities", merge.moved_identity_ids.len()),
                set("moved_tickets", merge.moved_ticket_ids.len()),
            ];
            let unit = UnitOfWork::new()
                .with(Mutation::MoveIdentities {
                    identity_ids: merge.moved_identity_ids.clone(),
                    to: target_id,
                })
                .with(Mutation::MoveTickets {
                    ticket_ids: merge.moved_ticket_ids.clone(),
                    to: target_id,
                    at: now,
                })
                .with(Mutation::UpdateCustomer {
                    customer: source,
                    expected_version,
                })
                .with(Mutation::InsertCustomerMerge(merge.clone()))
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor,
                    "customer.merged_away",
                    "customer",
                    source_id.0,
                    summary.clone(),
                )))
                .with(Mutation::Audit(AuditEvent::new(
                    now,
                    actor,
                    "customer.merged_in",
                    "customer",
                    target_id.0,
                    summary,
                )));
            match self.store.commit(unit).await {
                Ok(_) => return Ok(merge),
                Err(StoreError::VersionConflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::VersionConflict { what: "customer" }.into())
    }

    /// Undoes a merge: the identities and tickets that moved (and still sit with the target)
    /// go back, and the source is a customer of its own again.
    pub async fn unmerge_customers(
        &self,
        principal: &Principal,
        merge_id: CustomerMergeId,
    ) -> AppResult<CustomerMerge> {
        principal.require(Action::MergeCustomers)?;
        let merge = self
            .store
            .find_customer_merge(merge_id)
            .await?
            .ok_or(AppError::NotFound {
                what: "customer merge",
            })?;
        if merge.undone_at.is_some() {
            return Err(DomainError::InvalidMerge("this merge was already undone".into()).into());
        }
        let mut source = self.existing_customer(merge.source_id).await?;
        let target = self.existing_customer(merge.target_id).await?;
        if source.merged_into != Some(target.id) || target.merged_into.is_some() {
            return Err(DomainError::InvalidMerge(
                "the customers were changed by a later merge; undo that one first".into(),
            )
            .into());
        }
        let identity_ids: Vec<IdentityId> = merge
            .moved_identity_ids
            .iter()
            .copied()
            .filter(|id| target.identities.iter().any(|identity| identity.id == *id))
            .collect();
        let still_with_target = self.store.list_customer_ticket_ids(target.id).await?;
        let ticket_ids: Vec<_> = merge
            .moved_ticket_ids
            .iter()
            .copied()
            .filter(|id| still_with_target.contains(id))
            .collect();
        let now = self.clock.now();
        let expected_version = source.version;
        source.merged_into = None;
        source.updated_at = now;
        let summary = vec![
            set("merge_id", merge.id),
            set("returned_identities", identity_ids.len()),
            set("returned_tickets", ticket_ids.len()),
        ];
        let actor = Actor::Agent(principal.agent_id);
        let unit = UnitOfWork::new()
            .with(Mutation::MoveIdentities {
                identity_ids,
                to: source.id,
            })
            .with(Mutation::MoveTickets {
                ticket_ids,
                to: source.id,
                at: now,
            })
            .with(Mutation::UpdateCustomer {
                customer: source.clone(),
                expected_version,
            })
            .with(Mutation::MarkCustomerMergeUndone {
                id: merge.id,
                at: now,
            })
            .with(Mutation::Audit(AuditEvent::new(
                now,
                actor,
                "customer.unmerged",
                "customer",
                source.id.0,
                summary.clone(),
            )))
            .with(Mutation::Audit(AuditEvent::new(
                now,
                actor,
                "customer.unmerged",
                "customer",
                target.id.0,
                summary,
            )));
        self.store.commit(unit).await?;
        self.store
            .find_customer_merge(merge_id)
            .await?
            .ok_or(AppError::NotFound {
                what: "customer merge",
            })
    }

    /// Merges a customer took part in, newest first.
    pub async fn list_customer_merges(
        &self,
        principal: &Principal,
        customer_id: CustomerId,
    ) -> AppResult<Vec<CustomerMerge>> {
        principal.require(Action::ReadCustomers)?;
        self.existing_customer(customer_id).await?;
        let mut merges = self.store.list_customer_merges(customer_id).await?;
        if !principal.sees_all_tickets() {
            // A merge record must not reveal tickets the caller may not open.
            for merge in &mut merges {
                let mut visible = Vec::with_capacity(merge.moved_ticket_ids.len());
                for ticket_id in &merge.moved_ticket_ids {
                    if let Some(ticket) = self.store.find_ticket(*ticket_id).await?
                        && principal.can_view_ticket(&ticket)
                    {
                        visible.push(*ticket_id);
                    }
                }
                merge.moved_ticket_ids = visible;
            }
        }
        Ok(merges)
    }

    /// The audit history of a customer.
    pub async fn customer_audit(
        &self,
        principal: &Principal,
        customer_id: CustomerId,
    ) -> AppResult<Vec<otklik_domain::audit::StoredAuditEvent>> {
        principal.require(Action::ReadCustomers)?;
        self.existing_customer(customer_id).await?;
        Ok(self.store.list_audit_events(customer_id.0).await?)
    }
}

/// An identity as one line for the audit log ("email:anna@example.ru").
fn describe(value: &IdentityValue) -> String {
    if value.provider.is_empty() {
        format!("{}:{}", value.kind, value.value)
    } else {
        format!("{}:{}:{}", value.kind, value.provider, value.value)
    }
}
