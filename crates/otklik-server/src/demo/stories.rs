//! What the demo shop's customers write about (goods, orders, parcels, money) and the life of a
//! ticket: the story told, the beats that bring it to its final status.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use otklik_domain::customer::{IdentityKind, IdentityValue};
use otklik_domain::ticket::{Channel, Priority, TicketStatus};
use rand::Rng;
use rand::rngs::StdRng;

use super::people::{MARKETPLACES, Person, pick, weighted};
use super::{TeamKey, ago, minutes};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Goods {
    Clothes,
    Shoes,
    Electronics,
}

pub(super) struct Product {
    pub(super) ru: &'static str,
    pub(super) en: &'static str,
    pub(super) goods: Goods,
    /// Price range in thousands of roubles.
    pub(super) price: (u32, u32),
}

pub(super) const PRODUCTS: &[Product] = &[
    Product {
        ru: "кроссовки Nike Air Zoom Pegasus 40",
        en: "Nike Air Zoom Pegasus 40 running shoes",
        goods: Goods::Shoes,
        price: (9, 15),
    },
    Product {
        ru: "ботинки Timberland 6-Inch Premium",
        en: "Timberland 6-Inch Premium boots",
        goods: Goods::Shoes,
        price: (16, 22),
    },
    Product {
        ru: "кеды Converse Chuck 70",
        en: "Converse Chuck 70 sneakers",
        goods: Goods::Shoes,
        price: (7, 10),
    },
    Product {
        ru: "кроссовки New Balance 574",
        en: "New Balance 574 sneakers",
        goods: Goods::Shoes,
        price: (8, 12),
    },
    Product {
        ru: "пуховик The North Face Nuptse",
        en: "The North Face Nuptse down jacket",
        goods: Goods::Clothes,
        price: (28, 37),
    },
    Product {
        ru: "джинсы Levi's 501",
        en: "Levi's 501 jeans",
        goods: Goods::Clothes,
        price: (6, 9),
    },
    Product {
        ru: "платье миди из вискозы",
        en: "viscose midi dress",
        goods: Goods::Clothes,
        price: (3, 6),
    },
    Product {
        ru: "худи оверсайз из хлопка",
        en: "oversized cotton hoodie",
        goods: Goods::Clothes,
        price: (3, 5),
    },
    Product {
        ru: "ветровка Columbia",
        en: "Columbia windbreaker",
        goods: Goods::Clothes,
        price: (8, 12),
    },
    Product {
        ru: "наушники Sony WH-1000XM5",
        en: "Sony WH-1000XM5 headphones",
        goods: Goods::Electronics,
        price: (28, 35),
    },
    Product {
        ru: "смартфон Xiaomi Redmi Note 13 Pro 256 ГБ",
        en: "Xiaomi Redmi Note 13 Pro 256 GB",
        goods: Goods::Electronics,
        price: (25, 32),
    },
    Product {
        ru: "умные часы Huawei Watch GT 4",
        en: "Huawei Watch GT 4 smartwatch",
        goods: Goods::Electronics,
        price: (18, 23),
    },
    Product {
        ru: "планшет Samsung Galaxy Tab S9 FE",
        en: "Samsung Galaxy Tab S9 FE tablet",
        goods: Goods::Electronics,
        price: (40, 47),
    },
    Product {
        ru: "пауэрбанк Anker 20000 мАч",
        en: "Anker 20000 mAh power bank",
        goods: Goods::Electronics,
        price: (3, 5),
    },
];

pub(super) struct Carrier {
    pub(super) ru: &'static str,
    pub(super) en: &'static str,
    pub(super) tag: &'static str,
}

pub(super) const RU_CARRIERS: &[Carrier] = &[
    Carrier {
        ru: "СДЭК",
        en: "CDEK",
        tag: "сдэк",
    },
    Carrier {
        ru: "Почта России",
        en: "Russian Post",
        tag: "почта_россии",
    },
    Carrier {
        ru: "Boxberry",
        en: "Boxberry",
        tag: "boxberry",
    },
];

pub(super) const ABROAD_CARRIERS: &[Carrier] = &[
    Carrier {
        ru: "DHL Express",
        en: "DHL Express",
        tag: "dhl",
    },
    Carrier {
        ru: "СДЭК",
        en: "CDEK",
        tag: "сдэк",
    },
];

pub(super) const RU_CITIES: &[&str] = &[
    "Москва",
    "Санкт-Петербург",
    "Казань",
    "Новосибирск",
    "Екатеринбург",
    "Нижний Новгород",
    "Краснодар",
    "Самара",
    "Владивосток",
    "Калининград",
];
pub(super) const EN_CITIES: &[&str] = &[
    "Almaty", "Yerevan", "Tbilisi", "Belgrade", "Limassol", "Dubai", "Berlin", "Tashkent",
];
pub(super) const RU_STREETS: &[&str] = &[
    "ул. Ленина",
    "ул. Гагарина",
    "ул. Пушкина",
    "Садовая ул.",
    "пр-т Мира",
    "Советская ул.",
    "ул. Молодёжная",
];
pub(super) const EN_STREETS: &[&str] = &[
    "Abay Avenue",
    "Mashtots Avenue",
    "Rustaveli Avenue",
    "Main Street",
    "Park Lane",
    "Seaside Road",
];
pub(super) const PROMO_CODES: &[&str] = &[
    "VESNA15",
    "WELCOME500",
    "SALE20",
    "BLACKFRIDAY",
    "OSEN10",
    "SNEAKERS7",
];
pub(super) const CLOTHES_SIZES: &[&str] = &["XS", "S", "M", "L", "XL", "XXL"];
pub(super) const RU_MONTHS: &[&str] = &[
    "января",
    "февраля",
    "марта",
    "апреля",
    "мая",
    "июня",
    "июля",
    "августа",
    "сентября",
    "октября",
    "ноября",
    "декабря",
];
pub(super) const EN_MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    WhereIsOrder,
    DeliveryDelayed,
    ReturnSize,
    RefundNotReceived,
    PaymentFailedTwice,
    WrongItem,
    Warranty,
    PromoCode,
    MarketplaceQuestion,
}

pub(super) const KIND_WEIGHTS: &[(Kind, u32)] = &[
    (Kind::WhereIsOrder, 20),
    (Kind::DeliveryDelayed, 12),
    (Kind::ReturnSize, 15),
    (Kind::RefundNotReceived, 10),
    (Kind::PaymentFailedTwice, 8),
    (Kind::WrongItem, 8),
    (Kind::Warranty, 9),
    (Kind::PromoCode, 8),
];

pub(super) const MARKETPLACE_KIND_WEIGHTS: &[(Kind, u32)] = &[
    (Kind::MarketplaceQuestion, 50),
    (Kind::WhereIsOrder, 20),
    (Kind::ReturnSize, 15),
    (Kind::WrongItem, 15),
];

impl Kind {
    pub(super) fn team(self) -> Option<TeamKey> {
        match self {
            Kind::WhereIsOrder | Kind::DeliveryDelayed => Some(TeamKey::Delivery),
            Kind::ReturnSize | Kind::WrongItem | Kind::Warranty => Some(TeamKey::Returns),
            Kind::RefundNotReceived | Kind::PaymentFailedTwice | Kind::PromoCode => {
                Some(TeamKey::Payments)
            }
            Kind::MarketplaceQuestion => None,
        }
    }

    pub(super) fn tags(self) -> &'static [&'static str] {
        match self {
            Kind::WhereIsOrder => &["доставка"],
            Kind::DeliveryDelayed => &["доставка", "задержка"],
            Kind::ReturnSize => &["возврат", "размер"],
            Kind::RefundNotReceived => &["возврат", "оплата", "возврат_денег"],
            Kind::PaymentFailedTwice => &["оплата", "двойное_списание"],
            Kind::WrongItem => &["возврат", "пересорт"],
            Kind::Warranty => &["брак", "гарантия"],
            Kind::PromoCode => &["промокод"],
            Kind::MarketplaceQuestion => &["маркетплейс", "вопрос_о_товаре"],
        }
    }

    pub(super) fn priority(self, rng: &mut StdRng) -> Priority {
        let weights: &[(Priority, u32)] = match self {
            Kind::PaymentFailedTwice => &[
                (Priority::High, 70),
                (Priority::Urgent, 20),
                (Priority::Normal, 10),
            ],
            Kind::DeliveryDelayed | Kind::RefundNotReceived => &[
                (Priority::Normal, 55),
                (Priority::High, 40),
                (Priority::Urgent, 5),
            ],
            Kind::PromoCode | Kind::MarketplaceQuestion => {
                &[(Priority::Low, 60), (Priority::Normal, 40)]
            }
            _ => &[
                (Priority::Low, 15),
                (Priority::Normal, 70),
                (Priority::High, 15),
            ],
        };
        weighted(rng, weights)
    }

    pub(super) fn goods(self) -> &'static [Goods] {
        match self {
            Kind::ReturnSize | Kind::WrongItem | Kind::MarketplaceQuestion => {
                &[Goods::Clothes, Goods::Shoes]
            }
            Kind::Warranty => &[Goods::Electronics],
            _ => &[Goods::Clothes, Goods::Shoes, Goods::Electronics],
        }
    }
}

/// The particulars of one customer's story: order, goods, money, parcel.
pub(super) struct Ctx {
    pub(super) english: bool,
    pub(super) order: u32,
    pub(super) product: &'static Product,
    pub(super) other: &'static Product,
    pub(super) size: String,
    pub(super) new_size: String,
    pub(super) amount: String,
    pub(super) carrier: &'static Carrier,
    pub(super) tracking: String,
    pub(super) days: u32,
    pub(super) deadline: String,
    pub(super) city: &'static str,
    pub(super) address: String,
    pub(super) card4: u32,
    pub(super) arn: String,
    pub(super) serial: String,
    pub(super) claim: u32,
    pub(super) promo: &'static str,
    pub(super) marketplace: (&'static str, &'static str, &'static str, &'static str),
}

/// Formats roubles the Russian way: `12 990 ₽` (with no-break spaces).
pub(super) fn rub(amount: u32) -> String {
    let digits = amount.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(digit);
    }
    format!("{grouped}\u{a0}₽")
}

impl Ctx {
    pub(super) fn new(
        rng: &mut StdRng,
        kind: Kind,
        english: bool,
        created_at: Timestamp,
        marketplace_index: Option<usize>,
    ) -> Ctx {
        let goods = kind.goods();
        let candidates: Vec<&'static Product> = PRODUCTS
            .iter()
            .filter(|product| goods.contains(&product.goods))
            .collect();
        let product = candidates[rng.random_range(0..candidates.len())];
        let others: Vec<&'static Product> = PRODUCTS
            .iter()
            .filter(|other| other.goods == product.goods && other.ru != product.ru)
            .collect();
        let other = others
            .get(rng.random_range(0..others.len().max(1)))
            .copied()
            .unwrap_or(product);
        let (size, new_size) = match product.goods {
            Goods::Shoes => {
                let size = rng.random_range(36..=45);
                (size.to_string(), (size + 1).to_string())
            }
            Goods::Clothes => {
                let index = rng.random_range(0..CLOTHES_SIZES.len() - 1);
                (
                    CLOTHES_SIZES[index].to_owned(),
                    CLOTHES_SIZES[index + 1].to_owned(),
                )
            }
            Goods::Electronics => (String::new(), String::new()),
        };
        let price = rng.random_range(product.price.0..=product.price.1) * 1000 - 10;
        let extra = if rng.random_bool(0.3) {
            rng.random_range(1..=5) * 1000 - 10
        } else {
            0
        };
        let carrier = pick(
            rng,
            if english {
                ABROAD_CARRIERS
            } else {
                RU_CARRIERS
            },
        );
        let tracking = match carrier.tag {
            "почта_россии" => {
                format!("8{:013}", rng.random_range(0..10_000_000_000_000u64))
            }
            "boxberry" => format!("BBR{:010}", rng.random_range(0..10_000_000_000u64)),
            _ => format!("{:010}", rng.random_range(1_000_000_000..10_000_000_000u64)),
        };
        let days = rng.random_range(3..=12);
        let promised = ago(created_at, SignedDuration::from_hours(24 * i64::from(days)))
            .to_zoned(TimeZone::UTC);
        let month = usize::try_from(promised.month() - 1).unwrap_or(0).min(11);
        let deadline = if english {
            format!("{} {}", EN_MONTHS[month], promised.day())
        } else {
            format!("{} {}", promised.day(), RU_MONTHS[month])
        };
        let city = *pick(rng, if english { EN_CITIES } else { RU_CITIES });
        let address = if english {
            format!(
                "{} {}, apt {}, {city}",
                pick(rng, EN_STREETS),
                rng.random_range(1..200),
                rng.random_range(1..120)
            )
        } else {
            format!(
                "г. {city}, {}, д. {}, кв. {}",
                pick(rng, RU_STREETS),
                rng.random_range(1..120),
                rng.random_range(1..300)
            )
        };
        let marketplace = MARKETPLACES
            [marketplace_index.unwrap_or_else(|| rng.random_range(0..MARKETPLACES.len()))];
        Ctx {
            english,
            order: rng.random_range(400_000..500_000),
            product,
            other,
            size,
            new_size,
            amount: rub(price + extra),
            carrier,
            tracking,
            days,
            deadline,
            city,
            address,
            card4: rng.random_range(1000..10_000),
            arn: format!(
                "74{:011}{:010}",
                rng.random_range(0..100_000_000_000u64),
                rng.random_range(0..10_000_000_000u64)
            ),
            serial: format!("SN{:010X}", rng.random_range(0..0xFF_FFFF_FFFFu64)),
            claim: rng.random_range(1_000_000..10_000_000),
            promo: PROMO_CODES[rng.random_range(0..PROMO_CODES.len())],
            marketplace,
        }
    }

    pub(super) fn product(&self) -> &'static str {
        if self.english {
            self.product.en
        } else {
            self.product.ru
        }
    }

    pub(super) fn carrier(&self) -> &'static str {
        if self.english {
            self.carrier.en
        } else {
            self.carrier.ru
        }
    }
}

/// Everything that can be said in one story; the flow picks what its status needs.
pub(super) struct Script {
    pub(super) subject: String,
    /// The customer's first message.
    pub(super) first: String,
    /// An agent's question back (the ticket waits for the customer).
    pub(super) ask: String,
    /// The customer's answer to it.
    pub(super) answer: String,
    /// An agent's "working on it".
    pub(super) working: String,
    /// An agent's "waiting for a third party".
    pub(super) hold: String,
    /// The answer that solves it.
    pub(super) resolution: String,
    /// An internal note.
    pub(super) note: String,
    /// The customer chasing.
    pub(super) followup: String,
}

pub(super) fn script(kind: Kind, c: &Ctx, rng: &mut StdRng) -> Script {
    let (order, product, carrier, tracking) = (c.order, c.product(), c.carrier(), &c.tracking);
    let (size, new_size, amount, days, city) = (&c.size, &c.new_size, &c.amount, c.days, c.city);
    let (ru_market, en_market) = (c.marketplace.1, c.marketplace.2);
    let electronics = c.product.goods == Goods::Electronics;
    let variant = rng.random_range(0..3usize);
    let s = |texts: [String; 3]| texts[variant].clone();
    if !c.english {
        return match kind {
            Kind::WhereIsOrder => Script {
                subject: s([format!("Где мой заказ №{order}?"), format!("Заказ №{order} до сих пор не пришёл"), format!("Статус заказа №{order}")]),
                first: format!(
                    "Заказ №{order} ({product}) оформлен {days} дн. назад, а в личном кабинете уже несколько дней статус «Передан в доставку». \
                     Трек-номер {tracking} на сайте {carrier} не отслеживается. Подскажите, где сейчас посылка?"
                ),
                ask: format!("Уточните, пожалуйста, адрес доставки и удобный телефон для курьера — передам запрос в {carrier}."),
                answer: format!("Адрес: {}. Телефон тот же, что в заказе.", c.address),
                working: format!("Проверяю информацию по отправлению {tracking} у {carrier}, вернусь с ответом в течение дня."),
                hold: format!(
                    "Мы направили запрос в {carrier} по отправлению {tracking}. Обычно ответ приходит в течение двух рабочих дней — \
                     как только он будет, сразу напишем вам."
                ),
                resolution: format!(
                    "Посылка по заказу №{order} прибыла в пункт выдачи {carrier} в г. {city}, трек-номер {tracking}. \
                     Срок хранения — 7 дней. Приятных покупок!"
                ),
                note: format!("Трек {tracking} завис на сортировочном центре, в {carrier} открыта претензия №{}.", c.claim),
                followup: format!("Есть новости по заказу №{order}?"),
            },
            Kind::DeliveryDelayed => Script {
                subject: s([format!("Задерживается доставка заказа №{order}"), format!("Курьер не приехал, заказ №{order}"), format!("Сорван срок доставки заказа №{order}")]),
                first: format!(
                    "По заказу №{order} доставку обещали до {}, прошло уже {days} дн. сверх срока. Покупка нужна к выходным, \
                     иначе придётся отменять заказ. Когда ждать доставку?",
                    c.deadline
                ),
                ask: "Приносим извинения за задержку. Подскажите, пожалуйста, удобный интервал доставки — согласуем повторный выезд курьера.".into(),
                answer: "Удобно завтра с 18:00 до 22:00.".into(),
                working: "Приносим извинения за задержку. Уже разбираемся со службой доставки.".into(),
                hold: format!(
                    "Отправление {tracking} задержано на сортировочном центре {carrier}. Мы поставили его на контроль и вернёмся \
                     с новостями, как только оно поедет дальше."
                ),
                resolution: format!(
                    "Курьер доставит заказ №{order} завтра с 18:00 до 22:00. За задержку мы начислили вам 500 бонусных баллов — \
                     они уже на счёте."
                ),
                note: format!("Компенсация 500 баллов согласована со старшим смены. Причина задержки — перегруз СЦ {carrier}."),
                followup: "Курьер так и не приехал. Что происходит?".into(),
            },
            Kind::ReturnSize => Script {
                subject: s([format!("Не подошёл размер, заказ №{order}"), format!("Обмен размера по заказу №{order}"), "Возврат: не подошёл размер".into()]),
                first: format!(
                    "Пришли {product} размера {size} (заказ №{order}) — маломерят, нужен {new_size}. Можно обменять или оформить \
                     возврат? Бирки на месте, товар не носили."
                ),
                ask: "Конечно, обменяем. Пришлите, пожалуйста, фото товара с бирками и выберите способ возврата: курьер или пункт выдачи.".into(),
                answer: "Фото с бирками отправляю. Удобнее через пункт выдачи.".into(),
                working: format!("Проверяем наличие размера {new_size} на складе."),
                hold: format!(
                    "Размер {new_size} сейчас едет на склад от поставщика, поступление ожидаем через 3–5 дней. Как только он \
                     появится, отправим обмен."
                ),
                resolution: format!(
                    "Возврат по заказу №{order} оформлен. Сдайте товар в любой пункт выдачи по коду возврата R-{order}; \
                     размер {new_size} отправим сразу после приёмки."
                ),
                note: format!("Размер {new_size} есть на складе в Подольске, резерв под обмен сделан."),
                followup: "Подскажите, обмен уже оформлен?".into(),
            },
            Kind::RefundNotReceived => Script {
                subject: s([format!("Не пришли деньги за возврат, заказ №{order}"), format!("Возврат средств по заказу №{order}"), format!("Где мои {amount}?")]),
                first: format!(
                    "Возврат по заказу №{order} сдан в пункт выдачи {days} дн. назад, но {amount} на карту до сих пор не поступили. \
                     Когда ждать деньги?"
                ),
                ask: "Подскажите, пожалуйста, последние 4 цифры карты, с которой была оплата, — проверим статус возврата в банке.".into(),
                answer: format!("Карта заканчивается на {}.", c.card4),
                working: "Запросили статус возврата в платёжном сервисе.".into(),
                hold: format!(
                    "Возврат {amount} отправлен в банк, ARN {}. Банк зачисляет средства до 10 рабочих дней — мы проконтролируем \
                     поступление.",
                    c.arn
                ),
                resolution: format!(
                    "Возврат {amount} по заказу №{order} проведён, ARN {}. Деньги поступят на карту в течение 1–3 рабочих дней \
                     в зависимости от банка.",
                    c.arn
                ),
                note: "Возврат завис в статусе «на проверке» у эквайера, эскалировано в финотдел.".into(),
                followup: "Деньги так и не пришли.".into(),
            },
            Kind::PaymentFailedTwice => Script {
                subject: s([format!("Деньги списались дважды, заказ №{order}"), format!("Двойное списание при оплате заказа №{order}"), "Оплата не прошла, а деньги списаны".into()]),
                first: format!(
                    "При оплате заказа №{order} страница выдала ошибку, оплата повторилась — и с карты списали {amount} два раза. \
                     А заказ в личном кабинете до сих пор «Ожидает оплаты». Верните, пожалуйста, лишнее списание."
                ),
                ask: "Пришлите, пожалуйста, скриншот выписки из банка с двумя списаниями — передадим в платёжный сервис.".into(),
                answer: format!("Скриншот выписки отправляю, оба списания по {amount} от сегодняшнего числа."),
                working: format!("Проверяем транзакции по заказу №{order} в платёжном сервисе."),
                hold: format!(
                    "Второе списание {amount} — это блокировка средств банком (холд). Мы отправили запрос на её отмену; банк обычно \
                     снимает холд в течение трёх рабочих дней."
                ),
                resolution: format!(
                    "Заказ №{order} оплачен, второе списание {amount} отменено — деньги вернутся на карту в течение 1–3 рабочих дней."
                ),
                note: "В платёжном шлюзе две транзакции, вторая в статусе AUTHORIZED — отправлен запрос на reversal.".into(),
                followup: "Деньги всё ещё заблокированы.".into(),
            },
            Kind::WrongItem => Script {
                subject: s([format!("Прислали не тот товар, заказ №{order}"), format!("Пересорт в заказе №{order}"), "В посылке чужой товар".into()]),
                first: format!(
                    "В заказе №{order} вместо «{product}», размер {size}, в посылке лежит другой товар — {}. Упаковка была целая. \
                     Что делать?",
                    c.other.ru
                ),
                ask: "Пришлите, пожалуйста, фото полученного товара и этикетки на коробке — оформим замену без похода в пункт выдачи.".into(),
                answer: "Фото товара и этикетки отправляю.".into(),
                working: "Проверяем со складом, как произошла ошибка.".into(),
                hold: "Передали фото на склад для проверки пересорта. Ответ склада ждём в течение двух рабочих дней.".into(),
                resolution: format!(
                    "Приносим извинения за ошибку склада! Правильный товар — {product}, размер {size} — отправлен курьером, \
                     трек {tracking}. Полученный по ошибке товар курьер заберёт при доставке."
                ),
                note: "Пересорт подтверждён складом: при комплектации перепутаны ячейки.".into(),
                followup: "Когда пришлёте правильный товар?".into(),
            },
            Kind::Warranty => Script {
                subject: s([format!("Брак: {product}, заказ №{order}"), format!("Гарантийный случай — {product}"), format!("Гарантия по заказу №{order}")]),
                first: format!(
                    "Товар из заказа №{order} — {product} — через {} дн. после покупки перестал заряжаться. Это гарантийный случай?",
                    days * 3
                ),
                ask: "Сочувствуем! Пришлите, пожалуйста, видео с неисправностью и фото серийного номера — оформим гарантийное обращение.".into(),
                answer: format!("Видео и фото отправляю, серийный номер {}.", c.serial),
                working: "Передали информацию в сервисный центр, ждём заключение.".into(),
                hold: "Товар принят в авторизованный сервисный центр на диагностику. Срок — до 20 дней, мы будем держать вас в курсе.".into(),
                resolution: format!(
                    "Сервисный центр подтвердил заводской брак. Мы отправили вам замену, трек {tracking}. Если удобнее вернуть \
                     {amount}, просто ответьте на это сообщение."
                ),
                note: format!("Серийный {} — из партии с известной проблемой контроллера заряда, замена без диагностики согласована.", c.serial),
                followup: "Есть новости по гарантии?".into(),
            },
            Kind::PromoCode => Script {
                subject: s([format!("Не работает промокод {}", c.promo), format!("Промокод {} не применяется", c.promo), "Проблема с промокодом".into()]),
                first: format!(
                    "Пытаюсь применить промокод {} к заказу на {amount}, а сайт пишет «Промокод недействителен». В рассылке было \
                     написано, что он действует до конца месяца.",
                    c.promo
                ),
                ask: "Подскажите, пожалуйста, какие товары в корзине — промокод действует не на все категории.".into(),
                answer: format!("В корзине {product}."),
                working: "Уточняем условия акции у отдела маркетинга.".into(),
                hold: "Уточняем у отдела маркетинга условия акции — ответим в течение дня.".into(),
                resolution: format!(
                    "Промокод {} не распространяется на товары со скидкой, поэтому не применился. Мы начислили вам 500 бонусных \
                     баллов — их можно списать на этот заказ.",
                    c.promo
                ),
                note: format!("Промокод {} в админке ограничен категорией «Новинки», в рассылке об этом ни слова — передано маркетингу.", c.promo),
                followup: "Так что с промокодом?".into(),
            },
            Kind::MarketplaceQuestion => Script {
                subject: s([format!("Вопрос о товаре {ru_market}: {product}"), format!("Вопрос по размеру: {product}"), format!("Будет ли пополнение: {product}?")]),
                first: if electronics {
                    format!("Интересует {product} в вашем магазине {ru_market}. Это глобальная версия? Есть русский язык и официальная гарантия?")
                } else {
                    format!("Смотрю {product} в вашем магазине {ru_market}. Размер соответствует? Обычно ношу {size}. Будет ли пополнение?")
                },
                ask: "Уточните, пожалуйста, ваши параметры (рост и обхват груди или длину стопы) — подберём размер.".into(),
                answer: format!("Рост 178, длина стопы 27 см, обычно ношу {size}."),
                working: "Уточняем у склада информацию о ближайшей поставке.".into(),
                hold: format!("Пополнение ожидаем на следующей неделе — напишем вам, когда товар появится {ru_market}."),
                resolution: format!("Модель соответствует размеру, рекомендуем взять {size}. Товар снова в наличии {ru_market}, можно оформлять заказ."),
                note: format!("Ответ продублирован в вопросы к карточке товара {ru_market}."),
                followup: "Подскажите, пожалуйста, ответ на мой вопрос.".into(),
            },
        };
    }
    match kind {
        Kind::WhereIsOrder => Script {
            subject: s([format!("Where is my order #{order}?"), format!("Order #{order} still not delivered"), format!("Order #{order} status")]),
            first: format!(
                "I ordered the {product} (order #{order}) {days} days ago. The tracking number {tracking} has not been updated for \
                 several days. Could you please check where my parcel is? Delivery address is in {city}."
            ),
            ask: format!("Could you please confirm your delivery address and a phone number for the courier? I will pass it on to {carrier}."),
            answer: format!("Sure: {}. The phone number is the one in my order.", c.address),
            working: format!("I'm checking parcel {tracking} with {carrier} now and will get back to you within a day."),
            hold: format!(
                "We've opened an enquiry with {carrier} about parcel {tracking}. They usually reply within two business days; we'll \
                 update you as soon as we hear back."
            ),
            resolution: format!(
                "Good news: your order #{order} has arrived at the {carrier} pickup point in {city} (tracking {tracking}). It will be \
                 held there for 7 days."
            ),
            note: format!("Parcel {tracking} stuck in customs clearance; claim #{} opened with {carrier}.", c.claim),
            followup: format!("Any news about order #{order}?"),
        },
        Kind::DeliveryDelayed => Script {
            subject: s([format!("Delivery of order #{order} is late"), format!("Courier never came, order #{order}"), format!("Order #{order} is {days} days late")]),
            first: format!(
                "My order #{order} was supposed to arrive by {}, it's now {days} days late. I need it before the weekend, otherwise \
                 I'd rather cancel. When will it be delivered?",
                c.deadline
            ),
            ask: "We're sorry for the delay. Could you tell us a convenient delivery window? We'll book a new courier visit.".into(),
            answer: "Tomorrow between 6 and 10 pm works for me.".into(),
            working: "Sorry about the delay, we're already looking into it with the carrier.".into(),
            hold: format!("Parcel {tracking} is held at the {carrier} sorting centre. We've flagged it and will let you know as soon as it moves."),
            resolution: format!(
                "The courier will deliver order #{order} tomorrow between 6 and 10 pm. We've added 500 bonus points to your account \
                 as an apology."
            ),
            note: format!("500 points compensation approved by the shift lead. Cause: {carrier} sorting centre overload."),
            followup: "The courier still hasn't come. What's going on?".into(),
        },
        Kind::ReturnSize => Script {
            subject: s([format!("Wrong size, order #{order}"), format!("Exchange size for order #{order}"), "Return: the size doesn't fit".into()]),
            first: format!(
                "Size {size} of the {product} from order #{order} is too small, I need {new_size}. Can I exchange or return the item? \
                 Tags are still attached, never worn."
            ),
            ask: "Of course! Please send a photo of the item with its tags and choose how you'd like to return it: courier pickup or a pickup point.".into(),
            answer: "Photo attached. A pickup point is easier for me.".into(),
            working: format!("Checking whether size {new_size} is in stock."),
            hold: format!("Size {new_size} is on its way to our warehouse, expected in 3–5 days. We'll ship your exchange as soon as it arrives."),
            resolution: format!(
                "Your return for order #{order} is registered. Drop the item off at any pickup point with return code R-{order}; \
                 we'll ship size {new_size} as soon as it's received."
            ),
            note: format!("Size {new_size} reserved at the Podolsk warehouse for the exchange."),
            followup: "Has my exchange been processed yet?".into(),
        },
        Kind::RefundNotReceived => Script {
            subject: s([format!("Refund not received for order #{order}"), format!("Where is my refund of {amount}?"), format!("Refund for order #{order}")]),
            first: format!("I returned order #{order} {days} days ago, but the refund of {amount} still hasn't reached my card. When should I expect it?"),
            ask: "Could you tell us the last 4 digits of the card you paid with? We'll check the refund status with the bank.".into(),
            answer: format!("The card ends in {}.", c.card4),
            working: "We've asked the payment provider for the refund status.".into(),
            hold: format!(
                "The refund of {amount} was sent to your bank, ARN {}. Banks can take up to 10 business days; we'll keep an eye on it.",
                c.arn
            ),
            resolution: format!(
                "The refund of {amount} for order #{order} has been processed (ARN {}). It should appear on your card within 1–3 \
                 business days depending on your bank.",
                c.arn
            ),
            note: "Refund stuck in 'review' at the acquirer; escalated to finance.".into(),
            followup: "Still no refund.".into(),
        },
        Kind::PaymentFailedTwice => Script {
            subject: s([format!("Charged twice for order #{order}"), "Payment failed but money was taken".into(), format!("Double charge, order #{order}")]),
            first: format!(
                "When I paid for order #{order} the page showed an error, I tried again and now I've been charged {amount} twice. \
                 The order still says 'Awaiting payment'. Please refund the extra charge."
            ),
            ask: "Could you send a screenshot of your bank statement showing both charges? We'll pass it to the payment provider.".into(),
            answer: format!("Screenshot attached: two charges of {amount} from today."),
            working: format!("Checking the transactions for order #{order} with the payment provider."),
            hold: format!(
                "The second charge of {amount} is a temporary hold by your bank. We've requested its release; banks usually lift it \
                 within three business days."
            ),
            resolution: format!(
                "Order #{order} is paid and the second charge of {amount} has been cancelled; the money will be back on your card \
                 within 1–3 business days."
            ),
            note: "Two transactions in the gateway, the second one AUTHORIZED; reversal requested.".into(),
            followup: "The money is still blocked.".into(),
        },
        Kind::WrongItem => Script {
            subject: s([format!("Wrong item in order #{order}"), "I received someone else's item".into(), format!("Order #{order}: not what I ordered")]),
            first: format!(
                "Instead of the {product} (size {size}) I ordered (order #{order}), the parcel contains a different item: {}. \
                 The packaging was intact. What should I do?",
                c.other.en
            ),
            ask: "Please send a photo of the item you received and the label on the box; we'll arrange a replacement without a trip to a pickup point.".into(),
            answer: "Photos of the item and the label attached.".into(),
            working: "Checking with the warehouse how this happened.".into(),
            hold: "We've sent the photos to the warehouse to confirm the mix-up; they'll reply within two business days.".into(),
            resolution: format!(
                "Sorry for the warehouse mistake! The correct item ({product}, size {size}) has been shipped, tracking {tracking}. \
                 The courier will collect the wrong item on delivery."
            ),
            note: "Mix-up confirmed by the warehouse: bins swapped during picking.".into(),
            followup: "When will you send the correct item?".into(),
        },
        Kind::Warranty => Script {
            subject: s([format!("Warranty claim: {product}"), format!("Defective {product}, order #{order}"), format!("Warranty for order #{order}")]),
            first: format!("The {product} I bought (order #{order}) stopped charging after {} days. Is this covered by the warranty?", days * 3),
            ask: "Sorry to hear that! Please send a short video showing the problem and a photo of the serial number; we'll open a warranty claim.".into(),
            answer: format!("Video and serial number photo attached, serial {}.", c.serial),
            working: "We've passed the details to the service centre and are waiting for their assessment.".into(),
            hold: "The item has been accepted by the authorised service centre for diagnostics. It can take up to 20 days; we'll keep you posted.".into(),
            resolution: format!(
                "The service centre confirmed a manufacturing defect. A replacement has been shipped, tracking {tracking}. If you'd \
                 rather have a refund of {amount}, just reply to this message."
            ),
            note: format!("Serial {} is from a batch with a known charging controller fault; replacement approved without diagnostics.", c.serial),
            followup: "Any news on my warranty claim?".into(),
        },
        Kind::PromoCode => Script {
            subject: s([format!("Promo code {} doesn't work", c.promo), format!("Can't apply promo code {}", c.promo), "Problem with a promo code".into()]),
            first: format!(
                "I'm trying to apply promo code {} to an order of {amount}, but the site says 'Promo code is invalid'. Your newsletter \
                 said it's valid until the end of the month.",
                c.promo
            ),
            ask: "Could you tell us what's in your cart? The code doesn't apply to every category.".into(),
            answer: format!("Just the {product}."),
            working: "Checking the campaign terms with marketing.".into(),
            hold: "We're checking the campaign terms with our marketing team and will reply within a day.".into(),
            resolution: format!(
                "Promo code {} doesn't apply to discounted items, which is why it was rejected. We've added 500 bonus points to your \
                 account that you can use on this order.",
                c.promo
            ),
            note: format!("Code {} is limited to 'New arrivals' in the admin panel; the newsletter didn't say so. Reported to marketing.", c.promo),
            followup: "Any update on the promo code?".into(),
        },
        Kind::MarketplaceQuestion => Script {
            subject: s([format!("{en_market} question: {product}"), format!("Sizing question: {product}"), format!("Restock of the {product}?")]),
            first: if electronics {
                format!("I'm looking at the {product} in your store on {en_market}. Is it the global version with English menus, and is there a warranty?")
            } else {
                format!("I'm looking at the {product} in your store on {en_market}. Does it run true to size? I usually wear {size}. Will there be a restock?")
            },
            ask: "Could you tell us your measurements (height and chest, or foot length)? We'll help you pick a size.".into(),
            answer: format!("Height 182 cm, foot length 27 cm, I usually wear {size}."),
            working: "Checking the next delivery with the warehouse.".into(),
            hold: format!("We expect a restock next week and will message you when it's back on {en_market}."),
            resolution: format!("It runs true to size, we recommend {size}. It's back in stock on {en_market}, you can order now."),
            note: format!("Answer copied to the product Q&A on {en_market}."),
            followup: "Could you please answer my question?".into(),
        },
    }
}

/// The customer's first message as it arrives on `channel`.
pub(super) fn customer_first_message(
    rng: &mut StdRng,
    channel: Channel,
    who: &Person,
    body: &str,
) -> String {
    let english = who.english;
    match channel {
        Channel::Email | Channel::WebForm => {
            let greeting = if english {
                *pick(rng, &["Hello,", "Hi,", "Good afternoon,"])
            } else {
                *pick(rng, &["Здравствуйте!", "Добрый день!", "Добрый вечер."])
            };
            let sign_off = if english {
                "Best regards"
            } else {
                "С уважением"
            };
            format!("{greeting}\n\n{body}\n\n{sign_off},\n{}", who.full)
        }
        Channel::Phone if english => format!("Call to the hotline, the customer says: “{body}”"),
        Channel::Phone => format!("Звонок на горячую линию, клиент сообщает: «{body}»"),
        Channel::Api if english => {
            format!("Sent from the mobile app (iOS 17.5, version 5.12.0)\n\n{body}")
        }
        Channel::Api => {
            format!("Отправлено из мобильного приложения (Android 14, версия 5.12.0)\n\n{body}")
        }
        Channel::Chat | Channel::Messenger | Channel::Marketplace => {
            let greeting = if english {
                "Hi! "
            } else {
                *pick(rng, &["Здравствуйте! ", "Добрый день! ", ""])
            };
            format!("{greeting}{body}")
        }
    }
}

/// An agent's public reply with greeting and signature.
pub(super) fn agent_reply(
    english: bool,
    customer_first: &str,
    agent_first: &str,
    body: &str,
) -> String {
    if english {
        format!("Hello {customer_first},\n\n{body}\n\nBest regards,\n{agent_first}, Customer Care")
    } else {
        format!(
            "Здравствуйте, {customer_first}!\n\n{body}\n\nС уважением,\n{agent_first}, служба заботы о клиентах"
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The life of a ticket

pub(super) const STATUS_WEIGHTS: &[(TicketStatus, u32)] = &[
    (TicketStatus::New, 14),
    (TicketStatus::Open, 22),
    (TicketStatus::Pending, 14),
    (TicketStatus::OnHold, 7),
    (TicketStatus::Solved, 28),
    (TicketStatus::Closed, 15),
];

/// How long ago a ticket with this final status was opened, in minutes.
pub(super) fn age_minutes(status: TicketStatus) -> (i64, i64) {
    const HOUR: i64 = 60;
    const DAY: i64 = 24 * HOUR;
    match status {
        TicketStatus::New => (5, 30 * HOUR),
        TicketStatus::Open => (2 * HOUR, 6 * DAY),
        TicketStatus::Pending => (DAY, 8 * DAY),
        TicketStatus::OnHold => (2 * DAY, 12 * DAY),
        TicketStatus::Solved => (DAY, 40 * DAY),
        TicketStatus::Closed => (12 * DAY, 75 * DAY),
    }
}

/// One thing that happens to a ticket after it is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Beat {
    /// The supervisor assigns it (and routes it to a team).
    Triage,
    CustomerAnswer,
    CustomerFollowup,
    Note,
    /// A public reply: the question (with `Some(Pending)`), "working on it" (`None`), a hold
    /// notice (`Some(OnHold)`) or the resolution (`Some(Solved)`).
    Reply(Option<TicketStatus>),
    /// The supervisor closes a solved ticket.
    Close,
}

/// The beats after the first message that bring a ticket to `status` with about `messages`
/// messages in total.
pub(super) fn beats(status: TicketStatus, messages: usize) -> Vec<Beat> {
    use Beat::*;
    use TicketStatus as S;
    let rest = messages.saturating_sub(1);
    let ask = Reply(Some(S::Pending));
    let mut plan = match status {
        S::New => {
            return if rest >= 1 {
                vec![CustomerFollowup]
            } else {
                vec![]
            };
        }
        S::Open => match rest {
            0 => vec![],
            1 => vec![Note],
            2 => vec![ask, CustomerAnswer],
            3 => vec![Note, ask, CustomerAnswer],
            _ => vec![ask, CustomerAnswer, Reply(None), CustomerFollowup],
        },
        S::Pending => match rest {
            0 | 1 => vec![ask],
            2 => vec![Note, ask],
            3 => vec![ask, CustomerAnswer, ask],
            _ => vec![Note, ask, CustomerAnswer, ask],
        },
        S::OnHold => match rest {
            0 | 1 => vec![Reply(Some(S::OnHold))],
            2 => vec![Note, Reply(Some(S::OnHold))],
            3 => vec![ask, CustomerAnswer, Reply(Some(S::OnHold))],
            _ => vec![Note, ask, CustomerAnswer, Reply(Some(S::OnHold))],
        },
        S::Solved | S::Closed => match rest {
            0 | 1 => vec![Reply(Some(S::Solved))],
            2 => vec![Note, Reply(Some(S::Solved))],
            3 => vec![ask, CustomerAnswer, Reply(Some(S::Solved))],
            _ => vec![ask, CustomerAnswer, Note, Reply(Some(S::Solved))],
        },
    };
    plan.insert(0, Triage);
    if status == S::Closed {
        plan.push(Close);
    }
    plan
}

pub(super) fn beat_delay(rng: &mut StdRng, beat: Beat) -> SignedDuration {
    match beat {
        Beat::Triage => minutes(rng, 3, 120),
        Beat::Note => minutes(rng, 5, 180),
        Beat::Reply(_) => minutes(rng, 10, 360),
        Beat::CustomerAnswer => minutes(rng, 30, 2 * 24 * 60),
        Beat::CustomerFollowup => minutes(rng, 120, 2 * 24 * 60),
        Beat::Close => minutes(rng, 3 * 24 * 60, 7 * 24 * 60),
    }
}

pub(super) fn message_count(rng: &mut StdRng, status: TicketStatus) -> usize {
    if status == TicketStatus::New {
        return if rng.random_bool(0.75) { 1 } else { 2 };
    }
    weighted(rng, &[(1, 10), (2, 30), (3, 30), (4, 18), (5, 12)])
}

/// A story ready to be told: who writes, about what, and what happens after.
pub(super) struct Story {
    pub(super) kind: Kind,
    pub(super) channel: Channel,
    pub(super) status: TicketStatus,
    pub(super) priority: Priority,
    pub(super) tags: Vec<String>,
    pub(super) team: Option<TeamKey>,
    pub(super) subject: String,
    pub(super) first: String,
    pub(super) script: Script,
    pub(super) beats: Vec<Beat>,
}

pub(super) fn story(
    rng: &mut StdRng,
    channel: Channel,
    status: TicketStatus,
    who: &Person,
    vip: bool,
    marketplace: Option<usize>,
    created_at: Timestamp,
) -> Story {
    let kind = weighted(
        rng,
        if channel == Channel::Marketplace {
            MARKETPLACE_KIND_WEIGHTS
        } else {
            KIND_WEIGHTS
        },
    );
    let ctx = Ctx::new(rng, kind, who.english, created_at, marketplace);
    let script = script(kind, &ctx, rng);
    let mut tags: Vec<String> = kind.tags().iter().map(|tag| (*tag).to_owned()).collect();
    if matches!(kind, Kind::WhereIsOrder | Kind::DeliveryDelayed) {
        tags.push(ctx.carrier.tag.to_owned());
    }
    if channel == Channel::Marketplace {
        tags.push("маркетплейс".to_owned());
        tags.push(ctx.marketplace.3.to_owned());
    }
    if who.english {
        tags.push("international".to_owned());
    }
    let mut priority = kind.priority(rng);
    let mut team = kind.team();
    if vip {
        tags.push("vip".to_owned());
        team = Some(TeamKey::Vip);
        priority = if rng.random_bool(0.3) {
            Priority::Urgent
        } else {
            Priority::High
        };
    }
    // Stored as the use cases store them: sorted, without repeats.
    tags.sort();
    tags.dedup();
    let messages = message_count(rng, status);
    Story {
        kind,
        channel,
        status,
        priority,
        tags,
        team,
        subject: script.subject.clone(),
        first: customer_first_message(rng, channel, who, &script.first),
        script,
        beats: beats(status, messages),
    }
}

/// The marketplace a customer's buyer identity belongs to.
pub(super) fn marketplace_of(identities: &[IdentityValue]) -> Option<usize> {
    let provider = identities
        .iter()
        .find(|value| value.kind == IdentityKind::MarketplaceBuyer)?;
    MARKETPLACES
        .iter()
        .position(|(name, ..)| *name == provider.provider)
}
