// Package gdpr answers data subjects' requests by caller number (SPEC §9):
// Export Me (a zip of the caller's messages), Forget Me (hidden at once,
// purged after gdpr.forget_grace) and Undo, across every mailbox, through
// the request/result JSON of the contact-center world. It also runs the
// sweeper that purges forgotten messages and applies retention (SPEC §10),
// the drop-folder mode, and keeps an audit trail in which contacts appear
// only as a keyed hash.
//
// Every change goes through the store.Notifying store, so MWI, events and
// mail follow forget, undo and retention like any other change.
package gdpr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/vmserver/voicemail/phone"
)

// Operation is what is done with a request document.
type Operation string

// The operations.
const (
	OpExport Operation = "export"
	OpForget Operation = "forget"
	OpUndo   Operation = "undo"
)

// ParseOperation accepts the API names (export, forget, undo) and the CLI's
// (exportme, forgetme, undoforget).
func ParseOperation(s string) (Operation, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "export", "exportme":
		return OpExport, nil
	case "forget", "forgetme":
		return OpForget, nil
	case "undo", "undoforget":
		return OpUndo, nil
	}
	return "", fmt.Errorf("unknown operation %q (want exportme, forgetme or undoforget)", s)
}

// Request types of the document.
const (
	TypeForget = "FORGET"
	TypeExport = "EXPORT"
)

// Responses.
const (
	Success          = "SUCCESS"
	SuccessNotFound  = "SUCCESS: not found"
	ErrDeviceFormat  = "ERROR: incorrect device format"
	ErrAlreadyPurged = "ERROR: already purged"
	ErrInternal      = "ERROR: internal error"
)

// Document is the request file, and once processed the result: every
// request echoed with a result entry per contact.
type Document struct {
	Requests []Request `json:"requests"`
}

// Request is one case. Fields this package does not know (accountid,
// shortcodes, …) are echoed unchanged.
type Request struct {
	RequestCase string // the case id (a JSON number is kept as its text)
	Type        string // FORGET or EXPORT
	Contacts    []Contact
	Result      []Result // filled by processing

	caseRaw json.RawMessage
	extra   map[string]json.RawMessage
}

// Contact is one identifier of the data subject: {"phone": …}, {"email": …}
// or {"ipaddr": …}.
type Contact struct {
	Kind  string // "phone", "email", "ipaddr", or the first key of an unknown contact
	Value string
	raw   map[string]json.RawMessage
}

// Result is the answer for one contact: the contact echoed, the response
// and the number of messages concerned.
type Result struct {
	Contact  Contact
	Response string
	Messages int
}

// ParseDocument reads a request document.
func ParseDocument(b []byte) (*Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("invalid request JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid request JSON: more than one value")
	}
	if d.Requests == nil {
		return nil, errors.New(`invalid request JSON: no "requests" array`)
	}
	return &d, nil
}

func (r *Request) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("a request must be a JSON object")
	}
	*r = Request{extra: map[string]json.RawMessage{}}
	for k, v := range m {
		switch strings.ToLower(k) {
		case "requestcase":
			r.caseRaw = v
			var s string
			if json.Unmarshal(v, &s) == nil {
				r.RequestCase = s
			} else {
				r.RequestCase = strings.TrimSpace(string(v))
			}
		case "type":
			if err := json.Unmarshal(v, &r.Type); err != nil {
				return errors.New(`"type" must be a string`)
			}
		case "contacts":
			if err := json.Unmarshal(v, &r.Contacts); err != nil {
				return fmt.Errorf(`"contacts": %w`, err)
			}
		case "result":
			// Read back (an execution log); Run recomputes it.
			if err := json.Unmarshal(v, &r.Result); err != nil {
				return fmt.Errorf(`"result": %w`, err)
			}
		default:
			r.extra[k] = v
		}
	}
	return nil
}

func (r Request) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	field := func(k string, v any) error {
		if !first {
			b.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		vb, err := json.Marshal(v)
		if err != nil {
			return err
		}
		b.Write(vb)
		return nil
	}
	var caseV any = r.RequestCase
	if len(r.caseRaw) > 0 {
		caseV = r.caseRaw
	}
	if err := field("requestcase", caseV); err != nil {
		return nil, err
	}
	if err := field("type", r.Type); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(r.extra))
	for k := range r.extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := field(k, r.extra[k]); err != nil {
			return nil, err
		}
	}
	contacts := r.Contacts
	if contacts == nil {
		contacts = []Contact{}
	}
	if err := field("contacts", contacts); err != nil {
		return nil, err
	}
	if r.Result != nil {
		if err := field("result", r.Result); err != nil {
			return nil, err
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// contactKinds are the known keys, in order of preference.
var contactKinds = []string{"phone", "email", "ipaddr"}

func (c *Contact) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("a contact must be a JSON object")
	}
	*c = Contact{raw: m}
	for _, k := range contactKinds {
		for key, v := range m {
			if strings.EqualFold(key, k) {
				c.Kind, c.Value = k, rawString(v)
				return nil
			}
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		c.Kind, c.Value = strings.ToLower(keys[0]), rawString(m[keys[0]])
	}
	return nil
}

func rawString(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(v))
}

func (c Contact) MarshalJSON() ([]byte, error) {
	if c.raw != nil {
		return json.Marshal(c.raw)
	}
	if c.Kind == "" {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string{c.Kind: c.Value})
}

// NewPhone returns a phone contact (for tests and tools).
func NewPhone(number string) Contact { return Contact{Kind: "phone", Value: number} }

func (r Result) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if r.Contact.raw != nil {
		for k, v := range r.Contact.raw {
			m[k] = v
		}
	} else if r.Contact.Kind != "" {
		m[r.Contact.Kind] = r.Contact.Value
	}
	m["response"] = r.Response
	m["messages"] = r.Messages
	return json.Marshal(m)
}

func (r *Result) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if v, ok := m["response"]; ok {
		r.Response = rawString(v)
		delete(m, "response")
	}
	if v, ok := m["messages"]; ok {
		_ = json.Unmarshal(v, &r.Messages)
		delete(m, "messages")
	}
	raw, _ := json.Marshal(m)
	return r.Contact.UnmarshalJSON(raw)
}

// NormalizePhone returns the E.164 form of a number written in E.123
// international form; the rules are phone.E164's, the same the deposit
// applies to caller numbers (docs/architecture.md).
func NormalizePhone(s string) (e164 string, ok bool) { return phone.E164(s) }

// normalizeOther is the canonical form of an email or IP contact for hashing.
func normalizeOther(kind, v string) string {
	v = strings.TrimSpace(v)
	switch kind {
	case "email":
		return strings.ToLower(v)
	case "ipaddr":
		if a, err := netip.ParseAddr(v); err == nil {
			return a.String()
		}
	}
	return v
}
