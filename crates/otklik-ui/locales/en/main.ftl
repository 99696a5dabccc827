# Otklik agent workspace — English.
# Every key here must also exist in ../ru/main.ftl (a test checks both ways).

## Frame
skip-to-content = Skip to content
search-label = Search tickets and customers
search-placeholder = Search (/)
search-button = Search
account-label = Account
shortcuts-button = Shortcuts (?)
sign-out = Sign out
shortcuts-title = Keyboard shortcuts
shortcut-move = Next / previous ticket in a list
shortcut-open = Open the selected ticket
shortcut-reply = Write a public reply
shortcut-note = Write an internal note
shortcut-assign = Assign the ticket to me
shortcut-solve = Solve the ticket
shortcut-search = Search
shortcut-help = Show this list
close = Close

## Errors
error-400-title = The request could not be read
error-400-text = Something in the address or the form was malformed. Go back and try again.
error-403-title = Not allowed
error-403-text = Your role does not allow this.
error-404-title = Page not found
error-404-text = It does not exist, or you do not have access to it.
error-405-title = This address does not work that way
error-405-text = Use the buttons on the page rather than typing this address.
error-413-title = Too large
error-413-text = The form was larger than allowed. Shorten the text and send it again.
error-500-title = Something went wrong on our side
error-500-text = The problem has been logged. Try again in a minute.
error-csrf-title = The form has expired
error-csrf-text = The form was opened too long ago, in another session, or sent from another site. Reload the page and try again.
error-back = Back to the inbox
error-conflict = Someone changed this ticket at the same moment. Check what changed and try again.

## Sign-in and set-up
login-title = Sign in
login-expired = Your session has ended. Sign in again to continue.
login-failed = Wrong e-mail or password.
login-submit = Sign in
login-forgot = Forgot your password?
field-email = E-mail
field-password = Password
field-name = Your name
field-new-password = Password (at least 10 characters)
field-password-again = Password again
setup-title = Set up Otklik
setup-intro = Create the first administrator. This link works once.
setup-no-token = Open the one-time set-up link that the server printed when it started.
setup-invalid-token = This set-up link is invalid, expired or already used.
setup-password-mismatch = The two passwords differ.
setup-submit = Create the administrator

## Form errors
form-error-required = Fill in this field.
form-error-password = The password must be at least 10 characters long.
form-error-email = Enter an e-mail address like name@example.com.
form-error-too-long = This is too long.
form-error-invalid = This value is not accepted.
form-error-email-taken = Someone already uses this e-mail.
form-error-transition = The ticket cannot move to this status from its current one.

## Inbox
inbox-title = Inbox
views-label = Views
view-my-open = My open tickets
view-unassigned = Unassigned
view-all-open = All open
view-urgent = Urgent
view-pending-idle = Pending over 2 days
view-solved = Solved
tickets-count = { $count ->
    [one] { $count } ticket
   *[other] { $count } tickets
}
list-empty = No tickets here.
list-next-page = Next page
col-subject = Subject
col-customer = Customer
col-status = Status
col-priority = Priority
col-assignee = Assignee
col-updated = Updated
nobody = Nobody
no-team = No team

## Search
search-title = Search
search-tickets = Tickets
search-customers = Customers
search-filters = Filters
search-nothing = Nothing found. Try other words, a ticket number, an e-mail or a phone number.

## Labels
status-new = New
status-open = Open
status-pending = Pending
status-on-hold = On hold
status-solved = Solved
status-closed = Closed
priority-low = Low
priority-normal = Normal
priority-high = High
priority-urgent = Urgent
channel-email = e-mail
channel-chat = chat
channel-web-form = web form
channel-phone = phone
channel-messenger = messenger
channel-marketplace = marketplace
channel-api = API
identity-email = E-mail
identity-phone = Phone
identity-chat-visitor = Chat visitor
identity-messenger = Messenger
identity-marketplace-buyer = Marketplace buyer
entry-customer = customer
entry-agent = reply
entry-note = internal note
entry-system = system

## Ticket
ticket-channel = Channel
ticket-assignee = Assignee
ticket-created = Created
ticket-merged = This ticket was merged into another one. Open it.
ticket-closed = The ticket is closed and takes no changes.
ticket-merged-into = The ticket was merged into ticket #{ $value }.
timeline-label = Conversation
attachments-label = Attachments
author-customer = Customer
author-system = Otklik
action-assign-to-me = Assign to me
action-solve = Solve
reply-kind = Kind
reply-public = Public reply
reply-note = Internal note
reply-body = Message
reply-via = (a public reply goes out by { $value })
reply-status = Then set status
reply-status-keep = Keep the status
reply-send = Send
fields-title = Ticket
field-subject = Subject
field-status = Status
field-priority = Priority
field-assignee = Assignee
field-team = Team
field-tags = Tags
field-tags-hint = Separate tags with commas.
fields-save = Save
done-reply = Reply sent.
done-note = Note added.
done-saved = Changes saved.
done-assigned = The ticket is assigned to you.
done-solved = The ticket is solved.
size-bytes = { $count ->
    [one] { $count } byte
   *[other] { $count } bytes
}
size-kb = { $count } KB
size-mb = { $count } MB

## Customer
customer-merged = This customer was merged into another one. Open the survivor.
customer-since = Customer since
customer-language = Language
customer-identities = Contacts
customer-tickets = Tickets
customer-other-tickets = Other tickets
customer-no-other-tickets = No other tickets.

## Navigation
nav-label = Sections
cancel = Cancel
yes = Yes
no = No
shortcut-select = Tick or untick the selected ticket (shift-click ticks a range)
action-merge = Merge into another ticket…

## Admin
admin-title = Admin
admin-agents = Agents
admin-teams = Teams
admin-tags = Tags
admin-tokens = API tokens
admin-mailboxes = Mailboxes
admin-mail = Mail problems
admin-actions = Actions
admin-state = State
admin-active = Active
admin-inactive = Deactivated
admin-you = you
admin-edit = Change…
admin-create = Create
admin-rename = Rename
admin-delete = Delete
admin-delete-named = Delete { $value }
admin-deactivate = Deactivate
admin-reactivate = Reactivate
admin-done-saved = Saved.
admin-done-created = Created.
admin-done-deleted = Deleted.
admin-done-revoked = The token is revoked and stops working at once.
admin-done-retried = The reply is queued to be sent again.
admin-agent-invited = { $value } can now sign in.
admin-agent-not-saved = The agent was not changed; see the marked field.
admin-cannot-deactivate-self = You cannot deactivate yourself or change your own role.
admin-invite = Invite an agent
admin-invite-password = Password (optional)
admin-invite-password-hint = Leave empty to generate one; it is shown once, here, for you to pass on.
admin-invite-submit = Invite
admin-password-once = The password of { $value } (shown only now; copy it and pass it on safely):
field-role = Role
field-teams = Teams
field-agent-name = Name
role-agent = Agent
role-supervisor = Supervisor
role-admin = Admin
form-error-name-taken = This name is already used.
form-error-files = The files were not accepted; attach them again within the limits.
admin-no-teams = No teams yet.
admin-team-name = Team name
admin-new-team = New team
admin-team-delete-hint = Deleting a team leaves its tickets without a team and its agents without the membership.
admin-no-tags = No tags yet.
admin-tag-name = Tag
admin-new-tag = New tag
admin-tag-delete-hint = Deleting a tag removes it from every ticket.
admin-tokens-intro = Your own tokens for the API. A token never allows more than your role.
admin-no-tokens = You have no tokens.
admin-new-token = New token
admin-token-name = Name
admin-token-prefix = Begins with
admin-token-scopes = Allows
admin-token-created-at = Created
admin-token-expires = Expires
admin-token-never = never
admin-token-revoked = revoked
admin-token-revoke = Revoke
admin-token-days = Expires after (days)
admin-token-days-hint = Leave empty for a token that does not expire.
admin-token-days-invalid = Enter a whole number of days from 1 to 3650.
admin-token-scopes-required = Choose at least one permission.
admin-token-created = Token created.
admin-token-once = The token { $value } (shown only now; store it in your integration's secrets):
scope-tickets-read = Read tickets
scope-tickets-write = Change tickets
scope-customers-read = Read customers
scope-customers-write = Change customers
scope-admin = Everything (admin)
admin-no-mailboxes = No mailboxes yet.
admin-new-mailbox = Add a mailbox
admin-mailbox-name = Short name
admin-mailbox-address = Support address
admin-mailbox-imap = IMAP URL (incoming mail)
admin-mailbox-smtp = SMTP URL (outgoing replies)
admin-mailbox-ack = Acknowledge new requests automatically
admin-mailbox-not-set = not set
admin-mailbox-check = Test connection
admin-mailbox-url-invalid = Enter a URL such as imaps://user:password@host:993/INBOX or smtps://user:password@host:465.
admin-mailbox-name-invalid = Use 1–64 letters, digits, "-", "_" or ".".
admin-mailbox-address-taken = Another mailbox already uses this address.
admin-check-ok = connected and signed in
admin-check-none = not configured
admin-check-unavailable = This server process does not talk to mail servers, so the connection cannot be tested here.
admin-quarantine = Quarantine
admin-quarantine-intro = Mail that could not be read is kept here with its raw bytes, never dropped.
admin-quarantine-empty = Nothing is in quarantine.
admin-failed-replies = Replies that could not be delivered
admin-failed-empty = No failed replies.
admin-reprocess = Process again
admin-open-ticket = Open the ticket
admin-reprocessed-ticket = Processed: it is in ticket #{ $value }.
admin-reprocessed-duplicate = It had been processed already; nothing changed.
admin-reprocessed-quarantined = Still unreadable: { $value }
admin-reprocessed-ignored = Recorded without a ticket: { $value }
admin-reprocess-not-quarantined = This e-mail is no longer in quarantine.
emails-count = { $count ->
    [one] { $count } e-mail
   *[other] { $count } e-mails
}

## E-mail in the timeline
email-raw = Original e-mail
email-reason = Reason
email-retry = Send again
email-no-subject = (no subject)
email-frame-title = The e-mail as the customer formatted it
email-plain-text = Plain text
email-show-quoted = Show quoted text
delivery-queued = queued to send
delivery-sent = sent
delivery-failed = not delivered
done-retried = The reply is queued to be sent again.
reply-files = Files
upload-hint-files = { $count ->
    [one] Up to { $count } file,
   *[other] Up to { $count } files,
}
upload-hint-size = { $count ->
    [one] { $count } MB each, 25 MB together.
   *[other] { $count } MB each, 25 MB together.
}
event-split = Split a message into a new ticket.
event-split-from = Split from another ticket.
event-open-new = Open the new ticket
event-open-original = Open the original ticket
event-merged-in = Ticket #{ $value } was merged into this one.
event-merged-away = Merged into another ticket.

## Presence
presence-viewing = { $value } is viewing this ticket
presence-replying = { $value } is replying to this ticket

## Merge and split
merge-title = Merge ticket
merge-intro = Find the ticket this one duplicates. Its messages will move there, and this ticket will be closed.
merge-search = Ticket number or words
merge-preview = What will happen
merge-into = Into ticket #{ $value }
merge-moves-messages = { $count ->
    [one] { $count } message moves
   *[other] { $count } messages move
}
merge-moves-files = { $count ->
    [one] { $count } file
   *[other] { $count } files
}
merge-moves-identities = { $count ->
    [one] { $count } contact
   *[other] { $count } contacts
}
merge-moves-tickets = { $count ->
    [one] { $count } ticket
   *[other] { $count } tickets
}
merge-closes = Ticket #{ $value } is closed and points to the other one.
merge-other-customer = The other ticket belongs to a different customer.
merge-confirm = Merge into #{ $value }
merge-refused = These tickets cannot be merged (one of them is already merged, or it is the same ticket).
merge-target-missing = The chosen ticket no longer exists or is not visible to you.
done-merged = The tickets are merged.
split-action = Split into a new ticket
split-title = Split into a new ticket
split-intro = This message of ticket #{ $value } is copied into a new ticket of the same customer; it also stays where it is.
split-subject = Subject of the new ticket
split-confirm = Create the ticket
split-refused = Only a customer's message can be split into a new ticket.
done-split = A new ticket was made from the message.
messages-count = { $count ->
    [one] { $count } message
   *[other] { $count } messages
}

## Inbox: filters and bulk actions
filter-title = Filter
filter-any = Any
filter-me = Me
filter-channel = Channel
filter-tag = Tag
filter-updated-from = Updated from (UTC)
filter-updated-to = Updated until (UTC)
filter-error-dates = The end comes before the start.
filter-apply = Show
view-save-label = Save as my view, named
view-save = Save view
view-created = The view is saved.
view-not-saveable = Filters by tag or channel cannot be saved as a view.
view-name-invalid = Give the view a name of 1 to 100 characters.
view-too-many = You have too many views; delete one first.
bulk-label = With the ticked tickets
bulk-select-all = Tick every ticket on the page
bulk-select-ticket = Tick ticket #{ $value }
bulk-assign = Assign
bulk-apply = Set
bulk-tag = Tag
bulk-add = Add
bulk-merge = Merge…
bulk-done = { $count ->
    [one] { $count } ticket changed.
   *[other] { $count } tickets changed.
}
bulk-failed = { $count ->
    [one] { $count } ticket could not be changed (closed, merged, or the change is not allowed).
   *[other] { $count } tickets could not be changed (closed, merged, or the change is not allowed).
}
bulk-merge-title = Merge tickets
bulk-merge-intro = Choose the ticket that stays; the others are merged into it and closed.
bulk-merge-survivor = The ticket that stays
bulk-merge-hint = The oldest ticket is suggested. Merging cannot be undone.
bulk-merge-confirm = Merge
bulk-merge-needs-two = Tick at least two tickets to merge.

## Customers
customers-title = Customers
customers-search = Name, e-mail or phone
customers-nothing = No customer matches.
customers-none = No customers yet.
customer-merges = Merges
customer-merged-into = Merged into
customer-took-in = Took in
customer-merge-undone = undone
customer-unmerge = Undo the merge
customer-merge-action = Merge into another customer…
customer-merge-title = Merge customer
customer-merge-intro = Find the customer this one duplicates. Contacts and tickets move there; the merge can be undone.
customer-merge-into = Merge into { $value }
customer-merge-undo-hint = If this was a mistake, "Undo the merge" on the customer's page gives back exactly what moved.
customer-merge-confirm = Merge
customer-merge-refused = These customers cannot be merged (one of them is already merged, or it is the same customer).
customer-unmerge-refused = This merge cannot be undone now: it was undone already, or a later merge must be undone first.
customer-already-merged = This customer was already merged into another one.
customer-done-merged = The customers are merged.
customer-done-unmerged = The merge is undone.
bulk-ticked = Ticked:

## Password reset, settings, sorting, language

login-reset-done = Your new password is set. Sign in with it.
forgot-title = Reset your password
forgot-intro = Enter the e-mail you sign in with. If an account has it, we will send a link to choose a new password.
forgot-submit = Send the link
forgot-sent = If an account exists for that e-mail, we have sent it a link to reset the password. The link works once, for an hour.
forgot-not-configured = Password reset by e-mail is not configured: no mailbox can send it. Ask an administrator to set a new password, or run "otklik admin reset-password --email … --password-stdin" on the server.
forgot-back = Back to sign in
reset-title = Choose a new password
reset-intro = Your other sessions will end when the new password is set.
reset-submit = Set the password
reset-invalid = This link is invalid, expired or already used.
reset-ask-again = Ask for a new link
admin-settings = Settings
admin-settings-name = Helpdesk name
admin-settings-name-hint = Shown in the header and as the sender name of e-mails.
admin-settings-language = Default language
admin-settings-language-browser = From the browser
admin-settings-url = Public address
admin-settings-url-hint = Where links in e-mails point, e.g. https://help.example.com. Empty: the address the server listens on.
admin-settings-url-invalid = Enter an absolute address starting with http:// or https://.
admin-settings-mailbox = Mailbox for system mail
admin-settings-mailbox-first = The first mailbox
admin-settings-mailbox-hint = Sends password-reset links.
admin-settings-mailbox-unknown = That mailbox no longer exists.
admin-settings-save = Save settings
sort-label = Sort
sort-apply = Sort
sort-updated-desc = Last update, newest first
sort-updated-asc = Last update, oldest first
sort-created-desc = Created, newest first
sort-created-asc = Created, oldest first
sort-priority-desc = Priority, most urgent first
sort-priority-asc = Priority, least urgent first
sort-number-desc = Number, highest first
sort-number-asc = Number, lowest first

## Live chat
chats-title = Chats
chat-availability = Chat availability
availability-online = Online
availability-away = Away
availability-offline = Offline
chat-max = Max chats
chat-load-hint = Your active chats of your maximum
chats-count = { $count ->
    [one] { $count } chat
   *[other] { $count } chats
}
chat-max-invalid = Choose a maximum from 1 to 20 chats.
chat-queue-title = Waiting
chats-waiting = { $count ->
    [one] { $count } chat
   *[other] { $count } chats
}
chat-queue-empty = Nobody is waiting.
chat-col-position = Place
chat-col-waiting = Waiting
chat-col-customer = Customer
chat-col-message = First message
chat-col-site = Site
chat-col-language = Language
chat-col-actions = Actions
chat-accept = Accept
chat-accept-number = Accept chat #{ $value }
chat-mine-title = My chats
chat-mine-empty = You have no active chats.
chat-unread = { $count ->
    [one] { $count } new
   *[other] { $count } new
}
chat-visitor = Site visitor
chat-bar-title = Chat
chat-state-queued = Waiting
chat-state-active = Active
chat-state-ended = Ended
chat-state-offline = Offline message
chat-queued = in the queue
chat-queue-position = #{ $value } in the queue
chat-with-me = with you
chat-with-agent = with { $value }
chat-ended-detail = a new reply goes out by e-mail
chat-offline-detail = nobody was online: answered by e-mail
chat-waiting-for = waiting
chat-transfer-to = Transfer to
chat-transfer-choose = — choose —
chat-transfer-agents = Agents
chat-transfer-teams = Teams (back to their queue)
chat-transfer = Transfer
chat-end = End chat
chat-transfer-pick = Choose an agent or a team.
chat-transfer-capacity = This agent is not online for chats or has no free chat slot.
chat-transfer-same = The chat is already with this agent.
chat-capacity = You are not online for chats, or you already have your maximum of chats. Go online or raise the maximum at the top of the page.
chat-not-waiting = Someone else took this chat a moment ago.
chat-over = The chat has already ended.
chat-reply-capacity = This chat is waiting in the queue, and your reply would take it, but you are not online for chats or have no free chat slot. Go online (or raise your maximum) at the top of the page, or write an internal note. Your text is kept.
chat-visitor-typing = The customer is typing…
chat-agent-typing = { $value } is typing…
reply-via-chat = (a public reply goes to the chat)
reply-via-chat-over = (the chat is over: a public reply goes out by e-mail)
done-chat-accepted = You took the chat.
done-chat-transferred = The chat is handed over.
done-chat-ended = The chat is ended.

## Admin: chat sites
admin-chat-sites = Chat sites
admin-done-rotated = A new secret is made; the old one no longer verifies anyone.
chat-sites-intro = A chat site is a shop's website where the chat widget appears. Create one, then paste its tag into the shop's pages.
chat-site-new = New chat site
chat-sites-none = No chat sites yet.
chat-sites-back = ← All chat sites
chat-site-inactive = off
chat-site-edit = Chat site
chat-site-has-errors = Some fields need attention: see the marked fields below.
chat-site-embed = Embed the widget
chat-site-embed-hint = Paste this tag into every page of the shop, just before </body>.
copy = Copy
copied = Copied
chat-site-identity = Identity verification
chat-site-identity-hint = A signed-in customer of the shop can see their own history on any browser. The shop's server signs the customer's id with this secret; without a valid signature nobody can pose as them.
chat-site-secret = Identity secret
chat-site-rotate = Rotate the secret
chat-site-rotate-confirm = Make a new secret? The old one stops working at once: update the shop's server right away.
chat-site-hmac-title = Signing a customer on the shop's server
chat-site-hmac-hint = The signature is hex(HMAC-SHA256(secret, customer id)). Compute it on the server; never put the secret in a page.
chat-site-hmac-page = Then, in the page, before the widget's tag:
chat-site-settings = Settings
chat-site-name = Name
chat-site-origins = Allowed sites
chat-site-origins-hint = One per line, like https://shop.example. The widget works only on these.
chat-site-greeting = Greeting
chat-site-colour = Accent colour
chat-site-hours = Working hours
chat-site-hours-hint = Leave every day empty to be open around the clock. Once any day has hours, a day without hours is closed.
chat-site-time-zone = Time zone
chat-site-day = Day
chat-site-from = From
chat-site-to = To
chat-site-closed = Closed
weekday-mon = Monday
weekday-tue = Tuesday
weekday-wed = Wednesday
weekday-thu = Thursday
weekday-fri = Friday
weekday-sat = Saturday
weekday-sun = Sunday
chat-site-questions = Questions before the chat
chat-site-ask-name = Name
chat-site-ask-email = E-mail
chat-site-ask-order = Order number
chat-field-hidden = Not asked
chat-field-optional = Optional
chat-field-required = Required
chat-site-require-identity = Only for signed-in customers of the shop
chat-site-require-identity-hint = Anonymous visitors cannot chat; the shop must sign its customers (below).
chat-site-any-team = Any team
chat-site-team-hint = Chats from this site wait for this team's agents.
chat-site-mailbox = Mailbox for e-mail answers
chat-site-any-mailbox = Any mailbox
chat-site-mailbox-hint = Offline messages and ended chats are answered from it, and transcripts are sent from it.
chat-site-active = Active (the widget appears on the site)
chat-site-save = Save
chat-site-name-invalid = Give the site a name of 1–100 characters.
chat-site-colour-invalid = Choose a colour like #1f6feb.
chat-site-time-zone-invalid = Enter a time zone like Europe/Moscow.
chat-site-day-invalid = Give both times, the opening before the closing (00:00 closes at midnight).
chat-site-hours-none-open = Open at least one day, or leave every day empty to be open around the clock.
chat-site-origin-invalid = "{ $value }" is not a site address like https://shop.example (no path).
chat-site-origins-required = List at least one site where the widget runs.
chat-site-origins-too-many = At most 20 sites.
