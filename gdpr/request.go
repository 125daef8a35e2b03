// Package gdpr answers data subjects' requests by caller number
// (docs/gdpr.md): Export Me (a zip of the caller's messages), Forget Me
// (hidden at once, purged after gdpr.forget_grace) and Undo, across every
// mailbox, through the request/result JSON of the contact-center world. It
// also runs the sweeper that purges forgotten messages and applies
// retention, the drop-folder mode, and keeps an audit trail in which
// contacts appear only as a keyed hash.
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
// (exportme, forgetme, undoforget, and undoforgot, the spelling one of the
// contact-center scripts' manuals uses).
func ParseOperation(s string) (Operation, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "export", "exportme":
		return OpExport, nil
	case "forget", "forgetme":
		return OpForget, nil
	case "undo", "undoforget", "undoforgot":
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

// Result-only keys of a contact: a contact read back from a result
// document carries them; they are never echoed as part of the contact.
const (
	keyResponse  = "response"
	keyMessages  = "messages"
	keyMailboxes = "mailboxes"
)

// Document is the request file. Once processed it marshals as the result
// file of the contact-center format (docs/gdpr.md):
//
//	{"requests": [the request objects as received],
//	 "result":   [each request object with "response" added inside every contact]}
type Document struct {
	Requests []Request
}

// Request is one case, kept as received: every field, known or not, is
// echoed in its order.
type Request struct {
	RequestCase string // the case id (a JSON number is kept as its text)
	Type        string // FORGET or EXPORT
	CCID        string // the contact-center id: the tenant this request is for ("" = the credential's scope)
	Contacts    []Contact
	Result      []Result // filled by processing, one per contact

	raw    json.RawMessage // the object as received
	fields []field         // its members, in order
}

// Contact is one identifier of the data subject: {"phone": …}, {"email": …}
// or {"ipaddr": …}.
type Contact struct {
	Kind   string // "phone", "email", "ipaddr", or the first key of an unknown contact
	Value  string
	fields []field // as received, without the result-only keys
	answer *Result // read back from a result document (ParseResult)
}

// Result is the answer for one contact: the contact echoed, the response,
// and beside it the messages concerned and their mailboxes.
type Result struct {
	Contact   Contact
	Response  string
	Messages  int
	Mailboxes []string // "number" within one tenant, "tenant/number" across tenants
}

// ParseDocument reads a request document (a result document is accepted
// too: its "result" is ignored and its requests run again).
func ParseDocument(b []byte) (*Document, error) {
	var d struct {
		Requests []Request `json:"requests"`
	}
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
	return &Document{Requests: d.Requests}, nil
}

// ParseResult reads a result document: its "result" entries become the
// requests, with each contact's response, message count and mailboxes in
// Result.
func ParseResult(b []byte) (*Document, error) {
	var d struct {
		Result []Request `json:"result"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("invalid result JSON: %w", err)
	}
	if d.Result == nil {
		return nil, errors.New(`invalid result JSON: no "result" array`)
	}
	for i := range d.Result {
		r := &d.Result[i]
		r.Result = make([]Result, 0, len(r.Contacts))
		for _, c := range r.Contacts {
			res := Result{Contact: c}
			if c.answer != nil {
				res = *c.answer
				res.Contact = c
			}
			res.Contact.answer = nil
			r.Result = append(r.Result, res)
		}
	}
	return &Document{Requests: d.Result}, nil
}

// MarshalJSON writes the result document: the requests as received and,
// when processed, the result array.
func (d *Document) MarshalJSON() ([]byte, error) {
	res, err := d.Results()
	if err != nil {
		return nil, err
	}
	reqs := d.Requests
	if reqs == nil {
		reqs = []Request{}
	}
	return json.Marshal(struct {
		Requests []Request         `json:"requests"`
		Result   []json.RawMessage `json:"result"`
	}{reqs, res})
}

// Results is the "result" array: each request object as received, with
// "response" (and "messages", "mailboxes") added inside every contact.
func (d *Document) Results() ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(d.Requests))
	for i := range d.Requests {
		b, err := d.Requests[i].resultJSON()
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

func (r *Request) UnmarshalJSON(b []byte) error {
	fields, err := parseObject(b)
	if err != nil {
		return errors.New("a request must be a JSON object")
	}
	*r = Request{raw: append(json.RawMessage(nil), b...), fields: fields}
	for _, f := range fields {
		switch strings.ToLower(f.key) {
		case "requestcase":
			r.RequestCase = rawString(f.val)
		case "type":
			if err := json.Unmarshal(f.val, &r.Type); err != nil {
				return errors.New(`"type" must be a string`)
			}
		case "ccid":
			r.CCID = strings.TrimSpace(rawString(f.val))
		case "contacts":
			if err := json.Unmarshal(f.val, &r.Contacts); err != nil {
				return fmt.Errorf(`"contacts": %w`, err)
			}
		}
	}
	return nil
}

// MarshalJSON echoes the request as received.
func (r Request) MarshalJSON() ([]byte, error) {
	if r.raw != nil {
		return r.raw, nil
	}
	return json.Marshal(map[string]any{"requestcase": r.RequestCase, "type": r.Type, "contacts": r.contacts()})
}

func (r *Request) contacts() []Contact {
	if r.Contacts == nil {
		return []Contact{}
	}
	return r.Contacts
}

// resultJSON is the request object with its contacts answered.
func (r *Request) resultJSON() (json.RawMessage, error) {
	var contacts any = r.contacts()
	if r.Result != nil {
		contacts = r.Result
	}
	cb, err := json.Marshal(contacts)
	if err != nil {
		return nil, err
	}
	fields := r.fields
	if fields == nil {
		fields = []field{{"requestcase", mustMarshal(r.RequestCase)}, {"type", mustMarshal(r.Type)}}
	}
	out := make([]field, 0, len(fields)+1)
	replaced := false
	for _, f := range fields {
		if strings.EqualFold(f.key, "contacts") && !replaced {
			f.val, replaced = cb, true
		}
		out = append(out, f)
	}
	if !replaced {
		out = append(out, field{"contacts", cb})
	}
	return writeObject(out), nil
}

// contactKinds are the known keys, in order of preference.
var contactKinds = []string{"phone", "email", "ipaddr"}

func (c *Contact) UnmarshalJSON(b []byte) error {
	fields, err := parseObject(b)
	if err != nil {
		return errors.New("a contact must be a JSON object")
	}
	*c = Contact{fields: make([]field, 0, len(fields))}
	var ans *Result
	for _, f := range fields {
		switch strings.ToLower(f.key) {
		case keyResponse:
			ans = orNew(ans)
			ans.Response = rawString(f.val)
		case keyMessages:
			ans = orNew(ans)
			_ = json.Unmarshal(f.val, &ans.Messages)
		case keyMailboxes:
			ans = orNew(ans)
			_ = json.Unmarshal(f.val, &ans.Mailboxes)
		default:
			c.fields = append(c.fields, f)
		}
	}
	c.answer = ans
	for _, k := range contactKinds {
		for _, f := range c.fields {
			if strings.EqualFold(f.key, k) {
				c.Kind, c.Value = k, rawString(f.val)
				return nil
			}
		}
	}
	// An unknown kind: the first key in alphabetical order names it.
	for _, f := range c.fields {
		if c.Kind == "" || strings.ToLower(f.key) < c.Kind {
			c.Kind, c.Value = strings.ToLower(f.key), rawString(f.val)
		}
	}
	return nil
}

func orNew(r *Result) *Result {
	if r == nil {
		return &Result{}
	}
	return r
}

// MarshalJSON echoes the contact as received.
func (c Contact) MarshalJSON() ([]byte, error) {
	if c.fields != nil {
		return writeObject(c.fields), nil
	}
	if c.Kind == "" {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]string{c.Kind: c.Value})
}

// NewPhone returns a phone contact (for tests and tools).
func NewPhone(number string) Contact { return Contact{Kind: "phone", Value: number} }

// MarshalJSON writes the contact as received with "response" (and the
// message count and mailboxes) added beside its fields.
func (r Result) MarshalJSON() ([]byte, error) {
	fields := r.Contact.fields
	if fields == nil && r.Contact.Kind != "" {
		fields = []field{{r.Contact.Kind, mustMarshal(r.Contact.Value)}}
	}
	out := append(make([]field, 0, len(fields)+3), fields...)
	out = append(out, field{keyResponse, mustMarshal(r.Response)}, field{keyMessages, mustMarshal(r.Messages)})
	if len(r.Mailboxes) > 0 {
		out = append(out, field{keyMailboxes, mustMarshal(r.Mailboxes)})
	}
	return writeObject(out), nil
}

func rawString(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return strings.TrimSpace(string(v))
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
