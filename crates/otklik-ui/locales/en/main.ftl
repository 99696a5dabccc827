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
login-forgot = Forgot your password? Ask an administrator to reset it with the otklik command on the server.
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
