package store

// pgMigrations is the PostgreSQL schema history, step for step the same
// versions as the SQLite one (migrations in store/sqlite.go). Integers are
// BIGINT (SQLite's INTEGER is 64-bit) and booleans stay 0/1 integers so that
// both backends run the same statements. Text columns compare bytewise
// (COLLATE "C"), like SQLite, so that ordering and cursors do not depend on
// the server's locale. Only append; never edit a step that has shipped.
var pgMigrations = []string{
	pgCoreSchema,          // 1
	pgAccessSchema,        // 2
	pgMWISchema,           // 3
	pgAPISchema,           // 4
	pgMailSchema,          // 5
	pgGDPRSchema,          // 6
	outboxSchemaPostgres,  // 7: the change log (store/outbox.go)
	pgClientsSchema,       // 8: API clients and their tokens (store/sqlite_clients.go)
	clusterSchemaPostgres, // 9: MWI subscription owners, instance heartbeats, leases (store/cluster.go)
	pgSIPAuthSchema,       // 10: SIP digest credentials, registrations, nonce key (store/sqlite_sipauth.go)
	scaleIndexesPostgres,  // 11: a covering index for a mailbox's counts (store/scale_indexes.go)
}

const pgClientsSchema = `
CREATE TABLE api_clients (
	id          TEXT COLLATE "C" PRIMARY KEY,
	tenant      TEXT COLLATE "C" NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
	name        TEXT NOT NULL DEFAULT '',
	scopes      TEXT NOT NULL DEFAULT '[]',
	secret_hash TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	revoked_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX api_clients_by_tenant ON api_clients(tenant);

CREATE TABLE api_client_tokens (
	hash       TEXT COLLATE "C" PRIMARY KEY,
	client_id  TEXT COLLATE "C" NOT NULL REFERENCES api_clients(id) ON DELETE CASCADE,
	scopes     TEXT NOT NULL DEFAULT '[]',
	expires_at BIGINT NOT NULL
);
CREATE INDEX api_client_tokens_by_client ON api_client_tokens(client_id);
CREATE INDEX api_client_tokens_by_expiry ON api_client_tokens(expires_at);
`

const pgCoreSchema = `
CREATE TABLE tenants (
	name       TEXT COLLATE "C" PRIMARY KEY,
	domains    TEXT COLLATE "C" NOT NULL DEFAULT '[]', -- JSON array of hosts
	created_at BIGINT NOT NULL            -- unix nanoseconds, UTC
);

CREATE TABLE mailboxes (
	tenant             TEXT COLLATE "C" NOT NULL REFERENCES tenants(name),
	number             TEXT COLLATE "C" NOT NULL,
	name               TEXT COLLATE "C" NOT NULL DEFAULT '',
	type               TEXT COLLATE "C" NOT NULL DEFAULT 'personal',
	members            TEXT COLLATE "C" NOT NULL DEFAULT '[]', -- JSON array of numbers
	pin_hash           TEXT COLLATE "C" NOT NULL DEFAULT '',
	email              TEXT COLLATE "C" NOT NULL DEFAULT '',
	attach_audio       BIGINT NOT NULL DEFAULT 0,
	delete_after_email BIGINT NOT NULL DEFAULT 0,
	max_messages       BIGINT NOT NULL DEFAULT 0,
	max_seconds        BIGINT NOT NULL DEFAULT 0,
	review             BIGINT NOT NULL DEFAULT 0,
	ask_password       BIGINT NOT NULL DEFAULT 1,
	operator           TEXT COLLATE "C" NOT NULL DEFAULT '',
	timezone           TEXT COLLATE "C" NOT NULL DEFAULT '',
	language           TEXT COLLATE "C" NOT NULL DEFAULT '',
	mwi_targets        TEXT COLLATE "C" NOT NULL DEFAULT '[]', -- JSON array of SIP URIs
	retention_days     BIGINT NOT NULL DEFAULT 0,
	created_at         BIGINT NOT NULL,
	updated_at         BIGINT NOT NULL,
	PRIMARY KEY (tenant, number)
);

CREATE TABLE messages (
	id          TEXT COLLATE "C" PRIMARY KEY, -- UUIDv7, sorts by time
	tenant      TEXT COLLATE "C" NOT NULL,
	mailbox     TEXT COLLATE "C" NOT NULL,
	folder      TEXT COLLATE "C" NOT NULL,
	caller_id   TEXT COLLATE "C" NOT NULL DEFAULT '',
	caller_e164 TEXT COLLATE "C" NOT NULL DEFAULT '',
	caller_name TEXT COLLATE "C" NOT NULL DEFAULT '',
	received_at BIGINT NOT NULL,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	urgent      BIGINT NOT NULL DEFAULT 0,
	read        BIGINT NOT NULL DEFAULT 0,
	size        BIGINT NOT NULL DEFAULT 0,
	media_key   TEXT COLLATE "C" NOT NULL,
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number)
);

CREATE INDEX messages_by_folder ON messages(tenant, mailbox, folder);
CREATE INDEX messages_by_caller ON messages(tenant, caller_e164);
`

const pgAccessSchema = `
CREATE TABLE login_failures (
	tenant  TEXT COLLATE "C" NOT NULL,
	mailbox TEXT COLLATE "C" NOT NULL,
	at      BIGINT NOT NULL, -- unix nanoseconds, UTC
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
);
CREATE INDEX login_failures_by_mailbox ON login_failures(tenant, mailbox, at);

CREATE TABLE login_locks (
	tenant       TEXT COLLATE "C" NOT NULL,
	mailbox      TEXT COLLATE "C" NOT NULL,
	locked_until BIGINT NOT NULL, -- unix nanoseconds, UTC
	PRIMARY KEY (tenant, mailbox),
	FOREIGN KEY (tenant, mailbox) REFERENCES mailboxes(tenant, number) ON DELETE CASCADE
);
`

const pgMWISchema = `
CREATE TABLE mwi_subscriptions (
	id           TEXT COLLATE "C" PRIMARY KEY,
	tenant       TEXT COLLATE "C" NOT NULL,
	mailbox      TEXT COLLATE "C" NOT NULL,
	call_id      TEXT COLLATE "C" NOT NULL,
	local_tag    TEXT COLLATE "C" NOT NULL,
	remote_tag   TEXT COLLATE "C" NOT NULL,
	event_id     TEXT COLLATE "C" NOT NULL DEFAULT '',
	local_uri    TEXT COLLATE "C" NOT NULL,
	remote_uri   TEXT COLLATE "C" NOT NULL,
	contact      TEXT COLLATE "C" NOT NULL,
	route_set    TEXT COLLATE "C" NOT NULL DEFAULT '[]', -- JSON array of Record-Route values
	transport    TEXT COLLATE "C" NOT NULL,
	source       TEXT COLLATE "C" NOT NULL,
	account_host TEXT COLLATE "C" NOT NULL DEFAULT '',
	local_cseq   BIGINT NOT NULL,
	remote_cseq  BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL, -- unix nanoseconds, UTC
	created_at   BIGINT NOT NULL
);
CREATE INDEX mwi_subscriptions_by_mailbox ON mwi_subscriptions(tenant, mailbox);

CREATE TABLE mwi_target_stops (
	tenant     TEXT COLLATE "C" NOT NULL,
	mailbox    TEXT COLLATE "C" NOT NULL,
	target     TEXT COLLATE "C" NOT NULL,
	reason     TEXT COLLATE "C" NOT NULL,
	stopped_at BIGINT NOT NULL,
	PRIMARY KEY (tenant, mailbox, target)
);
`

const pgAPISchema = `
CREATE TABLE api_tokens (
	hash       TEXT COLLATE "C" PRIMARY KEY,          -- SHA-256 hex of the secret
	id         TEXT COLLATE "C" NOT NULL UNIQUE,
	kind       TEXT COLLATE "C" NOT NULL,             -- tenant | user
	tenant     TEXT COLLATE "C" NOT NULL, -- no FK: the API removes them with the tenant
	mailbox    TEXT COLLATE "C" NOT NULL DEFAULT '',
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL DEFAULT 0 -- 0 = never
);
CREATE INDEX api_tokens_by_tenant ON api_tokens(tenant, mailbox);

CREATE TABLE webhooks (
	id         TEXT COLLATE "C" PRIMARY KEY,
	tenant     TEXT COLLATE "C" NOT NULL, -- no FK: the API removes them with the tenant
	url        TEXT COLLATE "C" NOT NULL,
	events     TEXT COLLATE "C" NOT NULL DEFAULT '[]',
	secret     TEXT COLLATE "C" NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE webhook_jobs (
	id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	webhook_id TEXT COLLATE "C" NOT NULL,
	event_id   TEXT COLLATE "C" NOT NULL,
	event_type TEXT COLLATE "C" NOT NULL,
	body       BYTEA NOT NULL,
	attempts   BIGINT NOT NULL DEFAULT 0,
	next_at    BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX webhook_jobs_due ON webhook_jobs(next_at);

CREATE TABLE webhook_deliveries (
	id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	webhook_id  TEXT COLLATE "C" NOT NULL,
	event_id    TEXT COLLATE "C" NOT NULL,
	event_type  TEXT COLLATE "C" NOT NULL,
	attempt     BIGINT NOT NULL,
	status      BIGINT NOT NULL,
	error       TEXT COLLATE "C" NOT NULL DEFAULT '',
	final       TEXT COLLATE "C" NOT NULL,
	duration_ms BIGINT NOT NULL,
	at          BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook_id, id);
`

const pgMailSchema = `
CREATE TABLE mail_outbox (
	id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	message_id       TEXT COLLATE "C" NOT NULL UNIQUE,
	tenant           TEXT COLLATE "C" NOT NULL,
	mailbox          TEXT COLLATE "C" NOT NULL,
	recipients       TEXT COLLATE "C" NOT NULL DEFAULT '[]', -- JSON array of addresses
	attach_audio     BIGINT NOT NULL DEFAULT 0,
	delete_after     BIGINT NOT NULL DEFAULT 0,
	status           TEXT COLLATE "C" NOT NULL DEFAULT 'pending', -- pending | sent
	attempts         BIGINT NOT NULL DEFAULT 0,
	next_attempt_at  BIGINT NOT NULL, -- unix nanoseconds, UTC
	last_error       TEXT COLLATE "C" NOT NULL DEFAULT '',
	created_at       BIGINT NOT NULL,
	sent_at          BIGINT NOT NULL DEFAULT 0
);

CREATE INDEX mail_outbox_due ON mail_outbox(status, next_attempt_at);
`

const pgGDPRSchema = `
CREATE INDEX messages_by_e164 ON messages(caller_e164);
CREATE INDEX messages_by_caller_id ON messages(caller_id);
CREATE INDEX messages_by_received ON messages(received_at);

CREATE TABLE gdpr_hidden (
	id          TEXT COLLATE "C" PRIMARY KEY,
	tenant      TEXT COLLATE "C" NOT NULL,
	mailbox     TEXT COLLATE "C" NOT NULL,
	folder      TEXT COLLATE "C" NOT NULL,
	caller_id   TEXT COLLATE "C" NOT NULL DEFAULT '',
	caller_e164 TEXT COLLATE "C" NOT NULL DEFAULT '',
	caller_name TEXT COLLATE "C" NOT NULL DEFAULT '',
	received_at BIGINT NOT NULL,
	duration_ms BIGINT NOT NULL DEFAULT 0,
	urgent      BIGINT NOT NULL DEFAULT 0,
	read        BIGINT NOT NULL DEFAULT 0,
	size        BIGINT NOT NULL DEFAULT 0,
	media_key   TEXT COLLATE "C" NOT NULL,
	forget_id   TEXT COLLATE "C" NOT NULL,
	hidden_at   BIGINT NOT NULL -- unix nanoseconds, UTC
);
CREATE INDEX gdpr_hidden_by_e164 ON gdpr_hidden(caller_e164);
CREATE INDEX gdpr_hidden_by_caller_id ON gdpr_hidden(caller_id);
CREATE INDEX gdpr_hidden_by_time ON gdpr_hidden(hidden_at);
CREATE INDEX gdpr_hidden_by_forget ON gdpr_hidden(forget_id, tenant);

CREATE TABLE gdpr_forgets (
	id           TEXT COLLATE "C" NOT NULL,
	tenant       TEXT COLLATE "C" NOT NULL,
	phone_hash   TEXT COLLATE "C" NOT NULL,  -- keyed hash; the number is never kept here
	forgotten_at BIGINT NOT NULL,
	messages     BIGINT NOT NULL,
	state        TEXT COLLATE "C" NOT NULL,  -- hidden | undone | purged
	done_at      BIGINT NOT NULL DEFAULT 0,
	PRIMARY KEY (id, tenant)
);
CREATE INDEX gdpr_forgets_by_hash ON gdpr_forgets(phone_hash);

CREATE TABLE gdpr_audit (
	id           BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	at           BIGINT NOT NULL,
	actor        TEXT COLLATE "C" NOT NULL,
	operation    TEXT COLLATE "C" NOT NULL,
	request_case TEXT COLLATE "C" NOT NULL DEFAULT '',
	scope        TEXT COLLATE "C" NOT NULL DEFAULT '',
	contact_kind TEXT COLLATE "C" NOT NULL DEFAULT '',
	contact_hash TEXT COLLATE "C" NOT NULL DEFAULT '',
	response     TEXT COLLATE "C" NOT NULL DEFAULT '',
	messages     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE tenant_retention (
	tenant TEXT COLLATE "C" PRIMARY KEY REFERENCES tenants(name) ON DELETE CASCADE,
	days   BIGINT NOT NULL
);
`
