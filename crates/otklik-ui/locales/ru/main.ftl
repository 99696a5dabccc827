# Рабочее место агента Otklik — русский язык.
# Каждый ключ должен быть и в ../en/main.ftl (это проверяет тест).

## Рамка страницы
skip-to-content = Перейти к содержимому
search-label = Поиск по тикетам и клиентам
search-placeholder = Поиск (/)
search-button = Найти
account-label = Учётная запись
shortcuts-button = Клавиши (?)
sign-out = Выйти
shortcuts-title = Клавиатурные сокращения
shortcut-move = Следующий / предыдущий тикет в списке
shortcut-open = Открыть выбранный тикет
shortcut-reply = Написать ответ клиенту
shortcut-note = Написать внутреннюю заметку
shortcut-assign = Назначить тикет на себя
shortcut-solve = Решить тикет
shortcut-search = Поиск
shortcut-help = Показать этот список
close = Закрыть

## Ошибки
error-400-title = Запрос не удалось прочитать
error-400-text = В адресе или форме что-то искажено. Вернитесь и попробуйте ещё раз.
error-403-title = Нет доступа
error-403-text = Ваша роль этого не позволяет.
error-404-title = Страница не найдена
error-404-text = Её нет, или у вас нет к ней доступа.
error-405-title = Этот адрес так не работает
error-405-text = Пользуйтесь кнопками на странице, а не набирайте этот адрес.
error-413-title = Слишком большой объём
error-413-text = Форма больше допустимого. Сократите текст и отправьте снова.
error-500-title = У нас что-то сломалось
error-500-text = Ошибка записана в журнал. Попробуйте через минуту.
error-csrf-title = Форма устарела
error-csrf-text = Форму открыли слишком давно, в другом сеансе или отправили с другого сайта. Обновите страницу и попробуйте снова.
error-back = Вернуться во входящие
error-conflict = Кто-то изменил этот тикет в тот же момент. Посмотрите, что изменилось, и попробуйте снова.

## Вход и первичная настройка
login-title = Вход
login-expired = Сеанс завершён. Войдите снова, чтобы продолжить.
login-failed = Неверный e-mail или пароль.
login-submit = Войти
login-forgot = Забыли пароль? Попросите администратора сбросить его командой otklik на сервере.
field-email = E-mail
field-password = Пароль
field-name = Ваше имя
field-new-password = Пароль (не короче 10 символов)
field-password-again = Пароль ещё раз
setup-title = Настройка Otklik
setup-intro = Создайте первого администратора. Ссылка действует один раз.
setup-no-token = Откройте одноразовую ссылку настройки, которую сервер вывел при запуске.
setup-invalid-token = Ссылка настройки недействительна, просрочена или уже использована.
setup-password-mismatch = Пароли не совпадают.
setup-submit = Создать администратора

## Ошибки в формах
form-error-required = Заполните это поле.
form-error-password = Пароль должен быть не короче 10 символов.
form-error-email = Введите адрес вида name@example.com.
form-error-too-long = Слишком длинно.
form-error-invalid = Такое значение не подходит.
form-error-email-taken = Этот e-mail уже занят.
form-error-transition = Из текущего статуса тикет нельзя перевести в этот.

## Входящие
inbox-title = Входящие
views-label = Представления
view-my-open = Мои открытые
view-unassigned = Не назначенные
view-all-open = Все открытые
view-urgent = Срочные
view-pending-idle = Ожидают больше 2 дней
view-solved = Решённые
tickets-count = { $count ->
    [one] { $count } тикет
    [few] { $count } тикета
   *[many] { $count } тикетов
}
list-empty = Здесь нет тикетов.
list-next-page = Следующая страница
col-subject = Тема
col-customer = Клиент
col-status = Статус
col-priority = Приоритет
col-assignee = Исполнитель
col-updated = Обновлён
nobody = Никто
no-team = Без команды

## Поиск
search-title = Поиск
search-tickets = Тикеты
search-customers = Клиенты
search-nothing = Ничего не найдено. Попробуйте другие слова, номер тикета, e-mail или телефон.

## Названия
status-new = Новый
status-open = Открыт
status-pending = Ожидает клиента
status-on-hold = Отложен
status-solved = Решён
status-closed = Закрыт
priority-low = Низкий
priority-normal = Обычный
priority-high = Высокий
priority-urgent = Срочный
channel-email = e-mail
channel-chat = чат
channel-web-form = веб-форма
channel-phone = телефон
channel-messenger = мессенджер
channel-marketplace = маркетплейс
channel-api = API
identity-email = E-mail
identity-phone = Телефон
identity-chat-visitor = Посетитель чата
identity-messenger = Мессенджер
identity-marketplace-buyer = Покупатель маркетплейса
entry-customer = клиент
entry-agent = ответ
entry-note = внутренняя заметка
entry-system = система

## Тикет
ticket-channel = Канал
ticket-assignee = Исполнитель
ticket-created = Создан
ticket-merged = Этот тикет объединён с другим. Открыть его.
ticket-closed = Тикет закрыт и не меняется.
ticket-merged-into = Тикет объединён с тикетом #{ $value }.
timeline-label = Переписка
attachments-label = Вложения
author-customer = Клиент
author-system = Otklik
action-assign-to-me = Взять себе
action-solve = Решить
reply-kind = Вид
reply-public = Ответ клиенту
reply-note = Внутренняя заметка
reply-body = Сообщение
reply-via = (ответ клиенту уйдёт через канал «{ $value }»)
reply-status = Затем статус
reply-status-keep = Не менять статус
reply-send = Отправить
fields-title = Тикет
field-subject = Тема
field-status = Статус
field-priority = Приоритет
field-assignee = Исполнитель
field-team = Команда
field-tags = Теги
field-tags-hint = Теги через запятую.
fields-save = Сохранить
done-reply = Ответ отправлен.
done-note = Заметка добавлена.
done-saved = Изменения сохранены.
done-assigned = Тикет назначен на вас.
done-solved = Тикет решён.
size-bytes = { $count ->
    [one] { $count } байт
    [few] { $count } байта
   *[many] { $count } байт
}
size-kb = { $count } КБ
size-mb = { $count } МБ

## Клиент
customer-merged = Этот клиент объединён с другим. Открыть основную карточку.
customer-since = Клиент с
customer-language = Язык
customer-identities = Контакты
customer-tickets = Тикеты
customer-other-tickets = Другие тикеты
customer-no-other-tickets = Других тикетов нет.
