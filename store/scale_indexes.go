package store

// Schema version 11 (both backends): the index behind a mailbox's counts
// (CountMessages, read for every MWI NOTIFY and every IVR login) holds the
// columns the counts need, so counting a mailbox reads a few index pages
// instead of one table page per message. With 100,000 mailboxes and
// 10,000,000 messages this took an instance's start-up re-NOTIFY of
// 100,000 subscriptions from minutes to seconds (BENCHMARKS.md, "Data at
// scale"). It replaces messages_by_folder, whose columns are its prefix,
// so listing a mailbox or a folder uses it as before.
//
// Building it over an existing database takes about a minute per ten
// million messages, once, at the first start of this version.

const scaleIndexesSQLite = `
CREATE INDEX messages_by_mailbox_state ON messages(tenant, mailbox, folder, read, urgent);
DROP INDEX messages_by_folder;
`

const scaleIndexesPostgres = scaleIndexesSQLite
