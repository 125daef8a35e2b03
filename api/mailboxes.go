package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/vmserver/voicemail/store"
)

// mailboxJSON is a mailbox on the wire. The PIN is write-only.
type mailboxJSON struct {
	Number           string    `json:"number"`
	Name             string    `json:"name"`
	Type             string    `json:"type"`
	Members          []string  `json:"members"`
	Email            string    `json:"email"`
	AttachAudio      bool      `json:"attach_audio"`
	DeleteAfterEmail bool      `json:"delete_after_email"`
	MaxMessages      int       `json:"max_messages"`
	MaxSeconds       int       `json:"max_seconds"`
	Review           bool      `json:"review"`
	AskPassword      bool      `json:"ask_password"`
	Operator         string    `json:"operator"`
	Timezone         string    `json:"timezone"`
	Language         string    `json:"language"`
	MWITargets       []string  `json:"mwi_targets"`
	RetentionDays    int       `json:"retention_days"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func toMailboxJSON(m *store.Mailbox) mailboxJSON {
	return mailboxJSON{
		Number: m.Number, Name: m.Name, Type: m.Type, Members: nonNil(m.Members), Email: m.Email,
		AttachAudio: m.AttachAudio, DeleteAfterEmail: m.DeleteAfterEmail, MaxMessages: m.MaxMessages,
		MaxSeconds: m.MaxSeconds, Review: m.Review, AskPassword: m.AskPassword, Operator: m.Operator,
		Timezone: m.Timezone, Language: m.Language, MWITargets: nonNil(m.MWITargets),
		RetentionDays: m.RetentionDays, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mailboxInput is a create body; pointers tell absent from zero.
type mailboxInput struct {
	Number           string   `json:"number"`
	Name             string   `json:"name"`
	Type             string   `json:"type"`
	Members          []string `json:"members"`
	PIN              string   `json:"pin"`
	Email            string   `json:"email"`
	AttachAudio      *bool    `json:"attach_audio"`
	DeleteAfterEmail bool     `json:"delete_after_email"`
	MaxMessages      int      `json:"max_messages"`
	MaxSeconds       int      `json:"max_seconds"`
	Review           bool     `json:"review"`
	AskPassword      *bool    `json:"ask_password"`
	Operator         string   `json:"operator"`
	Timezone         string   `json:"timezone"`
	Language         string   `json:"language"`
	MWITargets       []string `json:"mwi_targets"`
	RetentionDays    int      `json:"retention_days"`
}

func (s *Server) createMailbox(w http.ResponseWriter, r *http.Request, p principal) error {
	var in mailboxInput
	if err := decode(r, &in); err != nil {
		return err
	}
	m, err := in.mailbox(p.tenant)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.CreateMailbox(r.Context(), m); err != nil {
		switch {
		case errors.Is(err, store.ErrExists):
			return &apiError{Status: http.StatusConflict, Code: "exists", Message: "mailbox " + m.Number + " exists", Field: "number"}
		case errors.Is(err, store.ErrNotFound):
			return notFound("tenant " + p.tenant)
		}
		return err
	}
	w.Header().Set("Location", "/api/v1/mailboxes/"+m.Number)
	writeJSON(w, http.StatusCreated, toMailboxJSON(m))
	return nil
}

// mailbox validates a create body and builds the mailbox.
func (in *mailboxInput) mailbox(tenant string) (*store.Mailbox, error) {
	if !isNumber(in.Number, 1, 32) {
		return nil, invalid("number", "number must be 1 to 32 digits")
	}
	if in.Type == "" {
		in.Type = "personal"
	}
	if in.Type != "personal" && in.Type != "group" {
		return nil, invalid("type", "type must be personal or group")
	}
	for _, mem := range in.Members {
		if !isNumber(mem, 1, 32) {
			return nil, invalid("members", "members must be mailbox numbers")
		}
	}
	if in.Type == "personal" && len(in.Members) > 0 {
		return nil, invalid("members", "only a group mailbox has members")
	}
	if in.PIN != "" && !isNumber(in.PIN, 4, 10) {
		return nil, invalid("pin", "pin must be 4 to 10 digits")
	}
	for field, v := range map[string]int{"max_messages": in.MaxMessages, "max_seconds": in.MaxSeconds, "retention_days": in.RetentionDays} {
		if v < 0 {
			return nil, invalid(field, field+" must not be negative")
		}
	}
	if in.Timezone != "" {
		if _, err := time.LoadLocation(in.Timezone); err != nil {
			return nil, invalid("timezone", "unknown time zone "+strconv.Quote(in.Timezone))
		}
	}
	if in.Operator != "" && !isNumber(in.Operator, 1, 32) {
		return nil, invalid("operator", "operator must be an extension number")
	}
	m := &store.Mailbox{
		Tenant: tenant, Number: in.Number, Name: in.Name, Type: in.Type, Members: in.Members,
		Email: in.Email, AttachAudio: in.AttachAudio == nil || *in.AttachAudio, DeleteAfterEmail: in.DeleteAfterEmail,
		MaxMessages: in.MaxMessages, MaxSeconds: in.MaxSeconds, Review: in.Review,
		AskPassword: in.AskPassword == nil || *in.AskPassword, Operator: in.Operator,
		Timezone: in.Timezone, Language: in.Language, MWITargets: in.MWITargets, RetentionDays: in.RetentionDays,
	}
	if in.PIN != "" {
		h, err := store.HashPIN(in.PIN)
		if err != nil {
			return nil, err
		}
		m.PINHash = h
	}
	return m, nil
}

func isNumber(s string, minLen, maxLen int) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (s *Server) listMailboxes(w http.ResponseWriter, r *http.Request, p principal) error {
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	items, next, err := s.cfg.Store.ListMailboxes(r.Context(), p.tenant, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := list[mailboxJSON]{Items: make([]mailboxJSON, 0, len(items)), Next: next}
	for i := range items {
		out.Items = append(out.Items, toMailboxJSON(&items[i]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMailbox(w http.ResponseWriter, r *http.Request, p principal) error {
	m, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toMailboxJSON(m))
	return nil
}

// mailbox loads the {number} of the path within the principal's tenant.
func (s *Server) mailbox(r *http.Request, p principal) (*store.Mailbox, error) {
	n := r.PathValue("number")
	m, err := s.cfg.Store.GetMailbox(r.Context(), p.tenant, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("mailbox " + n)
	}
	return m, err
}

func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, invalid("limit", "limit must be 1 to 1000")
	}
	return n, nil
}
