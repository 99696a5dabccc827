//! The demo shop's people: Russian and English names, e-mail domains, marketplaces, and the
//! identities a customer reaches the shop with on each channel.

use std::collections::HashSet;

use anyhow::Context;
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::ticket::Channel;
use rand::Rng;
use rand::rngs::StdRng;

pub(super) const RU_MALE: &[(&str, &str)] = &[
    ("Иван", "ivan"),
    ("Алексей", "alexey"),
    ("Дмитрий", "dmitry"),
    ("Сергей", "sergey"),
    ("Андрей", "andrey"),
    ("Михаил", "mikhail"),
    ("Никита", "nikita"),
    ("Артём", "artem"),
    ("Павел", "pavel"),
    ("Егор", "egor"),
    ("Максим", "maxim"),
    ("Кирилл", "kirill"),
    ("Роман", "roman"),
    ("Олег", "oleg"),
    ("Тимур", "timur"),
    ("Георгий", "georgy"),
];

pub(super) const RU_FEMALE: &[(&str, &str)] = &[
    ("Анна", "anna"),
    ("Мария", "maria"),
    ("Екатерина", "ekaterina"),
    ("Ольга", "olga"),
    ("Наталья", "natalya"),
    ("Елена", "elena"),
    ("Татьяна", "tatiana"),
    ("Юлия", "yulia"),
    ("Дарья", "darya"),
    ("Алина", "alina"),
    ("Ксения", "ksenia"),
    ("Виктория", "victoria"),
    ("Полина", "polina"),
    ("Светлана", "svetlana"),
    ("Софья", "sofya"),
    ("Вероника", "veronika"),
];

/// Masculine forms; feminine ones are derived (Иванов → Иванова, Ковальский → Ковальская).
pub(super) const RU_SURNAMES: &[(&str, &str)] = &[
    ("Иванов", "ivanov"),
    ("Смирнов", "smirnov"),
    ("Кузнецов", "kuznetsov"),
    ("Попов", "popov"),
    ("Васильев", "vasiliev"),
    ("Петров", "petrov"),
    ("Соколов", "sokolov"),
    ("Михайлов", "mikhailov"),
    ("Новиков", "novikov"),
    ("Фёдоров", "fedorov"),
    ("Морозов", "morozov"),
    ("Волков", "volkov"),
    ("Алексеев", "alekseev"),
    ("Лебедев", "lebedev"),
    ("Семёнов", "semenov"),
    ("Егоров", "egorov"),
    ("Павлов", "pavlov"),
    ("Козлов", "kozlov"),
    ("Степанов", "stepanov"),
    ("Николаев", "nikolaev"),
    ("Орлов", "orlov"),
    ("Зайцев", "zaitsev"),
    ("Белов", "belov"),
    ("Гусев", "gusev"),
    ("Титов", "titov"),
    ("Ильин", "ilyin"),
    ("Кравченко", "kravchenko"),
    ("Шевченко", "shevchenko"),
    ("Ковальский", "kovalsky"),
    ("Чернов", "chernov"),
];

pub(super) const EN_FIRST: &[&str] = &[
    "James",
    "Emily",
    "Oliver",
    "Sophie",
    "Michael",
    "Sarah",
    "Daniel",
    "Emma",
    "Thomas",
    "Olivia",
    "Lucas",
    "Hannah",
    "Jack",
    "Charlotte",
    "David",
    "Laura",
    "Mark",
    "Chloe",
    "Ryan",
    "Grace",
];

pub(super) const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Miller", "Clarke",
    "Walker", "Wright", "Green", "Hall", "Baker", "Murphy", "Becker", "Fischer", "Novak",
    "Kowalski", "Andersen",
];

#[derive(Debug, Clone)]
pub(super) struct Person {
    pub(super) full: String,
    pub(super) first: String,
    pub(super) latin_first: String,
    pub(super) latin_last: String,
    pub(super) english: bool,
}

pub(super) fn feminine(surname: &str, latin: &str) -> (String, String) {
    if let Some(stem) = surname.strip_suffix("ский") {
        let latin_stem = latin.strip_suffix("sky").unwrap_or(latin);
        return (format!("{stem}ская"), format!("{latin_stem}skaya"));
    }
    if surname.ends_with("ов")
        || surname.ends_with("ев")
        || surname.ends_with("ёв")
        || surname.ends_with("ин")
    {
        return (format!("{surname}а"), format!("{latin}a"));
    }
    (surname.to_owned(), latin.to_owned())
}

pub(super) fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

pub(super) fn weighted<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for &(item, weight) in items {
        if roll < weight {
            return item;
        }
        roll -= weight;
    }
    items[items.len() - 1].0
}

pub(super) fn person(rng: &mut StdRng, english: bool) -> Person {
    if english {
        let first = *pick(rng, EN_FIRST);
        let last = *pick(rng, EN_LAST);
        return Person {
            full: format!("{first} {last}"),
            first: first.to_owned(),
            latin_first: first.to_lowercase(),
            latin_last: last.to_lowercase(),
            english,
        };
    }
    let female = rng.random_bool(0.55);
    let &(first, latin_first) = pick(rng, if female { RU_FEMALE } else { RU_MALE });
    let &(surname, latin_surname) = pick(rng, RU_SURNAMES);
    let (surname, latin_surname) = if female {
        feminine(surname, latin_surname)
    } else {
        (surname.to_owned(), latin_surname.to_owned())
    };
    Person {
        full: format!("{first} {surname}"),
        first: first.to_owned(),
        latin_first: latin_first.to_owned(),
        latin_last: latin_surname,
        english,
    }
}

pub(super) const RU_MAIL_DOMAINS: &[&str] = &[
    "mail.ru",
    "yandex.ru",
    "gmail.com",
    "bk.ru",
    "inbox.ru",
    "rambler.ru",
    "ya.ru",
];
pub(super) const EN_MAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "gmx.de",
];

/// Marketplaces: identity provider, "on …" in Russian, English name, tag.
pub(super) const MARKETPLACES: &[(&str, &str, &str, &str)] = &[
    ("ozon", "на Ozon", "Ozon", "ozon"),
    (
        "wildberries",
        "на Wildberries",
        "Wildberries",
        "wildberries",
    ),
    (
        "yandex_market",
        "на Яндекс Маркете",
        "Yandex Market",
        "яндекс_маркет",
    ),
];

pub(super) fn identity(
    kind: IdentityKind,
    provider: Option<&str>,
    value: &str,
) -> anyhow::Result<IdentityValue> {
    IdentityValue::parse(kind, provider, value)
        .with_context(|| format!("the demo made an invalid {kind} identity {value:?}"))
}

/// Makes identities that are unique within one run of the use-case path. Their shapes never
/// collide with the batched path's (which end in `.<number>` or use other prefixes).
#[derive(Default)]
pub(super) struct IdentityFactory {
    pub(super) used: HashSet<(IdentityKind, String, String)>,
}

impl IdentityFactory {
    pub(super) fn claim(&mut self, value: IdentityValue) -> Option<IdentityValue> {
        let key = (value.kind, value.provider.clone(), value.value.clone());
        self.used.insert(key).then_some(value)
    }

    pub(super) fn email(
        &mut self,
        rng: &mut StdRng,
        who: &Person,
    ) -> anyhow::Result<IdentityValue> {
        let (first, last) = (&who.latin_first, &who.latin_last);
        let domain = *pick(
            rng,
            if who.english {
                EN_MAIL_DOMAINS
            } else {
                RU_MAIL_DOMAINS
            },
        );
        let initial = first.chars().next().unwrap_or('x');
        let local = match rng.random_range(0..5) {
            0 => format!("{first}.{last}"),
            1 => format!("{first}{last}{}", rng.random_range(70..=99)),
            2 => format!("{first}_{last}"),
            3 => format!("{initial}.{last}"),
            _ => format!("{last}.{first}{}", rng.random_range(1..=30)),
        };
        for attempt in 0..50 {
            let local = if attempt == 0 {
                local.clone()
            } else {
                format!("{local}{}", rng.random_range(100..1000))
            };
            if let Some(value) = self.claim(identity(
                IdentityKind::Email,
                None,
                &format!("{local}@{domain}"),
            )?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo e-mail for {}", who.full)
    }

    pub(super) fn phone(
        &mut self,
        rng: &mut StdRng,
        english: bool,
    ) -> anyhow::Result<IdentityValue> {
        for _ in 0..50 {
            let raw = if english {
                match rng.random_range(0..4) {
                    0 => format!(
                        "+44 7{} {:06}",
                        rng.random_range(100..1000),
                        rng.random_range(0..1_000_000)
                    ),
                    1 => format!(
                        "+49 15{} {:07}",
                        rng.random_range(1..10),
                        rng.random_range(0..10_000_000)
                    ),
                    2 => format!(
                        "+374 9{} {:06}",
                        rng.random_range(1..10),
                        rng.random_range(0..1_000_000)
                    ),
                    _ => format!(
                        "+7 70{} {:07}",
                        rng.random_range(0..10),
                        rng.random_range(0..10_000_000)
                    ),
                }
            } else {
                // 96x is left to the batched path.
                let code = *pick(
                    rng,
                    &[903, 905, 909, 915, 916, 921, 926, 977, 985, 999, 912, 951],
                );
                let (a, b, c) = (
                    rng.random_range(0..1000),
                    rng.random_range(0..100),
                    rng.random_range(0..100),
                );
                if rng.random_bool(0.3) {
                    format!("8 ({code}) {a:03}-{b:02}-{c:02}")
                } else {
                    format!("+7 {code} {a:03}-{b:02}-{c:02}")
                }
            };
            if let Some(value) = self.claim(identity(IdentityKind::Phone, None, &raw)?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo phone number")
    }

    pub(super) fn messenger(
        &mut self,
        rng: &mut StdRng,
        english: bool,
    ) -> anyhow::Result<IdentityValue> {
        let provider = if english && rng.random_bool(0.4) {
            "whatsapp"
        } else {
            "telegram"
        };
        for _ in 0..50 {
            let value = rng.random_range(100_000_000u64..8_000_000_000).to_string();
            if let Some(value) =
                self.claim(identity(IdentityKind::Messenger, Some(provider), &value)?)
            {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo messenger id")
    }

    pub(super) fn marketplace(&mut self, rng: &mut StdRng) -> anyhow::Result<IdentityValue> {
        let (provider, ..) = *pick(rng, MARKETPLACES);
        for _ in 0..50 {
            let value = rng.random_range(10_000_000u64..100_000_000).to_string();
            if let Some(value) = self.claim(identity(
                IdentityKind::MarketplaceBuyer,
                Some(provider),
                &value,
            )?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo marketplace buyer id")
    }

    pub(super) fn chat(&mut self, rng: &mut StdRng) -> anyhow::Result<IdentityValue> {
        for _ in 0..50 {
            let value = format!("v-{:08x}", rng.random::<u32>());
            if let Some(value) = self.claim(identity(IdentityKind::ChatVisitor, None, &value)?) {
                return Ok(value);
            }
        }
        anyhow::bail!("could not make a unique demo chat visitor id")
    }

    /// An identity a customer writing on `channel` would have.
    pub(super) fn for_channel(
        &mut self,
        rng: &mut StdRng,
        channel: Channel,
        who: &Person,
    ) -> anyhow::Result<IdentityValue> {
        match identity_kind_for(channel) {
            IdentityKind::Phone => self.phone(rng, who.english),
            IdentityKind::ChatVisitor => self.chat(rng),
            IdentityKind::Messenger => self.messenger(rng, who.english),
            IdentityKind::MarketplaceBuyer => self.marketplace(rng),
            IdentityKind::Email => self.email(rng, who),
        }
    }

    /// A customer's identities: often several (e-mail, phone, Telegram, a marketplace account).
    pub(super) fn profile(
        &mut self,
        rng: &mut StdRng,
        who: &Person,
    ) -> anyhow::Result<Vec<IdentityValue>> {
        let english = who.english;
        let mut identities = Vec::new();
        if rng.random_bool(if english { 0.95 } else { 0.85 }) {
            identities.push(self.email(rng, who)?);
        }
        if rng.random_bool(if english { 0.3 } else { 0.55 }) {
            identities.push(self.phone(rng, english)?);
        }
        if rng.random_bool(if english { 0.2 } else { 0.3 }) {
            identities.push(self.messenger(rng, english)?);
        }
        if rng.random_bool(if english { 0.05 } else { 0.25 }) {
            identities.push(self.marketplace(rng)?);
        }
        if rng.random_bool(0.15) || identities.is_empty() {
            identities.push(self.chat(rng)?);
        }
        Ok(identities)
    }
}

/// The identity a channel identifies its customers by.
pub(super) fn identity_kind_for(channel: Channel) -> IdentityKind {
    match channel {
        Channel::Email | Channel::WebForm | Channel::Api => IdentityKind::Email,
        Channel::Chat => IdentityKind::ChatVisitor,
        Channel::Phone => IdentityKind::Phone,
        Channel::Messenger => IdentityKind::Messenger,
        Channel::Marketplace => IdentityKind::MarketplaceBuyer,
    }
}

/// Whether a customer with identities of `kinds` can write on `channel`.
pub(super) fn reachable_on(kinds: &[IdentityKind], channel: Channel) -> bool {
    channel == Channel::Api || kinds.contains(&identity_kind_for(channel))
}

pub(super) const CHANNEL_WEIGHTS: &[(Channel, u32)] = &[
    (Channel::Email, 30),
    (Channel::Chat, 16),
    (Channel::WebForm, 11),
    (Channel::Phone, 10),
    (Channel::Messenger, 14),
    (Channel::Marketplace, 12),
    (Channel::Api, 7),
];
