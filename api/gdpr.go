package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmserver/voicemail/gdpr"
	"github.com/vmserver/voicemail/store"
)

// maxGDPRBody bounds a request document.
const maxGDPRBody = 8 << 20

// gdprResult is the answer of POST /api/v1/gdpr/{op}: the result file of
// the contact-center format ("requests" as received, "result" with a
// response inside every contact), then the run's summary and, for export,
// the archive.
type gdprResult struct {
	Requests   []gdpr.Request    `json:"requests"`
	Result     []json.RawMessage `json:"result"`
	DryRun     bool              `json:"dry_run,omitempty"`
	ArchiveID  string            `json:"archive_id,omitempty"`
	ArchiveURL string            `json:"archive_url,omitempty"`
	Contacts   int               `json:"contacts"`
	Errors     int               `json:"errors"`
	Messages   int               `json:"messages"`
}

// GDPR is what the API asks of the GDPR service (gdpr.Service): the
// requests, their archives, the retention default and the server key.
type GDPR interface {
	RunWith(ctx context.Context, op gdpr.Operation, doc *gdpr.Document, p gdpr.Principal, o gdpr.Options) (*gdpr.Outcome, error)
	OpenArchive(id, tenant string) (store.Reader, error)
	RetentionDays() int
	DeriveKey(purpose string) []byte
}

var _ GDPR = (*gdpr.Service)(nil)

func (s *Server) gdprService() (GDPR, error) {
	if s.cfg.GDPR == nil {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: "GDPR requests are not configured on this server"}
	}
	return s.cfg.GDPR, nil
}

// gdprPrincipal: a tenant token or API client acts on its tenant; the
// operator token on every tenant unless the request names one (?tenant= or
// X-Tenant), and a request's ccid narrows it further.
func gdprPrincipal(r *http.Request, p principal) gdpr.Principal {
	if p.operator() {
		if r.URL.Query().Get("tenant") != "" || r.Header.Get("X-Tenant") != "" {
			return gdpr.Principal{Tenant: p.tenant, Actor: "operator"}
		}
		return gdpr.Principal{Actor: "operator"}
	}
	return gdpr.Principal{Tenant: p.tenant, Actor: actorOf(p)}
}

func (s *Server) gdprRun(op gdpr.Operation) handler {
	return func(w http.ResponseWriter, r *http.Request, p principal) error {
		svc, err := s.gdprService()
		if err != nil {
			return err
		}
		if err := requireAdmin(p); err != nil {
			return err
		}
		var opts gdpr.Options
		if v := r.URL.Query().Get("dry_run"); v != "" {
			if opts.DryRun, err = strconv.ParseBool(v); err != nil {
				return invalid("dry_run", "dry_run must be true or false")
			}
		}
		if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
			return &apiError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type", Message: "want application/json"}
		}
		b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxGDPRBody))
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "too_large", Message: "request document too large"}
		}
		if err != nil {
			return invalid("", "cannot read the body: "+err.Error())
		}
		doc, err := gdpr.ParseDocument(b)
		if err != nil {
			return invalid("requests", err.Error())
		}
		gp := gdprPrincipal(r, p)
		if gp.Tenant != "" {
			if _, err := s.cfg.Store.GetTenant(r.Context(), gp.Tenant); errors.Is(err, store.ErrNotFound) {
				return notFound("tenant " + gp.Tenant)
			} else if err != nil {
				return err
			}
			// A credential of one tenant never runs a request meant for another.
			for _, q := range doc.Requests {
				if q.CCID != "" && q.CCID != gp.Tenant {
					return &apiError{Status: http.StatusForbidden, Code: "forbidden", Field: "ccid",
						Message: "request " + q.RequestCase + ": ccid " + q.CCID + " is not the tenant of this credential (" + gp.Tenant + ")"}
				}
			}
		}
		out, err := svc.RunWith(r.Context(), op, doc, gp, opts)
		if err != nil {
			return err
		}
		res := gdprResult{Requests: out.Doc.Requests, DryRun: out.DryRun, Contacts: out.Contacts, Errors: out.Errors, Messages: out.Messages}
		if res.Result, err = out.Doc.Results(); err != nil {
			return err
		}
		if out.Archive != nil {
			// Downloads read the media store (any instance); the local copy is not needed.
			os.Remove(out.Archive.Path)
			res.ArchiveID = out.Archive.ID
			res.ArchiveURL = "/api/v1/gdpr/exports/" + out.Archive.ID
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}
}

// gdprArchive serves an export archive to the operator or the tenant that made it.
func (s *Server) gdprArchive(w http.ResponseWriter, r *http.Request, p principal) error {
	svc, err := s.gdprService()
	if err != nil {
		return err
	}
	if err := requireAdmin(p); err != nil {
		return err
	}
	id := r.PathValue("id")
	scope := p.tenant
	if p.operator() {
		scope = ""
	}
	f, err := svc.OpenArchive(id, scope)
	if errors.Is(err, gdpr.ErrNoArchive) {
		return notFound("export archive " + id)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", `attachment; filename="export-`+id+`.zip"`)
	http.ServeContent(w, r, "export-"+id+".zip", fi.ModTime(), f)
	return nil
}

type auditJSON struct {
	ID          int64     `json:"id"`
	At          time.Time `json:"at"`
	Actor       string    `json:"actor"`
	Operation   string    `json:"operation"`
	RequestCase string    `json:"requestcase"`
	Scope       string    `json:"scope"`
	ContactKind string    `json:"contact_kind"`
	ContactHash string    `json:"contact_hash"`
	Response    string    `json:"response"`
	Messages    int       `json:"messages"`
}

// gdprAudit lists the audit trail (operator only), oldest first; the cursor is an id.
func (s *Server) gdprAudit(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireOperator(p); err != nil {
		return err
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	var after int64
	if c := r.URL.Query().Get("cursor"); c != "" {
		if after, err = strconv.ParseInt(c, 10, 64); err != nil || after < 0 {
			return invalid("cursor", "cursor must be an audit id")
		}
	}
	lines, err := s.cfg.Store.ListGDPRAudit(r.Context(), after, limit+1)
	if err != nil {
		return err
	}
	out := list[auditJSON]{Items: make([]auditJSON, 0, len(lines))}
	if len(lines) > limit {
		lines = lines[:limit]
		out.Next = strconv.FormatInt(lines[limit-1].ID, 10)
	}
	for _, a := range lines {
		out.Items = append(out.Items, auditJSON{ID: a.ID, At: a.At, Actor: a.Actor, Operation: a.Operation,
			RequestCase: a.RequestCase, Scope: a.Scope, ContactKind: a.ContactKind, ContactHash: a.ContactHash,
			Response: a.Response, Messages: a.Messages})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// retentionJSON: the tenant's default and where the effective value comes from.
type retentionJSON struct {
	Tenant      string `json:"tenant"`
	Days        *int   `json:"days"`         // the tenant's default; null = the global default applies
	GlobalDays  int    `json:"global_days"`  // retention.days
	DefaultDays int    `json:"default_days"` // what a mailbox with retention_days 0 gets (0 = keep)
}

func (s *Server) retention(r *http.Request, tenant string) (retentionJSON, error) {
	svc, err := s.gdprService()
	if err != nil {
		return retentionJSON{}, err
	}
	days, ok, err := s.cfg.Store.TenantRetention(r.Context(), tenant)
	if err != nil {
		return retentionJSON{}, err
	}
	out := retentionJSON{Tenant: tenant, GlobalDays: svc.RetentionDays(), DefaultDays: svc.RetentionDays()}
	if ok {
		out.Days, out.DefaultDays = &days, days
	}
	return out, nil
}

func (s *Server) getRetention(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if _, err := s.cfg.Store.GetTenant(r.Context(), p.tenant); errors.Is(err, store.ErrNotFound) {
		return notFound("tenant " + p.tenant)
	} else if err != nil {
		return err
	}
	out, err := s.retention(r, p.tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// putRetention sets the tenant's default retention: {"days": N} (0 = keep),
// {"days": null} to fall back to retention.days.
func (s *Server) putRetention(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	if _, err := s.gdprService(); err != nil {
		return err
	}
	var in struct {
		Days *int `json:"days"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	days := -1
	if in.Days != nil {
		if *in.Days < 0 || *in.Days > 36500 {
			return invalid("days", "days must be 0 (keep) to 36500, or null")
		}
		days = *in.Days
	}
	err := s.cfg.Store.SetTenantRetention(r.Context(), p.tenant, days)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("tenant " + p.tenant)
	}
	if err != nil {
		return err
	}
	out, err := s.retention(r, p.tenant)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
