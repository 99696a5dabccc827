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
login-forgot = Забыли пароль?
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
search-filters = Фильтры
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

## Навигация
nav-label = Разделы
cancel = Отмена
yes = Да
no = Нет
shortcut-select = Отметить выбранный тикет или снять отметку (shift-клик отмечает диапазон)
action-merge = Объединить с другим тикетом…

## Администрирование
admin-title = Администрирование
admin-agents = Агенты
admin-teams = Команды
admin-tags = Теги
admin-tokens = API-токены
admin-mailboxes = Почтовые ящики
admin-mail = Проблемы с почтой
admin-actions = Действия
admin-state = Состояние
admin-active = Активен
admin-inactive = Отключён
admin-you = вы
admin-edit = Изменить…
admin-create = Создать
admin-rename = Переименовать
admin-delete = Удалить
admin-delete-named = Удалить { $value }
admin-deactivate = Отключить
admin-reactivate = Включить снова
admin-done-saved = Сохранено.
admin-done-created = Создано.
admin-done-deleted = Удалено.
admin-done-revoked = Токен отозван и сразу перестал работать.
admin-done-retried = Ответ снова поставлен в очередь на отправку.
admin-agent-invited = { $value } теперь может войти.
admin-agent-not-saved = Агент не изменён: см. отмеченное поле.
admin-cannot-deactivate-self = Нельзя отключить себя или сменить себе роль.
admin-invite = Пригласить агента
admin-invite-password = Пароль (необязательно)
admin-invite-password-hint = Оставьте пустым, чтобы создать пароль автоматически; он будет показан один раз, здесь.
admin-invite-submit = Пригласить
admin-password-once = Пароль для { $value } (показан только сейчас; скопируйте и передайте его надёжным способом):
field-role = Роль
field-teams = Команды
field-agent-name = Имя
role-agent = Агент
role-supervisor = Руководитель
role-admin = Администратор
form-error-name-taken = Это имя уже занято.
form-error-files = Файлы не приняты; прикрепите их снова, не превышая ограничений.
admin-no-teams = Команд пока нет.
admin-team-name = Название команды
admin-new-team = Новая команда
admin-team-delete-hint = После удаления команды её тикеты останутся без команды, а агенты — без членства в ней.
admin-no-tags = Тегов пока нет.
admin-tag-name = Тег
admin-new-tag = Новый тег
admin-tag-delete-hint = Удалённый тег снимается со всех тикетов.
admin-tokens-intro = Ваши собственные токены для API. Токен никогда не даёт больше, чем ваша роль.
admin-no-tokens = У вас нет токенов.
admin-new-token = Новый токен
admin-token-name = Название
admin-token-prefix = Начинается с
admin-token-scopes = Разрешает
admin-token-created-at = Создан
admin-token-expires = Истекает
admin-token-never = никогда
admin-token-revoked = отозван
admin-token-revoke = Отозвать
admin-token-days = Срок действия (дней)
admin-token-days-hint = Оставьте пустым для бессрочного токена.
admin-token-days-invalid = Введите целое число дней от 1 до 3650.
admin-token-scopes-required = Выберите хотя бы одно разрешение.
admin-token-created = Токен создан.
admin-token-once = Токен { $value } (показан только сейчас; сохраните его в секретах интеграции):
scope-tickets-read = Чтение тикетов
scope-tickets-write = Изменение тикетов
scope-customers-read = Чтение клиентов
scope-customers-write = Изменение клиентов
scope-admin = Всё (администратор)
admin-no-mailboxes = Почтовых ящиков пока нет.
admin-new-mailbox = Добавить почтовый ящик
admin-mailbox-name = Короткое имя
admin-mailbox-address = Адрес поддержки
admin-mailbox-imap = URL IMAP (входящая почта)
admin-mailbox-smtp = URL SMTP (исходящие ответы)
admin-mailbox-ack = Автоматически подтверждать новые обращения
admin-mailbox-not-set = не задан
admin-mailbox-check = Проверить подключение
admin-mailbox-url-invalid = Введите URL вида imaps://user:password@host:993/INBOX или smtps://user:password@host:465.
admin-mailbox-name-invalid = Используйте от 1 до 64 букв, цифр, «-», «_» или «.».
admin-mailbox-address-taken = Этот адрес уже использует другой почтовый ящик.
admin-check-ok = подключение и вход выполнены
admin-check-none = не настроен
admin-check-unavailable = Этот процесс сервера не работает с почтовыми серверами, поэтому проверить подключение отсюда нельзя.
admin-quarantine = Карантин
admin-quarantine-intro = Письма, которые не удалось прочитать, хранятся здесь вместе с исходными байтами и никогда не теряются.
admin-quarantine-empty = В карантине пусто.
admin-failed-replies = Ответы, которые не удалось доставить
admin-failed-empty = Недоставленных ответов нет.
admin-reprocess = Обработать снова
admin-open-ticket = Открыть тикет
admin-reprocessed-ticket = Обработано: письмо в тикете #{ $value }.
admin-reprocessed-duplicate = Письмо уже было обработано; ничего не изменилось.
admin-reprocessed-quarantined = По-прежнему не читается: { $value }
admin-reprocessed-ignored = Записано без тикета: { $value }
admin-reprocess-not-quarantined = Этого письма больше нет в карантине.
emails-count = { $count ->
    [one] { $count } письмо
    [few] { $count } письма
   *[many] { $count } писем
}

## Письма в переписке
email-raw = Исходное письмо
email-reason = Причина
email-retry = Отправить снова
email-no-subject = (без темы)
email-frame-title = Письмо в оформлении клиента
email-plain-text = Простой текст
email-show-quoted = Показать цитату
delivery-queued = в очереди на отправку
delivery-sent = отправлено
delivery-failed = не доставлено
done-retried = Ответ снова поставлен в очередь на отправку.
reply-files = Файлы
upload-hint-files = { $count ->
    [one] До { $count } файла,
    [few] До { $count } файлов,
   *[many] До { $count } файлов,
}
upload-hint-size = { $count ->
    [one] не больше { $count } МБ каждый, 25 МБ вместе.
    [few] не больше { $count } МБ каждый, 25 МБ вместе.
   *[many] не больше { $count } МБ каждый, 25 МБ вместе.
}
event-split = Сообщение выделено в новый тикет.
event-split-from = Выделен из другого тикета.
event-open-new = Открыть новый тикет
event-open-original = Открыть исходный тикет
event-merged-in = Тикет #{ $value } объединён с этим.
event-merged-away = Объединён с другим тикетом.

## Присутствие
presence-viewing = { $value } смотрит этот тикет
presence-replying = { $value } пишет ответ в этом тикете

## Объединение и разделение
merge-title = Объединить тикет
merge-intro = Найдите тикет, который дублирует этот. Сообщения переедут туда, а этот тикет будет закрыт.
merge-search = Номер тикета или слова
merge-preview = Что произойдёт
merge-into = В тикет #{ $value }
merge-moves-messages = { $count ->
    [one] переедет { $count } сообщение
    [few] переедут { $count } сообщения
   *[many] переедут { $count } сообщений
}
merge-moves-files = { $count ->
    [one] { $count } файл
    [few] { $count } файла
   *[many] { $count } файлов
}
merge-moves-identities = { $count ->
    [one] { $count } контакт
    [few] { $count } контакта
   *[many] { $count } контактов
}
merge-moves-tickets = { $count ->
    [one] { $count } тикет
    [few] { $count } тикета
   *[many] { $count } тикетов
}
merge-closes = Тикет #{ $value } будет закрыт и будет ссылаться на другой.
merge-other-customer = Другой тикет принадлежит другому клиенту.
merge-confirm = Объединить с #{ $value }
merge-refused = Эти тикеты нельзя объединить (один из них уже объединён, или это один и тот же тикет).
merge-target-missing = Выбранного тикета больше нет, или он вам не виден.
done-merged = Тикеты объединены.
split-action = Выделить в новый тикет
split-title = Выделить в новый тикет
split-intro = Это сообщение тикета #{ $value } будет скопировано в новый тикет того же клиента; в исходном оно тоже останется.
split-subject = Тема нового тикета
split-confirm = Создать тикет
split-refused = В новый тикет можно выделить только сообщение клиента.
done-split = Из сообщения создан новый тикет.
messages-count = { $count ->
    [one] { $count } сообщение
    [few] { $count } сообщения
   *[many] { $count } сообщений
}

## Входящие: фильтры и массовые действия
filter-title = Фильтр
filter-any = Любой
filter-me = Я
filter-channel = Канал
filter-tag = Тег
filter-updated-from = Обновлён с (UTC)
filter-updated-to = Обновлён по (UTC)
filter-error-dates = Конец раньше начала.
filter-apply = Показать
view-save-label = Сохранить как моё представление с именем
view-save = Сохранить
view-created = Представление сохранено.
view-not-saveable = Фильтр по тегу или каналу нельзя сохранить как представление.
view-name-invalid = Дайте представлению имя длиной от 1 до 100 символов.
view-too-many = У вас слишком много представлений; сначала удалите одно.
bulk-label = С отмеченными тикетами
bulk-select-all = Отметить все тикеты на странице
bulk-select-ticket = Отметить тикет #{ $value }
bulk-assign = Назначить
bulk-apply = Установить
bulk-tag = Тег
bulk-add = Добавить
bulk-merge = Объединить…
bulk-done = { $count ->
    [one] Изменён { $count } тикет.
    [few] Изменено { $count } тикета.
   *[many] Изменено { $count } тикетов.
}
bulk-failed = { $count ->
    [one] { $count } тикет изменить не удалось (закрыт, объединён или изменение недопустимо).
    [few] { $count } тикета изменить не удалось (закрыты, объединены или изменение недопустимо).
   *[many] { $count } тикетов изменить не удалось (закрыты, объединены или изменение недопустимо).
}
bulk-merge-title = Объединить тикеты
bulk-merge-intro = Выберите тикет, который останется; остальные будут объединены с ним и закрыты.
bulk-merge-survivor = Остаётся тикет
bulk-merge-hint = Предложен самый старый тикет. Объединение нельзя отменить.
bulk-merge-confirm = Объединить
bulk-merge-needs-two = Отметьте хотя бы два тикета для объединения.

## Клиенты
customers-title = Клиенты
customers-search = Имя, e-mail или телефон
customers-nothing = Клиенты не найдены.
customers-none = Клиентов пока нет.
customer-merges = Объединения
customer-merged-into = Объединён с
customer-took-in = Принял клиента
customer-merge-undone = отменено
customer-unmerge = Отменить объединение
customer-merge-action = Объединить с другим клиентом…
customer-merge-title = Объединить клиента
customer-merge-intro = Найдите клиента, который дублирует этого. Контакты и тикеты переедут к нему; объединение можно отменить.
customer-merge-into = Объединить с клиентом { $value }
customer-merge-undo-hint = Если это ошибка, кнопка «Отменить объединение» на странице клиента вернёт ровно то, что переехало.
customer-merge-confirm = Объединить
customer-merge-refused = Этих клиентов нельзя объединить (один из них уже объединён, или это один и тот же клиент).
customer-unmerge-refused = Это объединение сейчас нельзя отменить: оно уже отменено, или сначала нужно отменить более позднее.
customer-already-merged = Этот клиент уже объединён с другим.
customer-done-merged = Клиенты объединены.
customer-done-unmerged = Объединение отменено.
bulk-ticked = Отмечено:

## Сброс пароля, настройки, сортировка, язык

login-reset-done = Новый пароль задан. Войдите с ним.
forgot-title = Сброс пароля
forgot-intro = Введите e-mail, с которым вы входите. Если такая учётная запись есть, мы пришлём ссылку, чтобы задать новый пароль.
forgot-submit = Отправить ссылку
forgot-sent = Если учётная запись с этим e-mail существует, мы отправили на него ссылку для сброса пароля. Ссылка сработает один раз в течение часа.
forgot-not-configured = Сброс пароля по e-mail не настроен: нет почтового ящика, с которого его отправить. Попросите администратора задать новый пароль или выполните на сервере «otklik admin reset-password --email … --password-stdin».
forgot-back = Вернуться ко входу
reset-title = Новый пароль
reset-intro = Когда новый пароль будет задан, все остальные сеансы завершатся.
reset-submit = Задать пароль
reset-invalid = Ссылка недействительна, устарела или уже использована.
reset-ask-again = Запросить новую ссылку
admin-settings = Настройки
admin-settings-name = Название службы поддержки
admin-settings-name-hint = Показывается в шапке и как имя отправителя писем.
admin-settings-language = Язык по умолчанию
admin-settings-language-browser = Как в браузере
admin-settings-url = Публичный адрес
admin-settings-url-hint = Куда ведут ссылки в письмах, например https://help.example.com. Пусто — адрес, который слушает сервер.
admin-settings-url-invalid = Введите полный адрес, начинающийся с http:// или https://.
admin-settings-mailbox = Ящик для системных писем
admin-settings-mailbox-first = Первый ящик
admin-settings-mailbox-hint = С него уходят ссылки для сброса пароля.
admin-settings-mailbox-unknown = Этого ящика больше нет.
admin-settings-save = Сохранить настройки
sort-label = Сортировка
sort-apply = Упорядочить
sort-updated-desc = Обновлены, сначала новые
sort-updated-asc = Обновлены, сначала давние
sort-created-desc = Созданы, сначала новые
sort-created-asc = Созданы, сначала старые
sort-priority-desc = Приоритет, сначала срочные
sort-priority-asc = Приоритет, сначала низкие
sort-number-desc = Номер, по убыванию
sort-number-asc = Номер, по возрастанию

## Живой чат
chats-title = Чаты
chat-availability = Доступность для чатов
availability-online = В сети
availability-away = Отошёл
availability-offline = Не в сети
chat-max = Макс. чатов
chat-load-hint = Ваши активные чаты из максимума
chats-count = { $count ->
    [one] { $count } чат
    [few] { $count } чата
   *[many] { $count } чатов
}
chat-max-invalid = Выберите максимум от 1 до 20 чатов.
chat-queue-title = Ожидают ответа
chats-waiting = { $count ->
    [one] { $count } чат
    [few] { $count } чата
   *[many] { $count } чатов
}
chat-queue-empty = Никто не ждёт.
chat-col-position = Место
chat-col-waiting = Ждёт
chat-col-customer = Клиент
chat-col-message = Первое сообщение
chat-col-site = Сайт
chat-col-language = Язык
chat-col-actions = Действия
chat-accept = Принять
chat-accept-number = Принять чат №{ $value }
chat-mine-title = Мои чаты
chat-mine-empty = У вас нет активных чатов.
chat-unread = { $count ->
    [one] { $count } новое
    [few] { $count } новых
   *[many] { $count } новых
}
chat-visitor = Посетитель сайта
chat-bar-title = Чат
chat-state-queued = В очереди
chat-state-active = Идёт
chat-state-ended = Завершён
chat-state-offline = Офлайн-сообщение
chat-queued = ждёт в очереди
chat-queue-position = №{ $value } в очереди
chat-with-me = с вами
chat-with-agent = ведёт { $value }
chat-ended-detail = новый ответ уйдёт письмом
chat-offline-detail = никого не было в сети — отвечаем письмом
chat-waiting-for = ждёт
chat-transfer-to = Передать
chat-transfer-choose = — выберите —
chat-transfer-agents = Агенты
chat-transfer-teams = Команды (в их очередь)
chat-transfer = Передать
chat-end = Завершить чат
chat-transfer-pick = Выберите агента или команду.
chat-transfer-capacity = Этот агент не в сети для чатов или у него нет свободного места.
chat-transfer-same = Чат уже у этого агента.
chat-capacity = Вы не в сети для чатов или у вас уже максимум чатов. Включите «В сети» или увеличьте максимум вверху страницы.
chat-not-waiting = Этот чат только что взял кто-то другой.
chat-over = Чат уже завершён.
chat-reply-capacity = Этот чат ждёт в очереди, и ваш ответ взял бы его, но вы не в сети для чатов или у вас нет свободного места. Включите «В сети» (или увеличьте максимум) вверху страницы либо напишите внутреннюю заметку. Текст сохранён.
chat-visitor-typing = Клиент печатает…
chat-agent-typing = { $value } печатает…
reply-via-chat = (ответ клиенту уйдёт в чат)
reply-via-chat-over = (чат завершён — ответ клиенту уйдёт письмом)
done-chat-accepted = Вы приняли чат.
done-chat-transferred = Чат передан.
done-chat-ended = Чат завершён.

## Администрирование: сайты с чатом
admin-chat-sites = Сайты с чатом
admin-done-rotated = Создан новый секрет; старый больше никого не подтверждает.
chat-sites-intro = Сайт с чатом — это сайт магазина, на котором появляется виджет чата. Создайте его и вставьте тег на страницы магазина.
chat-site-new = Новый сайт с чатом
chat-sites-none = Сайтов с чатом пока нет.
chat-sites-back = ← Все сайты с чатом
chat-site-inactive = выключен
chat-site-edit = Сайт с чатом
chat-site-has-errors = Некоторые поля нужно исправить: они отмечены ниже.
chat-site-embed = Встроить виджет
chat-site-embed-hint = Вставьте этот тег на все страницы магазина, перед </body>.
copy = Скопировать
copied = Скопировано
chat-site-identity = Проверка личности
chat-site-identity-hint = Вошедший в магазин покупатель видит свою историю в любом браузере. Сервер магазина подписывает id покупателя этим секретом; без верной подписи никто не выдаст себя за него.
chat-site-secret = Секрет подписи
chat-site-rotate = Сменить секрет
chat-site-rotate-confirm = Создать новый секрет? Старый сразу перестанет работать — обновите его на сервере магазина.
chat-site-hmac-title = Как подписать покупателя на сервере магазина
chat-site-hmac-hint = Подпись — это hex(HMAC-SHA256(секрет, id покупателя)). Считайте её на сервере; никогда не вставляйте секрет в страницу.
chat-site-hmac-page = Затем на странице, перед тегом виджета:
chat-site-settings = Настройки
chat-site-name = Название
chat-site-origins = Разрешённые сайты
chat-site-origins-hint = По одному в строке, например https://shop.example. Виджет работает только на них.
chat-site-greeting = Приветствие
chat-site-colour = Цвет акцента
chat-site-hours = Часы работы
chat-site-hours-hint = Оставьте все дни пустыми — чат открыт круглосуточно. Если у какого-то дня есть часы, день без часов — выходной.
chat-site-time-zone = Часовой пояс
chat-site-day = День
chat-site-from = С
chat-site-to = До
chat-site-closed = Выходной
weekday-mon = Понедельник
weekday-tue = Вторник
weekday-wed = Среда
weekday-thu = Четверг
weekday-fri = Пятница
weekday-sat = Суббота
weekday-sun = Воскресенье
chat-site-questions = Вопросы перед чатом
chat-site-ask-name = Имя
chat-site-ask-email = E-mail
chat-site-ask-order = Номер заказа
chat-field-hidden = Не спрашивать
chat-field-optional = Необязательно
chat-field-required = Обязательно
chat-site-require-identity = Только для вошедших покупателей магазина
chat-site-require-identity-hint = Анонимные посетители не смогут писать; магазин должен подписывать покупателей (см. выше).
chat-site-any-team = Любая команда
chat-site-team-hint = Чаты с этого сайта ждут агентов этой команды.
chat-site-mailbox = Ящик для ответов письмом
chat-site-any-mailbox = Любой ящик
chat-site-mailbox-hint = С него отвечаем на офлайн-сообщения и завершённые чаты и отправляем расшифровки.
chat-site-active = Включён (виджет появляется на сайте)
chat-site-save = Сохранить
chat-site-name-invalid = Дайте сайту название длиной 1–100 символов.
chat-site-colour-invalid = Выберите цвет вида #1f6feb.
chat-site-time-zone-invalid = Укажите часовой пояс, например Europe/Moscow.
chat-site-day-invalid = Укажите оба времени, открытие раньше закрытия (00:00 — до полуночи).
chat-site-hours-none-open = Откройте хотя бы один день или оставьте все дни пустыми — тогда чат работает круглосуточно.
chat-site-origin-invalid = «{ $value }» — не адрес сайта вида https://shop.example (без пути).
chat-site-origins-required = Укажите хотя бы один сайт, где работает виджет.
chat-site-origins-too-many = Не больше 20 сайтов.
