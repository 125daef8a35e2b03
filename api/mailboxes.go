package api

import (
	"errors"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vmserver/voicemail/store"
)

// mailboxJSON is a mailbox on the wire. The PIN is write-only.
type mailboxJSON struct {
	Number           string   `json:"number"`
	Name             string   `json:"name"`
	Type             string   `json:"type"`
	Members          []string `json:"members"`
	Email            string   `json:"email"`
	AttachAudio      bool     `json:"attach_audio"`
	DeleteAfterEmail bool     `json:"delete_after_email"`
	MaxMessages      int      `json:"max_messages"`
	MaxSeconds       int      `json:"max_seconds"`
	Review           bool     `json:"review"`
	AskPassword      bool     `json:"ask_password"`
	Operator         string   `json:"operator"`
	Timezone         string   `json:"timezone"`
	Language         string   `json:"language"`
	MWITargets       []string `json:"mwi_targets"`
	RetentionDays    int      `json:"retention_days"`
	HasPIN           bool     `json:"has_pin"`
	// SIPSecretSet says whether a sip_secret is set (api/sipsecret.go);
	// absent where unknown (events).
	SIPSecretSet *bool     `json:"sip_secret_set,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func toMailboxJSON(m *store.Mailbox) mailboxJSON {
	return mailboxJSON{
		Number: m.Number, Name: m.Name, Type: m.Type, Members: nonNil(m.Members), Email: m.Email,
		AttachAudio: m.AttachAudio, DeleteAfterEmail: m.DeleteAfterEmail, MaxMessages: m.MaxMessages,
		MaxSeconds: m.MaxSeconds, Review: m.Review, AskPassword: m.AskPassword, Operator: m.Operator,
		Timezone: m.Timezone, Language: m.Language, MWITargets: nonNil(m.MWITargets),
		RetentionDays: m.RetentionDays, HasPIN: m.PINHash != "", CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt,
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// mailboxInput is a create or patch body; pointers tell absent from zero.
type mailboxInput struct {
	Number           *string   `json:"number"`
	Name             *string   `json:"name"`
	Type             *string   `json:"type"`
	Members          *[]string `json:"members"`
	PIN              *string   `json:"pin"`
	Email            *string   `json:"email"`
	AttachAudio      *bool     `json:"attach_audio"`
	DeleteAfterEmail *bool     `json:"delete_after_email"`
	MaxMessages      *int      `json:"max_messages"`
	MaxSeconds       *int      `json:"max_seconds"`
	Review           *bool     `json:"review"`
	AskPassword      *bool     `json:"ask_password"`
	Operator         *string   `json:"operator"`
	Timezone         *string   `json:"timezone"`
	Language         *string   `json:"language"`
	MWITargets       *[]string `json:"mwi_targets"`
	RetentionDays    *int      `json:"retention_days"`
	SIPSecret        *string   `json:"sip_secret"` // write-only; "" removes it
}

// userFields are what a user token may change on its own mailbox.
var userFields = map[string]bool{"name": true, "pin": true, "email": true, "attach_audio": true,
	"delete_after_email": true, "timezone": true, "language": true, "review": true, "sip_secret": true}

// set lists the JSON names of the fields present in the body.
func (in *mailboxInput) set() []string {
	var f []string
	add := func(ok bool, name string) {
		if ok {
			f = append(f, name)
		}
	}
	add(in.Number != nil, "number")
	add(in.Name != nil, "name")
	add(in.Type != nil, "type")
	add(in.Members != nil, "members")
	add(in.PIN != nil, "pin")
	add(in.Email != nil, "email")
	add(in.AttachAudio != nil, "attach_audio")
	add(in.DeleteAfterEmail != nil, "delete_after_email")
	add(in.MaxMessages != nil, "max_messages")
	add(in.MaxSeconds != nil, "max_seconds")
	add(in.Review != nil, "review")
	add(in.AskPassword != nil, "ask_password")
	add(in.Operator != nil, "operator")
	add(in.Timezone != nil, "timezone")
	add(in.Language != nil, "language")
	add(in.MWITargets != nil, "mwi_targets")
	add(in.RetentionDays != nil, "retention_days")
	add(in.SIPSecret != nil, "sip_secret")
	return f
}

// apply copies the present fields onto m (the PIN is handled apart).
func (in *mailboxInput) apply(m *store.Mailbox) {
	setS := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	setB := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	setI := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	setS(&m.Name, in.Name)
	setS(&m.Type, in.Type)
	if in.Members != nil {
		m.Members = *in.Members
	}
	setS(&m.Email, in.Email)
	setB(&m.AttachAudio, in.AttachAudio)
	setB(&m.DeleteAfterEmail, in.DeleteAfterEmail)
	setI(&m.MaxMessages, in.MaxMessages)
	setI(&m.MaxSeconds, in.MaxSeconds)
	setB(&m.Review, in.Review)
	setB(&m.AskPassword, in.AskPassword)
	setS(&m.Operator, in.Operator)
	setS(&m.Timezone, in.Timezone)
	setS(&m.Language, in.Language)
	if in.MWITargets != nil {
		m.MWITargets = *in.MWITargets
	}
	setI(&m.RetentionDays, in.RetentionDays)
}

var languageRE = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$`)

// validateMailbox checks a whole mailbox (after create defaults or a patch)
// against the limits of limits.go.
func validateMailbox(m *store.Mailbox) error {
	if !isNumber(m.Number, 1, 32) {
		return invalid("number", "number must be 1 to 32 digits")
	}
	if err := limitName.checkLen(m.Name); err != nil {
		return err
	}
	if m.Type != store.TypePersonal && m.Type != store.TypeGroup {
		return invalid("type", "type must be personal or group")
	}
	if err := limitMembers.checkList(m.Members, nil); err != nil {
		return err
	}
	for _, mem := range m.Members {
		if !isNumber(mem, 1, 32) {
			return invalid("members", "members must be mailbox numbers")
		}
		if mem == m.Number {
			return invalid("members", "a group cannot be its own member")
		}
	}
	if m.Type == store.TypePersonal && len(m.Members) > 0 {
		return invalid("members", "only a group mailbox has members")
	}
	if err := limitEmail.checkLen(m.Email); err != nil {
		return err
	}
	// A group mailbox mails its own list: addresses separated by commas or
	// semicolons (docs/email.md).
	parts := strings.FieldsFunc(m.Email, func(r rune) bool { return r == ',' || r == ';' })
	for i, part := range parts {
		part = strings.TrimSpace(part)
		if a, err := mail.ParseAddress(part); err != nil || a.Address != part {
			return invalid("email", "email must be plain addresses like alice@example.com, separated by commas")
		}
		parts[i] = part
	}
	if err := limitEmailCount.checkList(parts, strings.ToLower); err != nil {
		return err
	}
	for _, c := range []struct {
		l Limit
		v int
	}{{limitMaxMessages, m.MaxMessages}, {limitMaxSeconds, m.MaxSeconds}, {limitRetentionDays, m.RetentionDays}} {
		if err := c.l.check(int64(c.v)); err != nil {
			return err
		}
	}
	if err := limitTimezone.checkLen(m.Timezone); err != nil {
		return err
	}
	if m.Timezone != "" {
		if _, err := time.LoadLocation(m.Timezone); err != nil {
			return invalid("timezone", "unknown time zone "+strconv.Quote(m.Timezone))
		}
	}
	if err := limitLanguage.checkLen(m.Language); err != nil {
		return err
	}
	if m.Language != "" && !languageRE.MatchString(m.Language) {
		return invalid("language", "language must be a tag like en or en-US")
	}
	if m.Operator != "" && !isNumber(m.Operator, 1, 32) {
		return invalid("operator", "operator must be an extension number")
	}
	if err := limitMWITargets.checkList(m.MWITargets, nil); err != nil {
		return err
	}
	for _, t := range m.MWITargets {
		if err := limitMWITarget.checkLen(t); err != nil {
			return err
		}
		if !strings.HasPrefix(t, "sip:") && !strings.HasPrefix(t, "sips:") || strings.ContainsAny(t, " \t\r\n<>") {
			return invalid("mwi_targets", "mwi_targets must be sip: or sips: URIs")
		}
	}
	return nil
}

func checkPIN(pin *string) error {
	if pin != nil && !isNumber(*pin, 4, 10) {
		return invalid("pin", "pin must be 4 to 10 digits")
	}
	return nil
}

// checkMembers: a group's members must be personal mailboxes of the tenant.
func (s *Server) checkMembers(r *http.Request, m *store.Mailbox) error {
	for _, n := range m.Members {
		mb, err := s.cfg.Store.GetMailbox(r.Context(), m.Tenant, n)
		if errors.Is(err, store.ErrNotFound) {
			return unprocessable("members", "member "+n+" is not a mailbox of this tenant")
		}
		if err != nil {
			return err
		}
		if mb.Type != store.TypePersonal {
			return unprocessable("members", "member "+n+" is not a personal mailbox")
		}
	}
	return nil
}

func (s *Server) createMailbox(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	var in mailboxInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Number == nil {
		return invalid("number", "number is required")
	}
	m := &store.Mailbox{Tenant: p.tenant, Number: *in.Number, Type: store.TypePersonal, AttachAudio: true, AskPassword: true}
	in.apply(m)
	if err := validateMailbox(m); err != nil {
		return err
	}
	if err := checkPIN(in.PIN); err != nil {
		return err
	}
	if err := checkSIPSecret(in.SIPSecret); err != nil {
		return err
	}
	if err := s.checkMembers(r, m); err != nil {
		return err
	}
	if in.PIN != nil {
		h, err := store.HashPIN(*in.PIN)
		if err != nil {
			return err
		}
		m.PINHash = h
	}
	if err := s.cfg.Store.CreateMailbox(r.Context(), m); err != nil {
		switch {
		case errors.Is(err, store.ErrExists):
			return conflict("number", "mailbox "+m.Number+" exists")
		case errors.Is(err, store.ErrNotFound):
			return notFound("tenant " + p.tenant)
		}
		return err
	}
	if err := s.applySIPSecret(r.Context(), m.Tenant, m.Number, in.SIPSecret); err != nil {
		// No mailbox half-made: without its credentials it goes again.
		if _, derr := s.cfg.Store.DeleteMailbox(r.Context(), m.Tenant, m.Number); derr != nil {
			s.cfg.Logger.Error("undoing a mailbox whose sip_secret was not stored", "mailbox", m.Number, "err", derr)
		}
		return err
	}
	out, err := s.withSIPSecretSet(r, m)
	if err != nil {
		return err
	}
	writeCreated(w, "/api/v1/mailboxes/"+m.Number, out)
	return nil
}

func (s *Server) patchMailbox(w http.ResponseWriter, r *http.Request, p principal) error {
	m, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	var in mailboxInput
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Number != nil && *in.Number != m.Number {
		return invalid("number", "the number of a mailbox cannot change")
	}
	if !p.admin() {
		if m.Number != p.mailbox {
			return forbidden("a user token may change only its own mailbox")
		}
		for _, f := range in.set() {
			if f != "number" && !userFields[f] {
				return &apiError{Status: http.StatusForbidden, Code: "forbidden", Message: "a user token may not change " + f, Field: f}
			}
		}
	}
	in.apply(m)
	if err := validateMailbox(m); err != nil {
		return err
	}
	if err := checkPIN(in.PIN); err != nil {
		return err
	}
	if err := checkSIPSecret(in.SIPSecret); err != nil {
		return err
	}
	if in.Members != nil {
		if err := s.checkMembers(r, m); err != nil {
			return err
		}
	}
	if in.PIN != nil {
		if m.PINHash, err = store.HashPIN(*in.PIN); err != nil {
			return err
		}
	}
	if err := s.cfg.Store.UpdateMailbox(r.Context(), m); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return notFound("mailbox " + m.Number)
		}
		return err
	}
	if err := s.applySIPSecret(r.Context(), m.Tenant, m.Number, in.SIPSecret); err != nil {
		return err
	}
	out, err := s.withSIPSecretSet(r, m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// deleteMailbox deletes the mailbox, its messages' audio, its greetings and
// its user tokens; the store publishes mailbox_deleted (MWI clears).
func (s *Server) deleteMailbox(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := requireAdmin(p); err != nil {
		return err
	}
	n := r.PathValue("number")
	ctx := r.Context()
	msgs, err := s.cfg.Store.DeleteMailbox(ctx, p.tenant, n)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("mailbox " + n)
	}
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if err := s.cfg.Blobs.Delete(m.MediaKey); err != nil {
			s.cfg.Logger.Warn("delete message audio", "key", m.MediaKey, "err", err)
		}
	}
	for _, k := range greetingKinds {
		if err := s.cfg.Blobs.Delete(store.GreetingKey(p.tenant, n, k)); err != nil {
			s.cfg.Logger.Warn("delete greeting", "mailbox", n, "kind", k, "err", err)
		}
	}
	if err := s.cfg.Store.DeleteTokens(ctx, p.tenant, n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
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
	out := list[mailboxJSON]{Items: []mailboxJSON{}}
	if !p.admin() {
		// A user sees its mailbox and its groups.
		numbers := []string{p.mailbox}
		for g := range p.groups {
			numbers = append(numbers, g)
		}
		slices.Sort(numbers)
		for _, n := range numbers {
			if m, err := s.cfg.Store.GetMailbox(r.Context(), p.tenant, n); err == nil {
				j, err := s.withSIPSecretSet(r, m)
				if err != nil {
					return err
				}
				out.Items = append(out.Items, j)
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	items, next, err := s.cfg.Store.ListMailboxes(r.Context(), p.tenant, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	out.Next = next
	for i := range items {
		j, err := s.withSIPSecretSet(r, &items[i])
		if err != nil {
			return err
		}
		out.Items = append(out.Items, j)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMailbox(w http.ResponseWriter, r *http.Request, p principal) error {
	m, err := s.mailbox(r, p)
	if err != nil {
		return err
	}
	out, err := s.withSIPSecretSet(r, m)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// mailbox loads the {number} of the path within the principal's tenant; a
// user token gets 403 for any mailbox but its own and its groups.
func (s *Server) mailbox(r *http.Request, p principal) (*store.Mailbox, error) {
	n := r.PathValue("number")
	if !p.canSee(n) {
		return nil, forbidden("this token may not access mailbox " + n)
	}
	m, err := s.cfg.Store.GetMailbox(r.Context(), p.tenant, n)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("mailbox " + n)
	}
	return m, err
}

func limitParam(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 100, checkQuery(r)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, invalid("limit", limitLimit.describe())
	}
	if err := limitLimit.check(int64(n)); err != nil {
		return 0, err
	}
	return n, checkQuery(r)
}
