// Package config loads the server configuration (docs/configuration.md): a
// YAML file whose every key may be overridden by an environment variable and
// a flag. Precedence: flag > env > file > default. Unknown keys and invalid
// values stop start-up with an error that names the key and where the value
// came from (the flag or variable the user typed).
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vmserver/voicemail/diskspace"
)

// Config is the server configuration.
type Config struct {
	SIPListen           []Listen
	SIPPublicAddr       string
	SIPTLSCert          string
	SIPTLSKey           string
	SIPAnswerDelay      time.Duration
	SIPMaxCalls         int
	SIPOverloadLateness time.Duration
	SIPTCPIdleTimeout   time.Duration
	SIPTCPMaxPerSource  int
	// Flood control (docs/sip.md): per-source rate limits by method and
	// the lock-out of sources failing authentication.
	SIPRateInvite, SIPRateSubscribe, SIPRateRegister, SIPRateOptions RateLimit
	SIPRateDropAfter                                                 int
	SIPRateMaxSources                                                int
	SIPLockoutFailures                                               int
	SIPLockoutWindow, SIPLockoutDuration                             time.Duration
	// MWI subscription caps (docs/mwi.md).
	MWIMaxSubsPerSource, MWIMaxSubsPerMailbox int
	RTPPortMin                                int
	RTPPortMax                                int
	HTTPListen                                string
	DebugPprofListen                          string // Go's profiler; loopback only, empty = off
	DataDir                                   string
	DB                                        string
	DBMaxConns                                int           // PostgreSQL pool size (0 = store default)
	DBMaxIdleConns                            int           // PostgreSQL idle connections kept (0 = store default)
	DBConnMaxLifetime                         time.Duration // PostgreSQL: recycle connections after this (0 = never)
	Media                                     string
	AccessNumbers                             []string

	// Object store credentials (docs/object-storage.md); empty ones fall
	// back to the standard AWS_* and AZURE_STORAGE_* variables.
	S3AccessKey     string
	S3SecretKey     string
	AzureAccountKey string
	AzureSASToken   string

	RecordingMaxSeconds     int
	RecordingMinSeconds     int
	RecordingSilenceSeconds int
	RecordingFormat         string

	LoginMaxAttempts int
	LoginLockout     time.Duration

	AdminToken string
	PromptsDir string

	SMTPHost     string
	SMTPPort     int
	SMTPTLS      string
	SMTPUsername string
	SMTPPassword string
	SMTPFrom     string
	// Email templates (Go text/template): inline text, or "@path" to read a file.
	SMTPSubjectTemplate string
	SMTPBodyTemplate    string
	SMTPRetry           time.Duration // first retry delay of a failed mail; doubles up to SMTPRetryMax
	SMTPRetryMax        time.Duration
	HTTPPublicURL       string // base URL of the API in links (default http://<http.listen>)

	GDPRForgetGrace time.Duration
	RetentionDays   int
	// RetentionSweepRate paces the retention sweep (messages per second; 0 = unpaced).
	RetentionSweepRate int
	// GDPR drop folder (docs/gdpr.md; off when GDPRSubmitDir is empty), sweeper
	// cadence (purge after the grace, retention) and export archive lifetime.
	GDPRSubmitDir     string
	GDPRResultDir     string
	GDPRSweepInterval time.Duration
	GDPRExportTTL     time.Duration

	LogLevel  string
	LogFormat string

	// ShutdownDrainTimeout bounds how long SIGTERM waits for calls in
	// progress (docs/operations.md).
	ShutdownDrainTimeout time.Duration
	// Demo creates the demo tenant's mailboxes at start-up when absent.
	Demo bool
	// Robustness limits (docs/api-limits.md).
	GreetingMaxSeconds int                 // longest uploaded greeting (413 beyond)
	MediaMinFree       diskspace.Threshold // free space below which deposits and API writes are refused
	// The orphan media sweep (docs/storage.md): blobs no row owns, older than the grace.
	MediaOrphanGrace, MediaOrphanSweepInterval time.Duration
	// RTP robustness (docs/sip.md): end a call without RTP nor RTCP for
	// MediaRTPTimeout (0 = off); packets a new RTP source must send in order.
	MediaRTPTimeout       time.Duration
	MediaStrictRTPPackets int
	// SRTP (docs/srtp.md): off, optional or required; SDES keys accepted
	// over UDP/TCP only with MediaSRTPAllowInsecureKeys.
	MediaSRTP                  string
	MediaSRTPAllowInsecureKeys bool
	// MediaRTPMux puts every call on one RTP port (docs/performance.md).
	MediaRTPMux bool
	// RecordingTailMS is the trailing silence kept after the last voiced frame.
	RecordingTailMS    int
	WebhooksAllowHosts []string // host names, addresses or CIDRs webhooks may reach although not public

	// Trust and SIP digest authentication (docs/sip.md).
	SIPTrustedProxies     []string // CIDRs (or addresses) that may assert identity and redirection
	SIPDepositAuth        string   // none, untrusted or all
	SIPAuthRealm          string   // digest realm; "" = the tenant's first SIP domain
	SIPAuthSecret         string   // shared secret the nonce key derives from; "" = one kept in the database
	SIPRegisterMaxExpires time.Duration
	MWISubscribeAuth      bool // SUBSCRIBE from an untrusted source needs digest
	// Several instances on one database (docs/mwi.md): this one's name
	// ("" = host name + random suffix) and its heartbeat.
	ClusterInstanceID string
	ClusterHeartbeat  time.Duration
}

// Listen is one SIP transport and address, e.g. "udp:0.0.0.0:5060".
type Listen struct {
	Transport string // udp, tcp or tls
	Addr      string
}

func (l Listen) String() string { return l.Transport + ":" + l.Addr }

// option binds one configuration key to a field.
type option struct {
	key   string
	def   string
	usage string
	set   func(c *Config, v string) error
}

// boolean reports whether the key's flag may be given without a value (--demo).
func (o option) boolean() bool { return o.key == "demo" }

// Key is one configuration key as documented in docs/configuration.md.
type Key struct {
	Name, Default, Usage, Flag, Env string
}

// Keys lists every configuration key with its default, flag and variable.
func Keys() []Key {
	var out []Key
	for _, o := range options() {
		out = append(out, Key{Name: o.key, Default: o.def, Usage: o.usage, Flag: "--" + FlagName(o.key), Env: EnvName(o.key)})
	}
	return out
}

func options() []option {
	return []option{
		{"sip.listen", "udp:0.0.0.0:5060,tcp:0.0.0.0:5060", "SIP transports and addresses", func(c *Config, v string) (err error) {
			c.SIPListen, err = parseListen(v)
			return err
		}},
		{"sip.public_addr", "", "host put in Contact and SDP c= (default: first non-loopback address)", str(func(c *Config) *string { return &c.SIPPublicAddr })},
		{"sip.tls_cert", "", "TLS certificate file for tls: listeners", str(func(c *Config) *string { return &c.SIPTLSCert })},
		{"sip.tls_key", "", "TLS key file for tls: listeners", str(func(c *Config) *string { return &c.SIPTLSKey })},
		{"sip.answer_delay", "0s", "ring (180) this long before answering a deposit call", dur(func(c *Config) *time.Duration { return &c.SIPAnswerDelay })},
		{"sip.max_calls", "1000", "concurrent calls before new ones get 503", intv(func(c *Config) *int { return &c.SIPMaxCalls }, 1)},
		{"sip.overload_lateness", "100ms", "refuse new calls (503) while the media clock runs this late on average (0 = off)", dur(func(c *Config) *time.Duration { return &c.SIPOverloadLateness })},
		{"sip.tcp_idle_timeout", "2h", "close a SIP TCP/TLS connection idle this long (2 x the longest MWI subscription; 0 = never)", dur(func(c *Config) *time.Duration { return &c.SIPTCPIdleTimeout })},
		{"sip.tcp_max_per_source", "100", "SIP TCP/TLS connections one source IP may hold; more are closed at once (0 = no cap)", intv(func(c *Config) *int { return &c.SIPTCPMaxPerSource }, 0)},
		{"sip.trusted_proxies", "", "CIDR networks or addresses of proxies whose P-Asserted-Identity, Diversion, History-Info and RFC 4458 target/cause are believed (default: none)", func(c *Config, v string) error {
			c.SIPTrustedProxies = splitList(v)
			for _, p := range c.SIPTrustedProxies {
				if _, err := netip.ParsePrefix(p); err == nil {
					continue
				}
				if _, err := netip.ParseAddr(p); err != nil {
					return fmt.Errorf("want CIDR networks or addresses like 10.0.0.0/8, got %q", p)
				}
			}
			return nil
		}},
		{"sip.deposit_auth", "none", "digest authentication of deposit calls: none, untrusted (callers not sent by a trusted proxy) or all", func(c *Config, v string) error {
			switch v {
			case "none", "untrusted", "all":
				c.SIPDepositAuth = v
				return nil
			}
			return fmt.Errorf("want none, untrusted or all, got %q", v)
		}},
		{"sip.auth_realm", "", "SIP digest realm (default: the tenant's first SIP domain, else its name); changing it needs every sip_secret set again", str(func(c *Config) *string { return &c.SIPAuthRealm })},
		{"sip.auth_secret", "", "secret shared by the instances of a cluster that signs digest nonces (default: a random key kept in the database)", str(func(c *Config) *string { return &c.SIPAuthSecret })},
		{"sip.register_max_expires", "1h", "longest registration a phone's REGISTER is granted", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute {
				return fmt.Errorf("want a duration of at least 1m, got %q", v)
			}
			c.SIPRegisterMaxExpires = d
			return nil
		}},
		{"mwi.subscribe_auth", "true", "a SUBSCRIBE to message-summary from a source that is not a trusted proxy must digest-authenticate as the mailbox (or a member of the group)", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			c.MWISubscribeAuth = b
			return nil
		}},
		{"sip.rate_limit.invite", "20/s burst 100", "new INVITEs per source IP (then 503 + Retry-After; 0 = no limit)", rateLimit(func(c *Config) *RateLimit { return &c.SIPRateInvite })},
		{"sip.rate_limit.subscribe", "10/s burst 100", "new SUBSCRIBEs per source IP (then 503 + Retry-After; 0 = no limit)", rateLimit(func(c *Config) *RateLimit { return &c.SIPRateSubscribe })},
		{"sip.rate_limit.register", "5/s burst 20", "REGISTERs per source IP (then 503 + Retry-After; 0 = no limit)", rateLimit(func(c *Config) *RateLimit { return &c.SIPRateRegister })},
		{"sip.rate_limit.options", "20/s burst 100", "OPTIONS per source IP (then 503 + Retry-After; 0 = no limit)", rateLimit(func(c *Config) *RateLimit { return &c.SIPRateOptions })},
		{"sip.rate_limit.drop_after", "100", "requests over its rate a source may send (each answered 503) before the next are dropped without an answer (0 = never drop)", intv(func(c *Config) *int { return &c.SIPRateDropAfter }, 0)},
		{"sip.rate_limit.max_sources", "100000", "source IPs tracked by the rate limits and the lock-out (least recently seen forgotten first)", intv(func(c *Config) *int { return &c.SIPRateMaxSources }, 1)},
		{"sip.lockout.failures", "10", "failed authentications (PIN or digest) from one source IP within sip.lockout.window that lock it out (0 = off)", intv(func(c *Config) *int { return &c.SIPLockoutFailures }, 0)},
		{"sip.lockout.window", "5m", "window in which sip.lockout.failures are counted", dur(func(c *Config) *time.Duration { return &c.SIPLockoutWindow })},
		{"sip.lockout.duration", "15m", "how long a locked-out source gets 403 to INVITE, SUBSCRIBE and REGISTER", dur(func(c *Config) *time.Duration { return &c.SIPLockoutDuration })},
		{"mwi.max_subscriptions_per_source", "50", "live MWI subscriptions one source IP may hold (more: 403; 0 = no cap)", intv(func(c *Config) *int { return &c.MWIMaxSubsPerSource }, 0)},
		{"mwi.max_subscriptions_per_mailbox", "20", "live MWI subscriptions one mailbox may have (more: 403; 0 = no cap)", intv(func(c *Config) *int { return &c.MWIMaxSubsPerMailbox }, 0)},
		{"rtp.ports", "10000-20000", "UDP port range for media", func(c *Config, v string) error {
			lo, hi, ok := strings.Cut(v, "-")
			a, err1 := strconv.Atoi(strings.TrimSpace(lo))
			b, err2 := strconv.Atoi(strings.TrimSpace(hi))
			if !ok || err1 != nil || err2 != nil || a < 1024 || b > 65535 || b-a < 1 {
				return fmt.Errorf("want a range like 10000-20000 within 1024-65535, got %q", v)
			}
			c.RTPPortMin, c.RTPPortMax = a, b
			return nil
		}},
		{"http.listen", "127.0.0.1:8080", "REST API, /metrics, /healthz address", func(c *Config, v string) error {
			if _, _, err := net.SplitHostPort(v); err != nil {
				return fmt.Errorf("want host:port, got %q", v)
			}
			c.HTTPListen = v
			return nil
		}},
		{"debug.pprof_listen", "", "address of Go's profiler (/debug/pprof/), for performance work; empty = off. It shows memory and stack contents: loopback only (docs/performance.md)", func(c *Config, v string) error {
			if v == "" {
				c.DebugPprofListen = ""
				return nil
			}
			host, _, err := net.SplitHostPort(v)
			if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("want a loopback host:port such as 127.0.0.1:6061, got %q", v)
			}
			c.DebugPprofListen = v
			return nil
		}},
		{"data_dir", "./data", "the local state folder", str(func(c *Config) *string { return &c.DataDir })},
		{"db", "", "database: sqlite://<path> (default sqlite://<data_dir>/voicemail.db) or postgres://user:pass@host/db", str(func(c *Config) *string { return &c.DB })},
		{"db_max_conns", "0", "PostgreSQL connection pool size (0 = 4 per core, at least 10)", intv(func(c *Config) *int { return &c.DBMaxConns }, 0)},
		{"db_max_idle_conns", "0", "PostgreSQL idle connections kept open (0 = db_max_conns)", intv(func(c *Config) *int { return &c.DBMaxIdleConns }, 0)},
		{"db_conn_max_lifetime", "0s", "PostgreSQL: close connections older than this (0 = never)", dur(func(c *Config) *time.Duration { return &c.DBConnMaxLifetime })},
		{"media", "", "media store: file://<path> (default file://<data_dir>/media), s3://bucket/prefix?endpoint=…&region=… or azblob://container/prefix?account=…&endpoint=…", str(func(c *Config) *string { return &c.Media })},
		{"s3.access_key", "", "S3 access key of s3:// media (default AWS_ACCESS_KEY_ID)", str(func(c *Config) *string { return &c.S3AccessKey })},
		{"s3.secret_key", "", "S3 secret key of s3:// media (default AWS_SECRET_ACCESS_KEY)", str(func(c *Config) *string { return &c.S3SecretKey })},
		{"azure.account_key", "", "storage account key of azblob:// media (default AZURE_STORAGE_KEY)", str(func(c *Config) *string { return &c.AzureAccountKey })},
		{"azure.sas_token", "", "SAS token of azblob:// media (default AZURE_STORAGE_SAS_TOKEN)", str(func(c *Config) *string { return &c.AzureSASToken })},
		{"access_numbers", "5555", "numbers that reach the access IVR", func(c *Config, v string) error {
			c.AccessNumbers = splitList(v)
			for _, n := range c.AccessNumbers {
				if !isDigits(n) {
					return fmt.Errorf("want digits, got %q", n)
				}
			}
			return nil
		}},
		{"recording.max_seconds", "180", "longest message", intv(func(c *Config) *int { return &c.RecordingMaxSeconds }, 1)},
		{"recording.min_seconds", "2", "shorter messages are discarded", intv(func(c *Config) *int { return &c.RecordingMinSeconds }, 0)},
		{"recording.silence_seconds", "10", "silence that ends a recording (0 = off)", intv(func(c *Config) *int { return &c.RecordingSilenceSeconds }, 0)},
		{"recording.tail_ms", "500", "trailing silence kept after the last voiced frame of a message (milliseconds)", intv(func(c *Config) *int { return &c.RecordingTailMS }, 0)},
		{"recording.format", "pcm16", "WAV format: pcm16, ulaw or alaw", func(c *Config, v string) error {
			switch v {
			case "pcm16", "ulaw", "alaw":
				c.RecordingFormat = v
				return nil
			}
			return fmt.Errorf("want pcm16, ulaw or alaw, got %q", v)
		}},
		{"login.max_attempts", "3", "PIN attempts per call", intv(func(c *Config) *int { return &c.LoginMaxAttempts }, 1)},
		{"login.lockout", "15m", "how long a mailbox stays locked", dur(func(c *Config) *time.Duration { return &c.LoginLockout })},
		{"auth.admin_token", "", "operator token (default: generated at first start and kept in data_dir)", str(func(c *Config) *string { return &c.AdminToken })},
		{"prompts.dir", "", "folder of WAV prompts overriding the embedded set", str(func(c *Config) *string { return &c.PromptsDir })},
		{"smtp.host", "", "SMTP server (empty = no email)", str(func(c *Config) *string { return &c.SMTPHost })},
		{"smtp.port", "587", "SMTP port", intv(func(c *Config) *int { return &c.SMTPPort }, 1)},
		{"smtp.tls", "starttls", "none, starttls or tls", func(c *Config, v string) error {
			switch v {
			case "none", "starttls", "tls":
				c.SMTPTLS = v
				return nil
			}
			return fmt.Errorf("want none, starttls or tls, got %q", v)
		}},
		{"smtp.username", "", "SMTP user", str(func(c *Config) *string { return &c.SMTPUsername })},
		{"smtp.password", "", "SMTP password", str(func(c *Config) *string { return &c.SMTPPassword })},
		{"smtp.from", "", "sender address", str(func(c *Config) *string { return &c.SMTPFrom })},
		{"smtp.subject_template", "", "mail subject Go template, inline or @file (default: built in)", str(func(c *Config) *string { return &c.SMTPSubjectTemplate })},
		{"smtp.body_template", "", "mail body Go template, inline or @file (default: built in)", str(func(c *Config) *string { return &c.SMTPBodyTemplate })},
		{"smtp.retry", "1m", "delay before the first retry of a failed mail (doubles each time)", dur(func(c *Config) *time.Duration { return &c.SMTPRetry })},
		{"smtp.retry_max", "1h", "longest delay between retries of a failed mail", dur(func(c *Config) *time.Duration { return &c.SMTPRetryMax })},
		{"http.public_url", "", "base URL of the API in mail links (default http://<http.listen>)", str(func(c *Config) *string { return &c.HTTPPublicURL })},
		{"gdpr.forget_grace", "24h", "how long a forgotten message can be restored", dur(func(c *Config) *time.Duration { return &c.GDPRForgetGrace })},
		{"retention.days", "0", "delete messages older than this (0 = keep)", intv(func(c *Config) *int { return &c.RetentionDays }, 0)},
		{"retention.sweep_rate", "200", "most messages per second the retention sweep deletes, so that a large backlog does not crowd out calls (0 = no limit; 500 measured +4 ms on the INVITE→200 p99 of calls sharing one core)", intv(func(c *Config) *int { return &c.RetentionSweepRate }, 0)},
		{"gdpr.submit_dir", "", "drop folder for forget-/export-/undo-YYYYMMDD_<id>.json request files (empty = off)", str(func(c *Config) *string { return &c.GDPRSubmitDir })},
		{"gdpr.result_dir", "", "where <name>-execution-log.json and <name>-archive.zip appear (default gdpr.submit_dir)", str(func(c *Config) *string { return &c.GDPRResultDir })},
		{"gdpr.sweep_interval", "1m", "how often forgotten messages past the grace are purged and retention applied", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration like 1m, got %q", v)
			}
			c.GDPRSweepInterval = d
			return nil
		}},
		{"gdpr.export_ttl", "24h", "how long a GDPR export archive stays downloadable", dur(func(c *Config) *time.Duration { return &c.GDPRExportTTL })},
		{"shutdown.drain_timeout", "60s", "on SIGTERM, how long calls in progress may go on before they are ended (recordings kept)", dur(func(c *Config) *time.Duration { return &c.ShutdownDrainTimeout })},
		{"greeting.max_seconds", "120", "longest greeting an upload may hold (longer: 413)", func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 3600 {
				return fmt.Errorf("want 1 to 3600 seconds, got %q", v)
			}
			c.GreetingMaxSeconds = n
			return nil
		}},
		{"media.min_free", diskspace.DefaultMinFree, "free space the media and database file systems must keep (e.g. 1GiB, 500MB, 1%; 0 = off); below it deposits get 503, API writes 507 and /readyz fails", func(c *Config, v string) (err error) {
			c.MediaMinFree, err = diskspace.ParseThreshold(v)
			return err
		}},
		{"media.rtp_timeout", "60s", "end a call (BYE, recording kept) after this long without RTP nor RTCP from the caller (0 = off)", dur(func(c *Config) *time.Duration { return &c.MediaRTPTimeout })},
		{"media.orphan_grace", "1h", "how old a media blob must be before the orphan sweep may remove it when no message row (or mailbox, for a greeting) owns it; at least 1m", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Minute {
				return fmt.Errorf("want a duration of at least 1m like 1h, got %q", v)
			}
			c.MediaOrphanGrace = d
			return nil
		}},
		{"media.orphan_sweep_interval", "15m", "how often one instance sweeps the media for orphans (blobs without a row)", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return fmt.Errorf("want a positive duration like 15m, got %q", v)
			}
			c.MediaOrphanSweepInterval = d
			return nil
		}},
		{"media.strict_rtp_packets", "4", "packets in sequence a new RTP source must send before it is accepted", intv(func(c *Config) *int { return &c.MediaStrictRTPPackets }, 1)},
		{"media.srtp", "optional", "SRTP with SDES keys: off (RTP/SAVP offers get 488), optional (RTP/SAVP and RTP/AVP answered in kind) or required (RTP/AVP offers get 488)", func(c *Config, v string) error {
			switch v {
			case "off", "optional", "required":
				c.MediaSRTP = v
				return nil
			}
			return fmt.Errorf("want off, optional or required, got %q", v)
		}},
		{"media.srtp_allow_insecure_keys", "false", "accept RTP/SAVP offers over UDP and TCP, whose SDES keys anyone on the path can read (by default only over TLS; others get 488)", func(c *Config, v string) (err error) {
			c.MediaSRTPAllowInsecureKeys, err = strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			return nil
		}},
		{"media.rtp_mux", "false", "every call on one shared RTP port (the first even port of rtp.ports; RTCP on the next), many packets per system call: far less CPU per call, but a caller's RTP must come from the address in its SDP or carry the SSRC of its a=ssrc (docs/performance.md)", func(c *Config, v string) (err error) {
			c.MediaRTPMux, err = strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			return nil
		}},
		{"webhooks.allow_hosts", "", "host names, addresses or CIDR networks webhooks may reach although loopback, private, link-local or multicast", func(c *Config, v string) error {
			c.WebhooksAllowHosts = splitList(v)
			for _, h := range c.WebhooksAllowHosts {
				if strings.ContainsAny(h, " \t") {
					return fmt.Errorf("want host names, addresses or CIDR networks, got %q", h)
				}
			}
			return nil
		}},
		{"cluster.instance_id", "", "this instance's name among those sharing the database; it owns the MWI subscriptions it takes (default: host name + random suffix, new at each start)", func(c *Config, v string) error {
			if len(v) > 200 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				return fmt.Errorf("want a name of at most 200 characters without spaces or control characters, got %q", v)
			}
			c.ClusterInstanceID = v
			return nil
		}},
		{"cluster.heartbeat", "2s", "how often an instance renews its liveness; after 3 missed heartbeats another instance takes its MWI subscriptions and its role of queueing webhook jobs", func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 100*time.Millisecond || d > time.Minute {
				return fmt.Errorf("want a duration from 100ms to 1m, got %q", v)
			}
			c.ClusterHeartbeat = d
			return nil
		}},
		{"log.level", "info", "debug, info, warn or error", func(c *Config, v string) error {
			switch v {
			case "debug", "info", "warn", "error":
				c.LogLevel = v
				return nil
			}
			return fmt.Errorf("want debug, info, warn or error, got %q", v)
		}},
		{"log.format", "json", "json or text", func(c *Config, v string) error {
			switch v {
			case "json", "text":
				c.LogFormat = v
				return nil
			}
			return fmt.Errorf("want json or text, got %q", v)
		}},
		{"demo", "false", "create the demo tenant's mailboxes 1001, 1002 and group 8000 if absent", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("want true or false, got %q", v)
			}
			c.Demo = b
			return nil
		}},
	}
}

// FlagName is the flag for a key: dots and underscores become dashes.
func FlagName(key string) string {
	return strings.NewReplacer(".", "-", "_", "-").Replace(key)
}

// EnvName is the environment variable for a key.
func EnvName(key string) string {
	return "VOICEMAIL_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// ConfigEnv names the configuration file when --config is not given.
const ConfigEnv = "VOICEMAIL_CONFIG"

// Register adds one flag per key to fs. Call Load with the same set after
// fs.Parse.
func Register(fs *flag.FlagSet) {
	for _, o := range options() {
		usage := o.usage + " (" + EnvName(o.key) + ")"
		if o.boolean() {
			fs.Var(&boolFlag{v: o.def}, FlagName(o.key), usage)
			continue
		}
		fs.String(FlagName(o.key), o.def, usage)
	}
	fs.String("config", "", "YAML configuration file ("+ConfigEnv+")")
}

// boolFlag is a string-valued flag that may be given without a value.
type boolFlag struct{ v string }

func (b *boolFlag) String() string {
	if b == nil {
		return ""
	}
	return b.v
}
func (b *boolFlag) Set(v string) error { b.v = v; return nil }
func (b *boolFlag) IsBoolFlag() bool   { return true }

// File returns the configuration file named by --config on fs, else by
// VOICEMAIL_CONFIG, else "".
func File(fs *flag.FlagSet, env func(string) (string, bool)) string {
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		return f.Value.String()
	}
	if v, ok := env(ConfigEnv); ok {
		return strings.TrimSpace(v)
	}
	return ""
}

// Load builds the configuration from defaults, the file named by --config
// (or VOICEMAIL_CONFIG), the environment and the flags set on fs.
func Load(fs *flag.FlagSet, env func(string) (string, bool)) (*Config, error) {
	values := map[string]string{}
	// from names where each value came from, for errors: the user should see
	// the flag or variable they typed, not only the YAML key.
	from := map[string]string{}
	opts := options()
	known := map[string]bool{}
	for _, o := range opts {
		values[o.key] = o.def
		known[o.key] = true
		from[o.key] = "config key " + o.key + " (default)"
	}
	if path := File(fs, env); path != "" {
		file, err := readFile(path)
		if err != nil {
			return nil, err
		}
		var unknown []string
		for k, v := range file {
			if !known[k] {
				unknown = append(unknown, k)
				continue
			}
			values[k] = v
			from[k] = "config key " + k + " in " + path
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			return nil, fmt.Errorf("config %s: unknown key %q", path, unknown[0])
		}
	}
	for _, o := range opts {
		if v, ok := env(EnvName(o.key)); ok {
			values[o.key] = v
			from[o.key] = "environment variable " + EnvName(o.key) + " (config key " + o.key + ")"
		}
	}
	fs.Visit(func(f *flag.Flag) {
		for _, o := range opts {
			if FlagName(o.key) == f.Name {
				values[o.key] = f.Value.String()
				from[o.key] = "flag --" + f.Name + " (config key " + o.key + ")"
			}
		}
	})
	c := &Config{}
	for _, o := range opts {
		if err := o.set(c, strings.TrimSpace(values[o.key])); err != nil {
			return nil, fmt.Errorf("%s: %w", from[o.key], err)
		}
	}
	if c.DB == "" {
		c.DB = "sqlite://" + filepath.Join(c.DataDir, "voicemail.db")
	}
	if c.Media == "" {
		c.Media = "file://" + filepath.Join(c.DataDir, "media")
	}
	if c.HTTPPublicURL == "" {
		c.HTTPPublicURL = "http://" + c.HTTPListen
	}
	c.HTTPPublicURL = strings.TrimRight(c.HTTPPublicURL, "/")
	if c.SMTPRetry <= 0 || c.SMTPRetryMax < c.SMTPRetry {
		return nil, fmt.Errorf("%s: want a positive duration no longer than smtp.retry_max", from["smtp.retry"])
	}
	if c.RecordingMinSeconds > c.RecordingMaxSeconds {
		return nil, fmt.Errorf("%s: larger than recording.max_seconds", from["recording.min_seconds"])
	}
	return c, nil
}

// readFile flattens a YAML document into dotted keys; lists become
// comma-separated values.
func readFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any) error
	walk = func(prefix string, v any) error {
		switch t := v.(type) {
		case map[string]any:
			for k, vv := range t {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				if err := walk(key, vv); err != nil {
					return err
				}
			}
		case []any:
			parts := make([]string, 0, len(t))
			for _, e := range t {
				parts = append(parts, fmt.Sprint(e))
			}
			out[prefix] = strings.Join(parts, ",")
		case nil:
			out[prefix] = ""
		default:
			out[prefix] = fmt.Sprint(t)
		}
		return nil
	}
	if err := walk("", doc); err != nil {
		return nil, err
	}
	return out, nil
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func intv(field func(*Config) *int, min int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return fmt.Errorf("want a whole number >= %d, got %q", min, v)
		}
		*field(c) = n
		return nil
	}
}

func dur(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return fmt.Errorf("want a duration like 15m, got %q", v)
		}
		*field(c) = d
		return nil
	}
}

func parseListen(v string) ([]Listen, error) {
	var out []Listen
	for _, part := range splitList(v) {
		tr, addr, ok := strings.Cut(part, ":")
		tr = strings.ToLower(tr)
		if !ok || (tr != "udp" && tr != "tcp" && tr != "tls") {
			return nil, fmt.Errorf("want transport:host:port (udp, tcp or tls), got %q", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("want transport:host:port, got %q", part)
		}
		out = append(out, Listen{Transport: tr, Addr: addr})
	}
	if len(out) == 0 {
		return nil, errors.New("no listener")
	}
	return out, nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
