//! Folding quoted history away, on replies written the way common clients write them.

use otklik_email::fold_quotes;

/// Asserts the visible part and where the folded part starts.
fn assert_folds(text: &str, visible: &str, folded_starts_with: &str) {
    let folded = fold_quotes(text);
    assert_eq!(folded.visible, visible, "in {text:?}");
    let rest = folded
        .folded
        .unwrap_or_else(|| panic!("nothing folded in {text:?}"));
    assert!(
        rest.starts_with(folded_starts_with),
        "folded part {rest:?} does not start with {folded_starts_with:?}"
    );
}

#[test]
fn a_gmail_reply_in_english_folds_from_the_attribution() {
    let text = "Thanks, that works!\n\nIvan\n\n\
        On Mon, Mar 11, 2024 at 10:00 AM Shop Support <support@shop.test> wrote:\n\n\
        > Hello Ivan,\n> your order has shipped.\n>\n> --\n> Shop\n";
    assert_folds(text, "Thanks, that works!\n\nIvan", "On Mon, Mar 11, 2024");
}

#[test]
fn a_gmail_attribution_wrapped_onto_two_lines_is_found() {
    let text = "Got it.\n\nOn Mon, Mar 11, 2024 at 10:00 AM Shop Customer Support Team <\n\
        support@shop.test> wrote:\n> Hello\n";
    assert_folds(text, "Got it.", "On Mon, Mar 11, 2024");
}

#[test]
fn a_gmail_reply_in_russian_folds_from_the_attribution() {
    let text = "Спасибо, получил.\n\n\
        пн, 11 мар. 2024 г. в 10:00, Магазин <support@shop.test>:\n\n\
        > Здравствуйте, Иван!\n> Ваш заказ отправлен.\n";
    assert_folds(text, "Спасибо, получил.", "пн, 11 мар. 2024 г.");
}

#[test]
fn an_outlook_reply_folds_from_its_header_block() {
    let text = "Hi,\r\nplease cancel the order.\r\n\r\nRegards,\r\nAnn\r\n\r\n\
        ________________________________\r\n\
        From: Shop Support <support@shop.test>\r\n\
        Sent: Monday, March 11, 2024 10:00 AM\r\n\
        To: Ann Smith <ann@example.com>\r\n\
        Subject: RE: Order [#42]\r\n\r\nHello Ann,\r\n";
    assert_folds(
        text,
        "Hi,\r\nplease cancel the order.\r\n\r\nRegards,\r\nAnn",
        "________________________________",
    );
}

#[test]
fn a_russian_outlook_reply_folds_from_its_header_block() {
    let text = "Добрый день!\nЗаказ пришёл, спасибо.\n\n\
        От: Магазин <support@shop.test>\n\
        Отправлено: 11 марта 2024 г. 10:00\n\
        Кому: Анна <anna@example.ru>\n\
        Тема: RE: Заказ [#42]\n\nЗдравствуйте, Анна!\n";
    assert_folds(text, "Добрый день!\nЗаказ пришёл, спасибо.", "От: Магазин");
}

#[test]
fn an_original_message_separator_starts_the_history() {
    let text = "See below.\n\n-----Original Message-----\nFrom: support@shop.test\nHello\n";
    assert_folds(text, "See below.", "-----Original Message-----");
}

#[test]
fn a_thunderbird_reply_in_english_and_russian_is_folded() {
    assert_folds(
        "Yes, size M.\n\nOn 3/11/24 10:00 AM, Shop Support wrote:\n> Which size?\n",
        "Yes, size M.",
        "On 3/11/24",
    );
    assert_folds(
        "Да, размер M.\n\n11.03.2024 10:00, Shop Support пишет:\n> Какой размер?\n",
        "Да, размер M.",
        "11.03.2024 10:00",
    );
    assert_folds(
        "Пересылаю.\n\n-------- Исходное сообщение --------\nТема: Заказ\nДата: 11.03.2024\n",
        "Пересылаю.",
        "-------- Исходное сообщение --------",
    );
}

#[test]
fn a_yandex_reply_is_folded() {
    let text = "Жду возврат.\n\n11.03.2024, 10:15, \"Магазин\" <support@shop.test>:\n\
        > Здравствуйте!\n> Возврат оформлен.\n\n-- \nОтправлено из мобильного приложения Яндекс Почты\n";
    assert_folds(text, "Жду возврат.", "11.03.2024, 10:15");
}

#[test]
fn a_mail_ru_reply_is_folded() {
    let text = "Когда доставка?\n\n\
        Понедельник, 11 марта 2024, 10:00 +03:00 от Магазин <support@shop.test>:\n\
        > Заказ собран.\n";
    assert_folds(text, "Когда доставка?", "Понедельник, 11 марта 2024");
}

#[test]
fn an_apple_mail_reply_is_folded() {
    let text = "Perfect.\n\nSent from my iPhone\n\n\
        > On 11 Mar 2024, at 10:00, Shop <support@shop.test> wrote:\n>\n> Shipped!\n";
    assert_folds(text, "Perfect.", "Sent from my iPhone");
}

#[test]
fn the_signature_separator_folds_the_signature() {
    let text = "Where is my parcel?\n\n-- \nIvan Petrov\nACME Ltd, +7 900 000-00-00\n";
    assert_folds(text, "Where is my parcel?", "-- \nIvan Petrov");
}

#[test]
fn a_mobile_footer_at_the_end_is_folded_but_not_in_the_middle() {
    assert_folds(
        "Ok\n\nОтправлено из мобильной Почты Mail.ru\n",
        "Ok",
        "Отправлено из мобильной Почты Mail.ru",
    );
    let text = "I wrote from my phone.\nSent from my iPhone is what it says.\nBut here is more.";
    assert_eq!(fold_quotes(text).folded, None);
}

#[test]
fn a_bottom_quote_without_attribution_is_folded() {
    let text = "Please send the invoice again.\n\n> Here is your invoice.\n> Shop\n";
    assert_folds(
        text,
        "Please send the invoice again.",
        "> Here is your invoice.",
    );
}

#[test]
fn a_forwarded_mail_with_a_note_keeps_the_note_visible() {
    let text = "FYI, the courier sent me this.\n\n---------- Forwarded message ---------\n\
        From: Courier <noreply@courier.test>\nDate: Mon, 11 Mar 2024\nSubject: Delivery failed\n";
    assert_folds(
        text,
        "FYI, the courier sent me this.",
        "---------- Forwarded message",
    );
}

#[test]
fn a_forward_without_a_note_stays_visible() {
    let text = "---------- Forwarded message ---------\nFrom: Courier <noreply@courier.test>\n\
        Date: Mon, 11 Mar 2024\nSubject: Delivery failed\n\nYour parcel is waiting.";
    let folded = fold_quotes(text);
    assert_eq!(folded.visible, text);
    assert_eq!(folded.folded, None);
}

#[test]
fn a_message_with_nothing_quoted_is_left_alone() {
    for text in [
        "Hello,\nwhere is my order 42?\nThanks",
        "Здравствуйте! Заказ 42 не пришёл.",
        "",
        "Price: 100\nDate: tomorrow\nTo: me",
    ] {
        let folded = fold_quotes(text);
        assert_eq!(folded.visible, text);
        assert_eq!(folded.folded, None);
    }
}
