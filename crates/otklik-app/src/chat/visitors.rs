//! Visitors of a chat site: anonymous browsers, or shop customers whose identity the shop
//! signed. A visitor holds bearer tokens (only their SHA-256 is stored); a verified customer
//! gets one visitor across browsers, so they see their own history everywhere.

use hmac::{Hmac, Mac};
use otklik_domain::DomainError;
use otklik_domain::audit::{Actor, AuditEvent, set};
use otklik_domain::chat::{MAX_EXTERNAL_ID_CHARS, Visitor};
use otklik_domain::customer::{Customer, Identity, IdentityKind, IdentityValue, parse_person_name};
use otklik_domain::ids::{ChatSiteId, CustomerId, IdentityId, VisitorId};
use otklik_store::{Mutation, StoreError, UnitOfWork};
use sha2::Sha256;

use super::VisitorSession;
use crate::auth::{random_secret, secret_hash};
use crate::{App, AppError, AppResult, MAX_ATTEMPTS};

/// What the shop says about a signed-in customer, with its signature:
/// hex(HMAC-SHA256(site identity secret, external_id)).
#[derive(Debug, Clone)]
pub struct IdentityClaim {
    pub external_id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub signature: String,
}

/// Whether `signature` is the site's HMAC of `external_id` (compared in constant time).
pub fn identity_signature_is_valid(secret: &str, external_id: &str, signature: &str) -> bool {
    let Ok(signature) = hex::decode(signature.trim()) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(external_id.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

/// Signs an external id the way the shop's server must (used by tests and the admin page's
/// example).
pub fn sign_identity(secret: &str, external_id: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(external_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

impl App {
    /// Creates a visitor session for a site and returns its token (shown once). With a valid
    /// identity claim, the visitor is the shop's customer across browsers.
    pub async fn create_visitor(
        &self,
        site_id: ChatSiteId,
        claim: Option<IdentityClaim>,
    ) -> AppResult<(String, VisitorSession)> {
        let site = self.active_chat_site(site_id).await?;
        let verified = match &claim {
            Some(claim) => {
                let external_id = claim.external_id.trim();
                if external_id.is_empty() || external_id.chars().count() > MAX_EXTERNAL_ID_CHARS {
                    return Err(DomainError::invalid(
                        "identity.external_id",
                        format!("must be 1–{MAX_EXTERNAL_ID_CHARS} characters"),
                    )
                    .into());
                }
                if !identity_signature_is_valid(
                    &site.identity_secret,
                    external_id,
                    &claim.signature,
                ) {
                    return Err(AppError::Refused {
                        code: "identity_invalid",
                        message: "the identity signature does not match".into(),
                    });
                }
                Some(claim.clone())
            }
            None if site.require_identity => {
                return Err(AppError::Refused {
                    code: "identity_required",
                    message: "this chat is for signed-in customers of the shop".into(),
                });
            }
            None => None,
        };
        let token = random_secret();
        for _ in 0..MAX_ATTEMPTS {
            let now = self.clock.now();
            let mut unit = UnitOfWork::new();
            let visitor = match &verified {
                Some(claim) => {
                    let external_id = claim.external_id.trim();
                    match self
                        .store
                        .find_visitor_by_external_id(site.id, external_id)
                        .await?
                    {
                        Some(visitor) => visitor,
                        None => {
                            let customer_id = self
                                .verified_customer(&mut unit, &site.id, claim, now)
                                .await?;
                            let visitor = Visitor {
                                id: VisitorId::new(),
                                site_id: site.id,
                                customer_id,
                                verified_external_id: Some(external_id.to_owned()),
                                created_at: now,
                            };
                            unit.push(Mutation::InsertVisitor(visitor.clone()));
                            visitor
                        }
                    }
                }
                None => {
                    let visitor_id = VisitorId::new();
                    let customer_id = CustomerId::new();
                    let identity = IdentityValue::parse(
                        IdentityKind::ChatVisitor,
                        None,
                        &visitor_id.to_string(),
                    )?;
                    unit.push(Mutation::InsertCustomer(Customer {
                        id: customer_id,
                        name: identity.value.clone(),
                        language: None,
                        identities: vec![Identity {
                            id: IdentityId::new(),
                            customer_id,
                            value: identity,
                            created_at: now,
                        }],
                        merged_into: None,
                        created_at: now,
                        updated_at: now,
                        version: 1,
                    }));
                    let visitor = Visitor {
                        id: visitor_id,
                        site_id: site.id,
                        customer_id,
                        verified_external_id: None,
                        created_at: now,
                    };
                    unit.push(Mutation::InsertVisitor(visitor.clone()));
                    visitor
                }
            };
            unit.push(Mutation::InsertVisitorToken {
                token_hash: secret_hash(&token),
                visitor_id: visitor.id,
                created_at: now,
            });
            unit.push(Mutation::Audit(AuditEvent::new(
                now,
                Actor::System,
                "chat_visitor.signed_in",
                "chat_visitor",
                visitor.id.0,
                vec![set("verified", visitor.verified_external_id.is_some())],
            )));
            match self.store.commit(unit).await {
                Ok(_) => {
                    return Ok((
                        token,
                        VisitorSession {
                            visitor,
                            site: site.clone(),
                        },
                    ));
                }
                // The same customer signed in from two browsers at once, or their e-mail was
                // just taken: the retry finds what the other request made.
                Err(StoreError::Conflict { constraint })
                    if constraint == "visitors.external_id"
                        || constraint == "customer_identities.value" =>
                {
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(AppError::Conflict {
            code: "concurrent_update",
            message: "could not start the visitor session; retry".into(),
        })
    }

    /// The customer of a newly verified visitor: whoever has the shop's id as an identity, else
    /// whoever has the (shop-vouched) e-mail, else a new customer with both.
    async fn verified_customer(
        &self,
        unit: &mut UnitOfWork,
        site_id: &ChatSiteId,
        claim: &IdentityClaim,
        now: jiff::Timestamp,
    ) -> AppResult<CustomerId> {
        let shop_identity = IdentityValue::parse(
            IdentityKind::ChatVisitor,
            None,
            &format!("{site_id}:{}", claim.external_id.trim()),
        )?;
        if let Some(customer) = self.store.find_customer_by_identity(&shop_identity).await? {
            return Ok(customer.id);
        }
        let email = match &claim.email {
            Some(email) if !email.trim().is_empty() => {
                Some(IdentityValue::parse(IdentityKind::Email, None, email)?)
            }
            _ => None,
        };
        if let Some(email) = &email
            && let Some(customer) = self.store.find_customer_by_identity(email).await?
        {
            unit.push(Mutation::InsertIdentity(Identity {
                id: IdentityId::new(),
                customer_id: customer.id,
                value: shop_identity,
                created_at: now,
            }));
            return Ok(customer.id);
        }
        let customer_id = CustomerId::new();
        let name = match &claim.name {
            Some(name) if !name.trim().is_empty() => parse_person_name(name)?,
            _ => email
                .as_ref()
                .map_or_else(|| shop_identity.value.clone(), |email| email.value.clone()),
        };
        let mut identities = vec![Identity {
            id: IdentityId::new(),
            customer_id,
            value: shop_identity,
            created_at: now,
        }];
        if let Some(email) = email {
            identities.push(Identity {
                id: IdentityId::new(),
                customer_id,
                value: email,
                created_at: now,
            });
        }
        unit.push(Mutation::InsertCustomer(Customer {
            id: customer_id,
            name,
            language: None,
            identities,
            merged_into: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }));
        Ok(customer_id)
    }

    /// The visitor holding `token`, on an active site; anything else is "unauthenticated".
    pub async fn authenticate_visitor(&self, token: &str) -> AppResult<VisitorSession> {
        let visitor = self
            .store
            .find_visitor_by_token(&secret_hash(token))
            .await?
            .ok_or(AppError::Unauthenticated)?;
        let site = self
            .store
            .find_chat_site(visitor.site_id)
            .await?
            .filter(|site| site.active)
            .ok_or(AppError::Unauthenticated)?;
        Ok(VisitorSession { visitor, site })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_with_the_site_secret_verifies_and_nothing_else_does() {
        let signature = sign_identity("secret", "42");
        assert!(identity_signature_is_valid("secret", "42", &signature));
        assert!(!identity_signature_is_valid("secret", "43", &signature));
        assert!(!identity_signature_is_valid("other", "42", &signature));
        assert!(!identity_signature_is_valid("secret", "42", "zz"));
        assert!(!identity_signature_is_valid("secret", "42", ""));
    }
}
