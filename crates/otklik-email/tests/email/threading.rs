//! Reply tokens, our Message-IDs and plus addresses, and ticket subjects.

use otklik_email::{
    ReplyTokenKey, is_own_message_id, outbound_message_id, parse_address, plus_address,
    reply_subject, subject_ticket_number, ticket_of_address, ticket_of_message_id,
};
use proptest::prelude::*;
use uuid::Uuid;

fn key() -> ReplyTokenKey {
    ReplyTokenKey::new(b"test secret of the shop, 32 bytes")
}

fn ticket() -> Uuid {
    Uuid::parse_str("0190e3a4-5b6c-7d8e-9f01-23456789abcd").unwrap()
}

#[test]
fn a_token_round_trips_and_is_short_lowercase_hex() {
    let token = key().sign(ticket());
    assert_eq!(token.len(), 48);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert!(token.starts_with("0190e3a45b6c7d8e9f0123456789abcd"));
    assert_eq!(key().verify(&token), Some(ticket()));
    assert_eq!(key().verify(&token.to_uppercase()), Some(ticket()));
}

#[test]
fn a_tampered_token_is_rejected() {
    let token = key().sign(ticket());
    for index in 0..token.len() {
        let mut bytes = token.clone().into_bytes();
        bytes[index] = if bytes[index] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(key().verify(&tampered), None, "changed position {index}");
    }
    assert_eq!(key().verify(&token[..47]), None);
    assert_eq!(key().verify(&format!("{token}0")), None);
    assert_eq!(key().verify(""), None);
    assert_eq!(key().verify(&"ж".repeat(24)), None);
}

#[test]
fn a_token_from_another_key_is_rejected() {
    let other = ReplyTokenKey::new(b"another shop's secret");
    assert_eq!(key().verify(&other.sign(ticket())), None);
}

#[test]
fn the_key_does_not_print_its_secret() {
    assert_eq!(format!("{:?}", key()), "ReplyTokenKey(..)");
}

#[test]
fn our_message_id_names_the_ticket_and_our_domain() {
    let email_id = Uuid::parse_str("0190e3a4-0000-7000-8000-000000000001").unwrap();
    let id = outbound_message_id(email_id, ticket(), &key(), "Shop.Test");
    assert!(id.starts_with("0190e3a4000070008000000000000001."), "{id}");
    assert!(id.ends_with("@shop.test"), "{id}");
    assert_eq!(ticket_of_message_id(&id, &key()), Some(ticket()));
    assert_eq!(
        ticket_of_message_id(&format!("<{id}>"), &key()),
        Some(ticket())
    );
    assert!(is_own_message_id(&format!("<{id}>"), "shop.test"));
    assert!(!is_own_message_id(&id, "evil.test"));
    assert!(!is_own_message_id("CAF123@mail.gmail.com", "shop.test"));
    assert_eq!(ticket_of_message_id("CAF123@mail.gmail.com", &key()), None);
    // Another ticket's id with our tag does not verify; the email part is not signed.
    let dot = id.find('.').unwrap();
    let mut forged = id.clone().into_bytes();
    forged[dot + 32] = if forged[dot + 32] == b'f' { b'e' } else { b'f' };
    assert_eq!(
        ticket_of_message_id(std::str::from_utf8(&forged).unwrap(), &key()),
        None
    );
}

#[test]
fn a_plus_address_names_the_ticket_and_stays_a_valid_address() {
    let address = plus_address("support@Shop.Test", ticket(), &key());
    assert!(address.starts_with("support+"), "{address}");
    assert!(address.ends_with("@shop.test"), "{address}");
    assert_eq!(parse_address(&address).unwrap().address, address);
    assert_eq!(ticket_of_address(&address, &key()), Some(ticket()));
    assert_eq!(
        ticket_of_address(&format!("<{address}>"), &key()),
        Some(ticket())
    );
    // An existing tag is replaced, not stacked.
    let retagged = plus_address("support+sales@shop.test", ticket(), &key());
    assert_eq!(retagged.matches('+').count(), 1, "{retagged}");
    assert_eq!(ticket_of_address("support@shop.test", &key()), None);
    assert_eq!(ticket_of_address("support+t12345@shop.test", &key()), None);
}

#[test]
fn the_ticket_number_is_found_anywhere_in_the_subject() {
    assert_eq!(
        subject_ticket_number("Re: Where is my order? [#1234]"),
        Some(1234)
    );
    assert_eq!(subject_ticket_number("[#7] Ответ: доставка"), Some(7));
    assert_eq!(subject_ticket_number("Order #1234"), None);
    assert_eq!(subject_ticket_number(""), None);
}

#[test]
fn reply_subjects_never_pile_up_prefixes_or_markers() {
    let cases = [
        ("Where is my order?", "Re: Where is my order? [#1234]"),
        ("Re: Where is my order?", "Re: Where is my order? [#1234]"),
        (
            "RE: Re: re:Where is my order?",
            "Re: Where is my order? [#1234]",
        ),
        (
            "Re: Where is my order? [#1234]",
            "Re: Where is my order? [#1234]",
        ),
        (
            "Re: [#1234] Re: Where is my order?",
            "Re: Where is my order? [#1234]",
        ),
        ("Fwd: Where is my order?", "Re: Where is my order? [#1234]"),
        (
            "FW: RE: Where is my order?",
            "Re: Where is my order? [#1234]",
        ),
        ("Ответ: Где мой заказ?", "Re: Где мой заказ? [#1234]"),
        ("На: Re[2]: Где мой заказ?", "Re: Где мой заказ? [#1234]"),
        ("RE(3): AW: Bestellung", "Re: Bestellung [#1234]"),
        (
            "Return policy: question",
            "Re: Return policy: question [#1234]",
        ),
        ("Re: old ticket [#99]", "Re: old ticket [#1234]"),
        ("", "Re: [#1234]"),
        ("Re:", "Re: [#1234]"),
        (
            "Line\r\nBcc: evil@x.test",
            "Re: Line Bcc: evil@x.test [#1234]",
        ),
    ];
    for (subject, expected) in cases {
        assert_eq!(reply_subject(subject, 1234), expected, "{subject:?}");
    }
}

proptest! {
    #[test]
    fn any_ticket_round_trips_through_every_carrier(bytes in any::<[u8; 16]>()) {
        let ticket = Uuid::from_bytes(bytes);
        let key = key();
        prop_assert_eq!(key.verify(&key.sign(ticket)), Some(ticket));
        let id = outbound_message_id(Uuid::nil(), ticket, &key, "shop.test");
        prop_assert_eq!(ticket_of_message_id(&id, &key), Some(ticket));
        let address = plus_address("support@shop.test", ticket, &key);
        prop_assert_eq!(ticket_of_address(&address, &key), Some(ticket));
    }

    #[test]
    fn replying_to_a_reply_subject_changes_nothing(subject in "\\PC{0,60}", number in 1i64..1_000_000) {
        let once = reply_subject(&subject, number);
        prop_assert_eq!(reply_subject(&once, number), once.clone());
        prop_assert_eq!(subject_ticket_number(&once), Some(number));
    }
}
