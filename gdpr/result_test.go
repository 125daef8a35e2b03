package gdpr

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"testing"
)

// orderedKeys returns the member names of a JSON object, in order.
func orderedKeys(t *testing.T, b []byte) []string {
	t.Helper()
	fs, err := parseObject(b)
	if err != nil {
		t.Fatalf("not an object: %s", b)
	}
	var out []string
	for _, f := range fs {
		out = append(out, f.key)
	}
	return out
}

func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// checkResultStructure compares a result document with the request
// document it answers, as the contact-center format defines it: the
// requests as received, then per request the same object with "response"
// added inside each contact (extra fields only beside it). It returns the
// responses in order.
func checkResultStructure(t *testing.T, request, result []byte) []string {
	t.Helper()
	if k := orderedKeys(t, result); !slices.Equal(k, []string{"requests", "result"}) {
		t.Fatalf("top-level keys %v, want [requests result]", k)
	}
	var in, out struct {
		Requests []json.RawMessage `json:"requests"`
		Result   []json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(request, &in); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(result, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Requests) != len(in.Requests) || len(out.Result) != len(in.Requests) {
		t.Fatalf("%d requests and %d results for %d requests", len(out.Requests), len(out.Result), len(in.Requests))
	}
	var responses []string
	for i := range in.Requests {
		if !reflect.DeepEqual(decodeAny(t, in.Requests[i]), decodeAny(t, out.Requests[i])) {
			t.Errorf("request %d not echoed as received:\n%s\n%s", i, in.Requests[i], out.Requests[i])
		}
		if a, b := orderedKeys(t, in.Requests[i]), orderedKeys(t, out.Result[i]); !slices.Equal(a, b) {
			t.Errorf("result %d keys %v, want the request's %v", i, b, a)
		}
		req := decodeAny(t, in.Requests[i]).(map[string]any)
		res := decodeAny(t, out.Result[i]).(map[string]any)
		for k, v := range req {
			if k != "contacts" && !reflect.DeepEqual(v, res[k]) {
				t.Errorf("result %d: %s is %v, want %v", i, k, res[k], v)
			}
		}
		reqC, resC := req["contacts"].([]any), res["contacts"].([]any)
		if len(reqC) != len(resC) {
			t.Fatalf("result %d: %d contacts, want %d", i, len(resC), len(reqC))
		}
		for j := range reqC {
			rc, oc := reqC[j].(map[string]any), resC[j].(map[string]any)
			for k, v := range rc {
				if !reflect.DeepEqual(v, oc[k]) {
					t.Errorf("result %d contact %d: %s is %v, want %v", i, j, k, oc[k], v)
				}
			}
			r, ok := oc["response"].(string)
			if !ok {
				t.Errorf("result %d contact %d has no response: %v", i, j, oc)
			}
			for k := range oc {
				if _, orig := rc[k]; !orig && k != "response" && k != "messages" && k != "mailboxes" {
					t.Errorf("result %d contact %d: unexpected field %q", i, j, k)
				}
			}
			responses = append(responses, r)
		}
	}
	return responses
}

// TestContactCenterExampleStructure feeds the two requests of the
// format's own example (six contacts each) and compares the structure.
func TestContactCenterExampleStructure(t *testing.T) {
	req, err := os.ReadFile("testdata/contact-center-example.json")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, nil)
	f.deposit(t, "default", "1001", "+17815551212")
	f.deposit(t, "default", "1002", "+17815551212")
	f.deposit(t, "acme", "2001", "+16175551414")
	f.deposit(t, "default", "1001", "+16175559999") // someone else

	want := []string{Success, ErrDeviceFormat, SuccessNotFound, SuccessNotFound, SuccessNotFound, SuccessNotFound,
		Success, SuccessNotFound, SuccessNotFound, SuccessNotFound, SuccessNotFound, SuccessNotFound}
	wantDry := slices.Clone(want)
	wantDry[0], wantDry[6] = "SUCCESS: would forget 2 messages", "SUCCESS: would forget 1 message"

	// The dry run first: the same structure, nothing changes.
	doc, _ := ParseDocument(req)
	out, err := f.svc.RunWith(t.Context(), OpForget, doc, Principal{Actor: "test"}, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(out.Doc)
	if got := checkResultStructure(t, req, b); !slices.Equal(got, wantDry) {
		t.Errorf("dry-run responses %q, want %q", got, wantDry)
	}
	if out.Messages != 3 || out.Errors != 1 || out.Archive != nil || !out.DryRun {
		t.Errorf("dry run outcome %+v", out)
	}
	if r := out.Doc.Requests[0].Result[0]; !slices.Equal(r.Mailboxes, []string{"default/1001", "default/1002"}) {
		t.Errorf("dry run mailboxes %v", r.Mailboxes)
	}
	if n, _ := f.st.MessagesByCaller(t.Context(), "", "+17815551212"); len(n) != 2 {
		t.Fatalf("the dry run changed messages: %d left", len(n))
	}
	// The four deposits only (the fixture's mailbox creations are changes
	// too, and not the dry run's).
	msgChanges := 0
	for _, c := range f.taken() {
		if c.Message != nil {
			msgChanges++
		}
	}
	if msgChanges != 4 {
		t.Errorf("the dry run published %d message changes", msgChanges-4)
	}

	doc, _ = ParseDocument(req)
	out, err = f.svc.Run(t.Context(), OpForget, doc, Principal{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	b, err = json.MarshalIndent(out.Doc, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if got := checkResultStructure(t, req, b); !slices.Equal(got, want) {
		t.Errorf("responses %q, want %q", got, want)
	}
	if !bytes.Contains(b, []byte(`"phone": "617 555 1313",
          "response": "ERROR: incorrect device format"`)) {
		t.Errorf("617 555 1313 not answered in place:\n%s", b)
	}
	// Read back, the result gives the same answers.
	back, err := ParseResult(b)
	if err != nil || len(back.Requests) != 2 || back.Requests[0].Result[0].Messages != 2 || back.Requests[1].Result[0].Response != Success ||
		back.Requests[0].Result[0].Contact.Value != "+1 781 555 1212" {
		t.Errorf("ParseResult: %v %+v", err, back)
	}

	// The dry run of undo counts what would come back; undo then restores it.
	doc, _ = ParseDocument(req)
	out, _ = f.svc.RunWith(t.Context(), OpUndo, doc, Principal{Actor: "test"}, Options{DryRun: true})
	if got := responses(out); got[0] != "SUCCESS: would restore 2 messages" || got[6] != "SUCCESS: would restore 1 message" {
		t.Errorf("undo dry run %q", got)
	}
	if n, _ := f.st.MessagesByCaller(t.Context(), "", "+17815551212"); len(n) != 0 {
		t.Errorf("the undo dry run restored %d messages", len(n))
	}
	checkAuditOps(t, f, map[string]int{"forget:dry-run": 12, "forget": 12, "undo:dry-run": 12})
}

func checkAuditOps(t *testing.T, f *fixture, want map[string]int) {
	t.Helper()
	lines, err := f.st.ListGDPRAudit(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, l := range lines {
		got[l.Operation]++
	}
	for op, n := range want {
		if got[op] != n {
			t.Errorf("audit: %d %s lines, want %d (all %v)", got[op], op, n, got)
		}
	}
}

// TestCCIDScopes: a request's ccid narrows an every-tenant principal to
// that tenant and must match a tenant principal's.
func TestCCIDScopes(t *testing.T) {
	f := newFixture(t, nil)
	f.deposit(t, "default", "1001", "+17815551212")
	f.deposit(t, "acme", "2001", "+17815551212")
	req := `{"requests":[
	 {"requestcase":"1","type":"FORGET","ccid":"acme","contacts":[{"phone":"+1 781 555 1212"}]},
	 {"requestcase":"2","type":"FORGET","ccid":"nosuch","contacts":[{"phone":"+1 781 555 1212"}]}]}`
	out := run(t, f, OpExport, req, Principal{Actor: "operator"})
	if got := responses(out); got[0] != Success || got[1] != `ERROR: unknown ccid "nosuch"` || out.Messages != 1 {
		t.Errorf("operator with ccid: %q, %d messages", got, out.Messages)
	}
	if r := out.Doc.Requests[0].Result[0]; !slices.Equal(r.Mailboxes, []string{"2001"}) {
		t.Errorf("mailboxes %v", r.Mailboxes)
	}
	out = run(t, f, OpForget, req, Principal{Tenant: "default", Actor: "client:default:x"})
	if got := responses(out); got[0] != `ERROR: ccid "acme" is not the tenant of this credential` || out.Messages != 0 {
		t.Errorf("tenant principal with another ccid: %q", got)
	}
	if n, _ := f.st.MessagesByCaller(t.Context(), "", "+17815551212"); len(n) != 2 {
		t.Errorf("a refused request changed messages: %d left", len(n))
	}
}

func TestParseOperationUndoforgot(t *testing.T) {
	for _, s := range []string{"undoforget", "undoforgot", "UNDO"} {
		if op, err := ParseOperation(s); err != nil || op != OpUndo {
			t.Errorf("%s: %v %v", s, op, err)
		}
	}
}

// FuzzParseDocument: whatever parses is echoed as received and its
// result has one entry per request with the same contacts.
func FuzzParseDocument(f *testing.F) {
	if b, err := os.ReadFile("testdata/contact-center-example.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(contactCenterRequest))
	f.Add([]byte(`{"requests":[{"requestcase":42,"type":"EXPORT","contacts":[{"x":1,"phone":"+1"}],"z":{"a":[1]}}]}`))
	f.Add([]byte(`{"requests":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := ParseDocument(b)
		if err != nil {
			return
		}
		for i := range doc.Requests {
			r := &doc.Requests[i]
			for _, c := range r.Contacts {
				r.Result = append(r.Result, Result{Contact: c, Response: Success})
			}
		}
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		back, err := ParseResult(out)
		if err != nil {
			t.Fatalf("result does not parse: %v\n%s", err, out)
		}
		if len(back.Requests) != len(doc.Requests) {
			t.Fatalf("%d results for %d requests", len(back.Requests), len(doc.Requests))
		}
		for i := range doc.Requests {
			if len(back.Requests[i].Result) != len(doc.Requests[i].Contacts) {
				t.Fatalf("request %d: %d results for %d contacts", i, len(back.Requests[i].Result), len(doc.Requests[i].Contacts))
			}
			for j, r := range back.Requests[i].Result {
				if r.Response != Success || r.Contact.Kind != doc.Requests[i].Contacts[j].Kind {
					t.Fatalf("request %d contact %d: %+v", i, j, r)
				}
			}
		}
	})
}
