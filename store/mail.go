package store

// MailStore keeps the email outbox (SPEC §11): a mail is queued with its
// message and retried until the SMTP server accepts it.
type MailStore interface{}
