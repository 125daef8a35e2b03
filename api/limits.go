package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmserver/voicemail/store"
)

// Limit is the accepted range of one API field: a number's value, or the
// length (or element count) of a string or list. The table below is the
// single source of docs/api-limits.md (a test keeps the two in step).
type Limit struct {
	Field string // "<body or query>.<json name>"
	Kind  string // value, length (bytes) or count (list elements)
	Min   int64
	Max   int64
	Note  string
}

// The limits. Values outside answer 400 invalid_field naming the field.
var (
	limitMaxMessages   = Limit{"mailbox.max_messages", "value", 0, 100_000, "0 = no limit"}
	limitMaxSeconds    = Limit{"mailbox.max_seconds", "value", 0, 3600, "0 = recording.max_seconds"}
	limitRetentionDays = Limit{"mailbox.retention_days", "value", 0, 36_500, "0 = the tenant's or global default"}
	limitMembers       = Limit{"mailbox.members", "count", 0, 500, "no duplicates; personal mailboxes of the tenant"}
	limitNumber        = Limit{"mailbox.number", "length", 1, 32, "digits"}
	limitName          = Limit{"mailbox.name", "length", 0, 128, ""}
	limitEmail         = Limit{"mailbox.email", "length", 0, 2048, "comma-separated addresses, no duplicates"}
	limitEmailCount    = Limit{"mailbox.email", "count", 0, 50, "addresses"}
	limitPIN           = Limit{"mailbox.pin", "length", 4, 10, "digits"}
	limitOperator      = Limit{"mailbox.operator", "length", 0, 32, "digits"}
	limitTimezone      = Limit{"mailbox.timezone", "length", 0, 64, "IANA zone name"}
	limitLanguage      = Limit{"mailbox.language", "length", 0, 35, "BCP 47 tag"}
	limitMWITargets    = Limit{"mailbox.mwi_targets", "count", 0, 16, "no duplicates"}
	limitMWITarget     = Limit{"mailbox.mwi_targets[]", "length", 6, 256, "sip: or sips: URI"}
	limitTenantName    = Limit{"tenant.name", "length", 1, 64, "letters, digits, -_.+@"}
	limitDomains       = Limit{"tenant.domains", "count", 0, 100, "no duplicates (case-insensitive)"}
	limitDomain        = Limit{"tenant.domains[]", "length", 1, 253, "host name or address"}
	limitWebhookURL    = Limit{"webhook.url", "length", 8, 2048, "http or https; no private addresses unless allowed"}
	limitWebhookEvents = Limit{"webhook.events", "count", 0, 6, "no duplicates; empty = all"}
	limitSecret        = Limit{"webhook.secret", "length", 16, 256, "empty = generated"}
	limitForwardTo     = Limit{"forward.to", "length", 1, 32, "digits"}
	limitLimit         = Limit{"query.limit", "value", 1, 1000, "default 100"}
	limitCursor        = Limit{"query.cursor", "length", 0, 128, ""}
	limitCallerID      = Limit{"query.caller_id", "length", 0, 64, ""}
	limitTenantQuery   = Limit{"query.tenant", "length", 1, 64, "operator token only; must name an existing tenant"}
	limitRetentionPut  = Limit{"retention.days", "value", 0, 36_500, "null = retention.days"}
	limitRanges        = Limit{"header.Range", "count", 1, 16, "more ranges: the header is ignored (200)"}
)

// Limits lists every limit, in documentation order.
func Limits() []Limit {
	return []Limit{limitNumber, limitName, limitPIN, limitEmail, limitEmailCount, limitMaxMessages, limitMaxSeconds,
		limitRetentionDays, limitMembers, limitOperator, limitTimezone, limitLanguage, limitMWITargets, limitMWITarget,
		limitTenantName, limitDomains, limitDomain, limitWebhookURL, limitWebhookEvents, limitSecret, limitForwardTo,
		limitRetentionPut, limitLimit, limitCursor, limitCallerID, limitTenantQuery, limitRanges}
}

// name is the JSON (or query) name the error points at.
func (l Limit) name() string {
	f := l.Field[strings.IndexByte(l.Field, '.')+1:]
	return strings.TrimSuffix(f, "[]")
}

func (l Limit) describe() string {
	s := l.name() + " must be "
	switch l.Kind {
	case "value":
		s += strconv.FormatInt(l.Min, 10) + " to " + strconv.FormatInt(l.Max, 10)
	case "length":
		s += strconv.FormatInt(l.Min, 10) + " to " + strconv.FormatInt(l.Max, 10) + " characters long"
	default:
		s += "a list of " + strconv.FormatInt(l.Min, 10) + " to " + strconv.FormatInt(l.Max, 10) + " items"
	}
	return s
}

// check returns the 400 error for n outside the limit.
func (l Limit) check(n int64) error {
	if n < l.Min || n > l.Max {
		return invalid(l.name(), l.describe())
	}
	return nil
}

func (l Limit) checkLen(s string) error { return l.check(int64(len(s))) }

// checkList refuses too many or duplicate elements; key folds equal
// spellings (nil = exact).
func (l Limit) checkList(items []string, key func(string) string) error {
	if err := l.check(int64(len(items))); err != nil {
		return err
	}
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		k := it
		if key != nil {
			k = key(it)
		}
		if seen[k] {
			return invalid(l.name(), l.name()+" lists "+strconv.Quote(it)+" twice")
		}
		seen[k] = true
	}
	return nil
}

// checkQuery bounds the free-form query parameters every list route may get.
func checkQuery(r *http.Request) error {
	q := r.URL.Query()
	if err := limitCursor.checkLen(q.Get("cursor")); err != nil {
		return err
	}
	return limitCallerID.checkLen(q.Get("caller_id"))
}

// checkTenantParam: the tenant an operator token names (?tenant= or
// X-Tenant) must be a valid name of an existing tenant; otherwise every
// route would answer 200 with an empty view of a tenant that is not there.
func (s *Server) checkTenantParam(r *http.Request, p principal) error {
	if !p.operator() {
		return nil
	}
	name := r.URL.Query().Get("tenant")
	field := "tenant"
	if name == "" {
		name, field = r.Header.Get("X-Tenant"), "X-Tenant"
	}
	if name == "" {
		return nil
	}
	if !validName(name) {
		return invalid(field, "tenant must name a tenant: "+limitTenantQuery.describe()+", letters, digits or -_.+@")
	}
	if _, err := s.cfg.Store.GetTenant(r.Context(), name); errors.Is(err, store.ErrNotFound) {
		return notFound("tenant " + name)
	} else if err != nil {
		return err
	}
	return nil
}
