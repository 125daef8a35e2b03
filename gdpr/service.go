package gdpr

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/vmserver/voicemail/keyfile"
	"github.com/vmserver/voicemail/store"
)

// KeyFile is the name of the audit key in the data folder.
const KeyFile = "gdpr_key"

// Config holds what the service works with.
type Config struct {
	Store   store.Store // wrapped by store.Notifying: forget, undo and retention publish changes
	Blobs   store.Blobs
	DataDir string // holds the audit key (gdpr_key) and the export archives (gdpr/exports)
	Logger  *slog.Logger

	ForgetGrace   time.Duration // gdpr.forget_grace; 0 = 24h
	RetentionDays int           // retention.days: the global default (0 = keep)
	SweepRate     int           // retention.sweep_rate: messages deleted per second at most (0 = unpaced)
	SweepInterval time.Duration // purge and retention cadence; 0 = 1m
	ExportTTL     time.Duration // how long export archives stay downloadable; 0 = 24h

	SubmitDir, ResultDir string        // drop-folder mode when SubmitDir is set (ResultDir defaults to SubmitDir)
	PollInterval         time.Duration // drop-folder polling; 0 = 500ms

	Now func() time.Time // the clock (tests); nil = time.Now
}

// Service runs GDPR requests, the sweeper and the drop-folder watcher.
type Service struct {
	cfg Config
	key []byte
	// sweepOwner names this process in the sweep lease (sweeper.go).
	sweepOwner string

	mu      sync.Mutex
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New loads (or creates at first use) the audit key in cfg.DataDir.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Blobs == nil || cfg.DataDir == "" {
		return nil, errors.New("gdpr: store, blobs and data dir are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ForgetGrace <= 0 {
		cfg.ForgetGrace = 24 * time.Hour
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Minute
	}
	if cfg.ExportTTL <= 0 {
		cfg.ExportTTL = 24 * time.Hour
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.ResultDir == "" {
		cfg.ResultDir = cfg.SubmitDir
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key, err := loadKey(filepath.Join(cfg.DataDir, KeyFile))
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, key: key, sweepOwner: store.NewMessageID()}, nil
}

// loadKey reads the key, creating it (32 random bytes, hex, mode 0600) when absent.
func loadKey(path string) ([]byte, error) {
	k, err := keyfile.Load(path)
	if err != nil {
		return nil, fmt.Errorf("gdpr: %w", err)
	}
	return k, nil
}

// Hash is the keyed hash (HMAC-SHA256, hex) of a normalised contact: what
// the audit trail and the tombstones keep instead of the contact.
func (s *Service) Hash(kind, value string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return hex.EncodeToString(m.Sum(nil))
}

// ForgetGrace is the configured grace period.
func (s *Service) ForgetGrace() time.Duration { return s.cfg.ForgetGrace }

// RetentionDays is the global retention default.
func (s *Service) RetentionDays() int { return s.cfg.RetentionDays }

// DeriveKey returns a key for another purpose derived from the audit key
// (HMAC-SHA256 of the purpose), so that one secret file, kept with the
// database backups, serves every keyed hash of the server.
func (s *Service) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("voicemail key derivation\x00" + purpose))
	return m.Sum(nil)
}

// Principal is who asks and over what.
type Principal struct {
	Tenant string // "" = every tenant (operator)
	Actor  string // recorded in the audit trail, e.g. "operator", "tenant:acme:<token id>", "client:acme:<client id>", "drop-folder"
}

// Options change how a document is run.
type Options struct {
	// DryRun reports per contact what the operation would do ("SUCCESS:
	// would forget 3 messages") and changes nothing: no message, no MWI,
	// no archive. The audit trail records it as "<operation>:dry-run".
	DryRun bool
}

// Outcome is a processed document.
type Outcome struct {
	Doc       *Document
	Archive   *Archive // export only (not in a dry run)
	DryRun    bool
	Contacts  int
	Errors    int
	Messages  int // messages exported, hidden or restored (or that would be)
	StartedAt time.Time
	Duration  time.Duration
}

// Run processes every request of doc with op (see RunWith).
func (s *Service) Run(ctx context.Context, op Operation, doc *Document, p Principal) (*Outcome, error) {
	return s.RunWith(ctx, op, doc, p, Options{})
}

// RunWith processes every request of doc with op. One contact's failure
// never stops the others: it becomes that contact's "ERROR: …" response.
// A request's "ccid" narrows an every-tenant principal to that tenant; a
// tenant principal only serves its own ccid. The error return is for
// failures of the whole run (the export archive).
func (s *Service) RunWith(ctx context.Context, op Operation, doc *Document, p Principal, o Options) (*Outcome, error) {
	start := s.cfg.Now()
	out := &Outcome{Doc: doc, StartedAt: start, DryRun: o.DryRun}
	var exp *exporter
	if op == OpExport && !o.DryRun {
		var err error
		if exp, err = s.newExporter(doc, p); err != nil {
			return nil, err
		}
		defer exp.abort()
	}
	auditOp := string(op)
	if o.DryRun {
		auditOp += ":dry-run"
	}
	for i := range doc.Requests {
		r := &doc.Requests[i]
		r.Result = make([]Result, 0, len(r.Contacts))
		scope, reqErr := s.requestScope(ctx, r, p)
		if reqErr == "" {
			reqErr = typeError(op, r.Type)
		}
		rp := Principal{Tenant: scope, Actor: p.Actor}
		for _, c := range r.Contacts {
			res := Result{Contact: c}
			if reqErr != "" {
				res.Response = reqErr
			} else {
				res = s.contact(ctx, op, r.RequestCase, c, rp, exp, o.DryRun)
			}
			out.Contacts++
			out.Messages += res.Messages
			if strings.HasPrefix(res.Response, "ERROR") {
				out.Errors++
			}
			r.Result = append(r.Result, res)
			s.audit(ctx, rp, auditOp, r.RequestCase, c, res)
		}
	}
	if exp != nil {
		a, err := exp.finish()
		if err != nil {
			return nil, err
		}
		out.Archive = a
	}
	out.Duration = s.cfg.Now().Sub(start)
	s.cfg.Logger.Info("gdpr request processed", "operation", op, "dry_run", o.DryRun, "actor", p.Actor, "scope", scopeName(p.Tenant),
		"contacts", out.Contacts, "errors", out.Errors, "messages", out.Messages, "duration", out.Duration)
	return out, nil
}

// requestScope is the tenant a request runs in, or an "ERROR: …" response
// for each of its contacts.
func (s *Service) requestScope(ctx context.Context, r *Request, p Principal) (string, string) {
	if r.CCID == "" {
		return p.Tenant, ""
	}
	if p.Tenant != "" {
		if r.CCID != p.Tenant {
			return "", "ERROR: ccid " + quoteShort(r.CCID) + " is not the tenant of this credential"
		}
		return p.Tenant, ""
	}
	if _, err := s.cfg.Store.GetTenant(ctx, r.CCID); errors.Is(err, store.ErrNotFound) {
		return "", "ERROR: unknown ccid " + quoteShort(r.CCID)
	} else if err != nil {
		s.cfg.Logger.Error("gdpr: tenant lookup failed", "err", err)
		return "", ErrInternal
	}
	return r.CCID, ""
}

// typeError checks the request type against the operation: export may
// serve any case (a copy before forgetting); forget and undo only act on
// FORGET requests.
func typeError(op Operation, typ string) string {
	t := strings.ToUpper(strings.TrimSpace(typ))
	switch {
	case t != TypeForget && t != TypeExport:
		return "ERROR: unknown request type " + quoteShort(typ) + " (want FORGET or EXPORT)"
	case op != OpExport && t != TypeForget:
		return "ERROR: request type " + t + " cannot be processed by " + string(op)
	}
	return ""
}

func scopeName(t string) string {
	if t == "" {
		return "*"
	}
	return t
}

func quoteShort(s string) string {
	if len(s) > 32 {
		s = s[:32] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// wouldVerb is the verb of a dry run's response.
var wouldVerb = map[Operation]string{OpExport: "export", OpForget: "forget", OpUndo: "restore"}

// contact handles one contact.
func (s *Service) contact(ctx context.Context, op Operation, reqCase string, c Contact, p Principal, exp *exporter, dry bool) Result {
	res := Result{Contact: c}
	switch c.Kind {
	case "":
		res.Response = "ERROR: empty contact"
		return res
	case "phone":
	default:
		// Email and IP contacts hold no voicemail data (nor does any other kind).
		res.Response = SuccessNotFound
		return res
	}
	e164, ok := NormalizePhone(c.Value)
	if !ok {
		res.Response = ErrDeviceFormat
		return res
	}
	hash := s.Hash("phone", e164)
	var (
		msgs []store.Message
		err  error
	)
	switch {
	case op == OpUndo && dry:
		msgs, err = s.cfg.Store.ForgottenByCaller(ctx, p.Tenant, e164, hash)
	case op == OpExport && dry, op == OpForget && dry:
		msgs, err = s.cfg.Store.MessagesByCaller(ctx, p.Tenant, e164)
	case op == OpExport:
		msgs, err = s.cfg.Store.MessagesByCaller(ctx, p.Tenant, e164)
		if err == nil {
			err = exp.add(ctx, reqCase, c.Value, msgs)
		}
	case op == OpForget:
		msgs, err = s.cfg.Store.ForgetCaller(ctx, store.Forget{ID: uuid.NewString(), Tenant: p.Tenant,
			E164: e164, PhoneHash: hash, At: s.cfg.Now()})
	case op == OpUndo:
		msgs, err = s.cfg.Store.UndoForget(ctx, p.Tenant, e164, hash)
	default:
		res.Response = "ERROR: unknown operation"
		return res
	}
	if errors.Is(err, store.ErrPurged) {
		res.Response = ErrAlreadyPurged
		return res
	}
	if err != nil {
		// The number stays out of the log: the hash identifies it for the audit.
		s.cfg.Logger.Error("gdpr contact failed", "operation", op, "contact_hash", hash[:16], "err", err)
		res.Response = ErrInternal
		return res
	}
	if len(msgs) == 0 {
		res.Response = SuccessNotFound
		return res
	}
	res.Messages, res.Mailboxes = len(msgs), mailboxesOf(msgs, p.Tenant)
	res.Response = Success
	if dry {
		res.Response = fmt.Sprintf("SUCCESS: would %s %d %s", wouldVerb[op], len(msgs), plural(len(msgs), "message"))
	}
	return res
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// mailboxesOf lists the mailboxes of msgs, sorted: "number" within one
// tenant, "tenant/number" when the scope is every tenant.
func mailboxesOf(msgs []store.Message, tenant string) []string {
	var out []string
	for _, m := range msgs {
		name := m.Mailbox
		if tenant == "" {
			name = m.Tenant + "/" + m.Mailbox
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (s *Service) audit(ctx context.Context, p Principal, op, reqCase string, c Contact, res Result) {
	a := &store.GDPRAudit{At: s.cfg.Now(), Actor: p.Actor, Operation: op, RequestCase: reqCase, Scope: p.Tenant,
		ContactKind: c.Kind, Response: res.Response, Messages: res.Messages}
	if c.Kind != "" {
		v := c.Value
		if c.Kind == "phone" {
			if e, ok := NormalizePhone(v); ok {
				v = e
			}
		} else {
			v = normalizeOther(c.Kind, v)
		}
		a.ContactHash = s.Hash(c.Kind, v)
	}
	if err := s.cfg.Store.AddGDPRAudit(context.WithoutCancel(ctx), a); err != nil {
		s.cfg.Logger.Error("gdpr audit not written", "operation", op, "err", err)
	}
}
