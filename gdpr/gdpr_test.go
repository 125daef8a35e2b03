package gdpr

// This file is over 600 lines on purpose: export, forget, undo, purge and
// retention are tested against one fixture (a real store and media folder).

import (
	"archive/zip"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/vmserver/voicemail/phone"
	"github.com/vmserver/voicemail/store"
)

// contactCenterRequest is shaped like the contact-center example: two
// FORGET cases, one phone without its country code that must fail, and
// email/IP contacts that hold no voicemail data.
const contactCenterRequest = `{
  "requests": [
    {
      "requestcase": "CASE-2024-0001",
      "type": "FORGET",
      "accountid": "ACME01",
      "shortcodes": [],
      "contacts": [
        {"phone": "+1 781 555 1212"},
        {"phone": "617 555 1313"},
        {"email": "jane.doe@example.com"}
      ]
    },
    {
      "requestcase": "CASE-2024-0002",
      "type": "FORGET",
      "contacts": [
        {"phone": "+44 20 7946 0958"},
        {"ipaddr": "192.0.2.7"}
      ]
    }
  ]
}`

func TestNormalizePhone(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"+1 781 555 1212", "+17815551212"},
		{"+1-781-555-1212", "+17815551212"},
		{"+1 (781) 555.1212", "+17815551212"},
		{"tel:+44 20 7946 0958", "+442079460958"},
		{"  +33 1 23 45 67 89 ", "+33123456789"},
		{"+683 4002", "+6834002"},
		{"617 555 1313", ""},
		{"6175551313", ""},
		{"0033 1 23 45 67 89", ""}, // E.123 international form needs the +
		{"+0 123 4567", ""},
		{"+1 781 555 1212 ext 3", ""},
		{"+1234567890123456", ""},
		{"+12345", ""},
		{"", ""},
		{"jane@example.com", ""},
	} {
		got, ok := NormalizePhone(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("NormalizePhone(%q) = %q %v, want %q", tc.in, got, ok, tc.want)
		}
		// What a request names must be what the deposit stored.
		if tc.want != "" {
			if e := phone.Caller(tc.in); e != tc.want {
				t.Errorf("phone.Caller(%q) = %q, but the request form is %q", tc.in, e, tc.want)
			}
		}
	}
}

func TestParseOperation(t *testing.T) {
	for in, want := range map[string]Operation{"exportme": OpExport, "forgetme": OpForget, "undoforget": OpUndo, "export": OpExport, "FORGET": OpForget, "undo": OpUndo} {
		if got, err := ParseOperation(in); got != want || err != nil {
			t.Errorf("ParseOperation(%q) = %q %v", in, got, err)
		}
	}
	if _, err := ParseOperation("deleteme"); err == nil {
		t.Error("deleteme accepted")
	}
}

func TestDocumentEchoesUnknownFields(t *testing.T) {
	doc, err := ParseDocument([]byte(contactCenterRequest))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Requests) != 2 || doc.Requests[0].RequestCase != "CASE-2024-0001" || len(doc.Requests[0].Contacts) != 3 {
		t.Fatalf("parsed %+v", doc)
	}
	c := doc.Requests[0].Contacts
	if c[0].Kind != "phone" || c[0].Value != "+1 781 555 1212" || c[2].Kind != "email" {
		t.Errorf("contacts %+v", c)
	}
	doc.Requests[0].Result = []Result{{Contact: c[0], Response: Success, Messages: 2}, {Contact: c[1], Response: ErrDeviceFormat}, {Contact: c[2], Response: SuccessNotFound}}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"accountid":"ACME01"`, `"shortcodes":[]`,
		`"contacts":[{"phone":"+1 781 555 1212","response":"SUCCESS","messages":2},{"phone":"617 555 1313","response":"ERROR: incorrect device format","messages":0}`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("result lacks %s: %s", want, b)
		}
	}
	for _, bad := range []string{`{}`, `[]`, `{"requests":[1]}`, `{"requests":[{"contacts":"x"}]}`, `nope`} {
		if _, err := ParseDocument([]byte(bad)); err == nil {
			t.Errorf("ParseDocument(%s) accepted", bad)
		}
	}
	// A numeric requestcase keeps its form.
	d2, err := ParseDocument([]byte(`{"requests":[{"requestcase":42,"type":"EXPORT","contacts":[]}]}`))
	if err != nil || d2.Requests[0].RequestCase != "42" {
		t.Fatalf("numeric case: %+v %v", d2, err)
	}
	if b, _ := json.Marshal(d2); !bytes.Contains(b, []byte(`{"requests":[{"requestcase":42,`)) {
		t.Errorf("numeric case echoed as %s", b)
	}
}

// ---- service fixture ----

type fixture struct {
	svc     *Service
	raw     store.Store
	st      store.Store
	blobs   *store.FSBlobs
	dir     string
	now     time.Time
	mu      sync.Mutex
	changes []store.Change
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fixture) taken() []store.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changes
	f.changes = nil
	return c
}

func newFixture(t *testing.T, mod func(*Config)) *fixture {
	t.Helper()
	dir := t.TempDir()
	raw, err := store.Open(t.Context(), "sqlite://"+filepath.Join(dir, "voicemail.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	blobs, err := store.NewFSBlobs(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{raw: raw, blobs: blobs, dir: dir, now: time.Now().UTC()}
	bus := store.NewChanges()
	bus.Subscribe(func(c store.Change) { f.mu.Lock(); f.changes = append(f.changes, c); f.mu.Unlock() })
	f.st = store.Notifying(raw, bus)
	ctx := t.Context()
	for _, tn := range []string{store.DefaultTenant, "acme"} {
		if err := raw.CreateTenant(ctx, &store.Tenant{Name: tn}); err != nil {
			t.Fatal(err)
		}
	}
	for _, mb := range []store.Mailbox{{Tenant: "default", Number: "1001"}, {Tenant: "default", Number: "1002"},
		{Tenant: "default", Number: "8000", Type: store.TypeGroup, Members: []string{"1001", "1002"}}, {Tenant: "acme", Number: "2001"}} {
		if err := raw.CreateMailbox(ctx, &mb); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Config{Store: f.st, Blobs: blobs, DataDir: filepath.Join(dir, "data"), ForgetGrace: time.Hour,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: f.clock}
	if mod != nil {
		mod(&cfg)
	}
	if f.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

// deposit stores a message with audio, as the recorder does.
func (f *fixture) deposit(t *testing.T, tenant, mailbox, caller string) store.Message {
	t.Helper()
	m := store.Message{ID: store.NewMessageID(), Tenant: tenant, Mailbox: mailbox, CallerID: caller,
		CallerE164: phone.Caller(caller), ReceivedAt: f.clock(), DurationMS: 1000}
	key := store.MediaKey(tenant, mailbox, m.ID)
	if err := f.blobs.Put(key, strings.NewReader("RIFF-"+m.ID)); err != nil {
		t.Fatal(err)
	}
	if err := f.st.CreateMessage(t.Context(), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, f *fixture, op Operation, req string, p Principal) *Outcome {
	t.Helper()
	doc, err := ParseDocument([]byte(req))
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.svc.Run(t.Context(), op, doc, p)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return out
}

func responses(out *Outcome) []string {
	var r []string
	for _, q := range out.Doc.Requests {
		for _, x := range q.Result {
			r = append(r, x.Response)
		}
	}
	return r
}

func TestExportArchive(t *testing.T) {
	f := newFixture(t, nil)
	a1 := f.deposit(t, "default", "1001", "+17815551212")
	a2 := f.deposit(t, "default", "8000", "17815551212") // received without +
	a3 := f.deposit(t, "acme", "2001", "+17815551212")
	uk := f.deposit(t, "default", "1002", "+442079460958")
	f.deposit(t, "default", "1001", "+16175551414") // someone else
	f.taken()

	out := run(t, f, OpExport, contactCenterRequest, Principal{Actor: "operator"})
	want := []string{Success, ErrDeviceFormat, SuccessNotFound, Success, SuccessNotFound}
	if got := responses(out); !slices.Equal(got, want) {
		t.Fatalf("responses %q, want %q", got, want)
	}
	if out.Archive == nil || out.Archive.Messages != 4 || out.Messages != 4 {
		t.Fatalf("archive %+v, messages %d", out.Archive, out.Messages)
	}
	if c := f.taken(); len(c) != 0 {
		t.Errorf("export published %d changes", len(c))
	}
	files := readZip(t, out.Archive.Path)
	for _, m := range []store.Message{a1, a2, a3, uk} {
		if got := string(files[m.ID+".wav"]); got != "RIFF-"+m.ID {
			t.Errorf("%s.wav holds %q", m.ID, got)
		}
	}
	if len(files) != 5 {
		t.Errorf("zip holds %d files, want 4 WAVs and export.json", len(files))
	}
	var ej ExportJSON
	if err := json.Unmarshal(files[ExportFile], &ej); err != nil {
		t.Fatal(err)
	}
	if ej.CaseID != "CASE-2024-0001,CASE-2024-0002" || ej.Scope != "*" || len(ej.Messages) != 4 || len(ej.Cases) != 2 {
		t.Errorf("export.json %+v", ej)
	}
	us := ej.Consumers["+1 781 555 1212"]
	wantUS := []string{a1.ID + ".wav", a2.ID + ".wav", a3.ID + ".wav"}
	slices.Sort(wantUS)
	if !slices.Equal(us, wantUS) {
		t.Errorf("consumers[+1 781 555 1212] = %v, want %v", us, wantUS)
	}
	if got := ej.Consumers["+44 20 7946 0958"]; !slices.Equal(got, []string{uk.ID + ".wav"}) {
		t.Errorf("consumers[uk] = %v", got)
	}
	if _, ok := ej.Consumers["617 555 1313"]; ok {
		t.Error("the failed contact has a consumer entry")
	}

	// Tenant scope: acme sees only its own.
	out = run(t, f, OpExport, contactCenterRequest, Principal{Tenant: "acme", Actor: "tenant:acme"})
	if out.Archive.Messages != 1 {
		t.Errorf("acme export: %d messages", out.Archive.Messages)
	}
	if _, err := f.svc.OpenArchive(out.Archive.ID, "default"); err == nil {
		t.Error("tenant default opened acme's archive")
	}
	a, err := f.svc.OpenArchive(out.Archive.ID, "acme")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := f.svc.OpenArchive("../../etc/passwd", ""); err == nil {
		t.Error("path in archive id accepted")
	}
	// Archives expire.
	f.advance(25 * time.Hour)
	old := time.Now().Add(-48 * time.Hour)
	ents, _ := os.ReadDir(f.svc.exportDir())
	for _, e := range ents {
		os.Chtimes(filepath.Join(f.svc.exportDir(), e.Name()), old, old)
	}
	st, err := f.svc.Sweep(t.Context())
	if err != nil || st.Archives != 2 {
		t.Errorf("sweep expired %d archives, %v", st.Archives, err)
	}
}

func readZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	return out
}

func TestForgetUndoPurge(t *testing.T) {
	f := newFixture(t, nil)
	ctx := t.Context()
	a1 := f.deposit(t, "default", "1001", "+17815551212")
	a2 := f.deposit(t, "default", "8000", "+17815551212")
	keep := f.deposit(t, "default", "1001", "+16175551414")
	f.taken()

	out := run(t, f, OpForget, contactCenterRequest, Principal{Actor: "operator"})
	if got := responses(out); !slices.Equal(got, []string{Success, ErrDeviceFormat, SuccessNotFound, SuccessNotFound, SuccessNotFound}) {
		t.Fatalf("forget responses %q", got)
	}
	if out.Doc.Requests[0].Result[0].Messages != 2 {
		t.Errorf("forget result %+v", out.Doc.Requests[0].Result[0])
	}
	// Hidden at once: counts, lists, events (group members included).
	if c, _ := f.st.CountMessages(ctx, "default", "1001"); c.New != 1 {
		t.Errorf("1001 counts after forget %+v", c)
	}
	if c, _ := f.st.CountMessages(ctx, "default", "8000"); c.New != 0 {
		t.Errorf("8000 counts after forget %+v", c)
	}
	ch := f.taken()
	if len(ch) != 2 || ch[0].Kind != store.MessageDeleted {
		t.Fatalf("forget changes %+v", ch)
	}
	for _, c := range ch {
		if c.Mailbox == "8000" && (c.MailboxType != store.TypeGroup || len(c.Members) != 2) {
			t.Errorf("group change without its members: %+v", c)
		}
	}
	if !f.blobs.Exists(a1.MediaKey) {
		t.Error("audio deleted before the grace")
	}

	// Undo within the grace.
	f.advance(30 * time.Minute)
	if _, err := f.svc.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	out = run(t, f, OpUndo, contactCenterRequest, Principal{Actor: "operator"})
	if got := responses(out); got[0] != Success || got[1] != ErrDeviceFormat || got[3] != SuccessNotFound {
		t.Fatalf("undo responses %q", got)
	}
	if c, _ := f.st.CountMessages(ctx, "default", "1001"); c.New != 2 {
		t.Errorf("1001 counts after undo %+v", c)
	}
	if ch := f.taken(); len(ch) != 2 || ch[0].Kind != store.MessageCreated {
		t.Errorf("undo changes %+v", ch)
	}

	// Forget again; after the grace the sweeper purges audio and rows.
	run(t, f, OpForget, contactCenterRequest, Principal{Actor: "operator"})
	f.advance(59 * time.Minute)
	if st, _ := f.svc.Sweep(ctx); st.Purged != 0 {
		t.Errorf("purged %d before the grace ended", st.Purged)
	}
	f.advance(2 * time.Minute)
	st, err := f.svc.Sweep(ctx)
	if err != nil || st.Purged != 2 {
		t.Fatalf("sweep purged %d, %v", st.Purged, err)
	}
	for _, m := range []store.Message{a1, a2} {
		if f.blobs.Exists(m.MediaKey) {
			t.Errorf("audio of %s survived the purge", m.ID)
		}
	}
	if !f.blobs.Exists(keep.MediaKey) {
		t.Error("another caller's audio was purged")
	}
	if ch := f.taken(); len(ch) != 2 { // the second forget's; the purge publishes nothing
		t.Errorf("changes after the purge: %+v", ch)
	}
	out = run(t, f, OpUndo, contactCenterRequest, Principal{Actor: "operator"})
	if got := responses(out); got[0] != ErrAlreadyPurged {
		t.Errorf("undo after purge: %q", got)
	}

	// Audit: every operation, no number in clear anywhere in the table.
	lines, err := f.raw.ListGDPRAudit(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, l := range lines {
		ops[l.Operation]++
	}
	if ops["forget"] != 10 || ops["undo"] != 10 || ops["purge"] != 1 {
		t.Errorf("audit operations %v", ops)
	}
	checkNoClearContacts(t, filepath.Join(f.dir, "voicemail.db"))
}

// checkNoClearContacts reads every column of the audit and tombstone tables.
func checkNoClearContacts(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+dbPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, table := range []string{"gdpr_audit", "gdpr_forgets"} {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		n := 0
		for rows.Next() {
			n++
			v := make([]any, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			if err := rows.Scan(p...); err != nil {
				t.Fatal(err)
			}
			line := strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(
				strings.ToLower(strings.TrimSpace(string(mustJSON(v)))), " ", ""), "-", ""), ".", "")
			for _, clear := range []string{"7815551212", "6175551313", "2079460958", "janedoe@example", "19202", "19202" + "27"} {
				if strings.Contains(line, clear) {
					t.Errorf("%s row holds %q in clear: %v", table, clear, v)
				}
			}
		}
		rows.Close()
		if n == 0 {
			t.Errorf("%s is empty", table)
		}
	}
}

func mustJSON(v any) []byte {
	for i, x := range v.([]any) {
		if b, ok := x.([]byte); ok {
			v.([]any)[i] = string(b)
		}
	}
	b, _ := json.Marshal(v)
	return b
}

func TestOperationTypeMismatch(t *testing.T) {
	f := newFixture(t, nil)
	f.deposit(t, "default", "1001", "+17815551212")
	req := `{"requests":[{"requestcase":"X","type":"EXPORT","contacts":[{"phone":"+1 781 555 1212"}]},
		{"requestcase":"Y","type":"DELETE","contacts":[{"phone":"+1 781 555 1212"}]},
		{"requestcase":"Z","type":"FORGET","contacts":[{}]}]}`
	out := run(t, f, OpForget, req, Principal{Actor: "operator"})
	got := responses(out)
	if !strings.HasPrefix(got[0], "ERROR: request type EXPORT") || !strings.HasPrefix(got[1], "ERROR: unknown request type") || got[2] != "ERROR: empty contact" {
		t.Errorf("responses %q", got)
	}
	if c, _ := f.st.CountMessages(t.Context(), "default", "1001"); c.New != 1 {
		t.Error("a mismatched request forgot a message")
	}
}

func TestRetentionSweep(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RetentionDays = 30 })
	ctx := t.Context()
	day := 24 * time.Hour
	f.advance(-40 * day)
	old := f.deposit(t, "default", "1001", "+17815551212")
	f.advance(35 * day)
	recent := f.deposit(t, "default", "1001", "+17815551212")
	acmeOld := f.deposit(t, "acme", "2001", "+17815551212")
	f.advance(5 * day)
	f.taken()
	if err := f.raw.SetTenantRetention(ctx, "acme", 3); err != nil {
		t.Fatal(err)
	}
	st, err := f.svc.Sweep(ctx)
	if err != nil || st.Expired != 2 {
		t.Fatalf("sweep expired %d, %v", st.Expired, err)
	}
	for _, m := range []store.Message{old, acmeOld} {
		if f.blobs.Exists(m.MediaKey) {
			t.Errorf("expired %s kept its audio", m.ID)
		}
	}
	if !f.blobs.Exists(recent.MediaKey) {
		t.Error("a recent message was deleted")
	}
	ch := f.taken()
	if len(ch) != 2 || ch[0].Kind != store.MessageDeleted {
		t.Errorf("retention changes %+v", ch)
	}
	if c, _ := f.st.CountMessages(ctx, "default", "1001"); c.New != 1 {
		t.Errorf("counts %+v", c)
	}
}

// A backlog larger than one batch goes in several transactions and
// batches, paced, and leaves nothing expired behind: every row, its audio
// and its change event.
func TestRetentionSweepBacklog(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RetentionDays, c.SweepRate = 30, 1_000_000 })
	ctx := t.Context()
	f.advance(-40 * 24 * time.Hour)
	const n = sweepBatch + 2*retentionChunk + 7
	var msgs []store.Message
	for range n {
		msgs = append(msgs, f.deposit(t, "default", "1001", "+17815551212"))
	}
	f.advance(40 * 24 * time.Hour)
	keep := f.deposit(t, "default", "1001", "+17815551212")
	f.taken()
	st, err := f.svc.Sweep(ctx)
	if err != nil || st.Expired != n {
		t.Fatalf("sweep expired %d (%v), want %d", st.Expired, err, n)
	}
	for _, m := range msgs {
		if f.blobs.Exists(m.MediaKey) {
			t.Fatalf("expired %s kept its audio", m.ID)
		}
	}
	if ch := f.taken(); len(ch) != n {
		t.Errorf("%d change events, want %d", len(ch), n)
	}
	if c, _ := f.st.CountMessages(ctx, "default", "1001"); c.New != 1 || !f.blobs.Exists(keep.MediaKey) {
		t.Errorf("the recent message: counts %+v", c)
	}
}

// The sweep keeps to its rate: at one message a second, the first
// transaction goes at once and the next one is not due for ten seconds,
// so a sweep stopped after 2 s has deleted exactly one transaction's
// worth, and says so.
func TestRetentionSweepPaced(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RetentionDays, c.SweepRate = 30, 1 })
	f.advance(-40 * 24 * time.Hour)
	for range 3 * retentionChunk {
		f.deposit(t, "default", "1001", "+17815551212")
	}
	f.advance(40 * 24 * time.Hour)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	st, _ := f.svc.Sweep(ctx)
	if st.Expired != retentionChunk {
		t.Errorf("a sweep at 1 message/s stopped after 2 s deleted %d, want one transaction (%d)", st.Expired, retentionChunk)
	}
	if c, _ := f.st.CountMessages(t.Context(), "default", "1001"); c.New != 2*retentionChunk {
		t.Errorf("left %d new messages, want %d", c.New, 2*retentionChunk)
	}
}

func TestDropFolder(t *testing.T) {
	submit := filepath.Join(t.TempDir(), "in")
	result := filepath.Join(t.TempDir(), "out")
	f := newFixture(t, func(c *Config) {
		c.SubmitDir, c.ResultDir, c.PollInterval = submit, result, 20*time.Millisecond
	})
	m := f.deposit(t, "default", "1001", "+17815551212")
	if err := f.svc.Start(); err != nil {
		t.Fatal(err)
	}
	defer f.svc.Stop()
	write := func(name, body string) {
		tmp := filepath.Join(submit, "."+name)
		if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(submit, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("export-20240601_42.json", contactCenterRequest)
	write("forget-20240601_43.json", `{"requests": [`)
	write("notes.json", contactCenterRequest)

	log := waitLog(t, filepath.Join(result, "export-20240601_42-execution-log.json"))
	if len(log.Requests) != 2 || log.Error != "" {
		t.Errorf("execution log %+v", log)
	}
	if r := log.Result[0].Result; len(r) != 3 || r[0].Messages != 1 || r[1].Response != ErrDeviceFormat {
		t.Errorf("results %+v", r)
	}
	files := readZip(t, filepath.Join(result, "export-20240601_42-archive.zip"))
	if _, ok := files[m.ID+".wav"]; !ok || files[ExportFile] == nil {
		t.Errorf("archive holds %d files", len(files))
	}
	bad := waitLog(t, filepath.Join(result, "forget-20240601_43-execution-log.json"))
	if bad.Error == "" {
		t.Errorf("bad JSON: %+v", bad)
	}
	for _, gone := range []string{"export-20240601_42.json", "forget-20240601_43.json"} {
		if _, err := os.Stat(filepath.Join(submit, gone)); !os.IsNotExist(err) {
			t.Errorf("%s still in the submit folder", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(submit, "notes.json")); err != nil {
		t.Errorf("a file with another name was touched: %v", err)
	}
}

// dropLog is an execution log read back.
type dropLog struct {
	Requests []json.RawMessage
	Result   []Request
	Error    string
}

func waitLog(t *testing.T, path string) dropLog {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err == nil {
			var l ExecutionLog
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out := dropLog{Requests: l.Requests, Error: l.Error}
			d, err := ParseResult(b)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out.Result = d.Requests
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 10 s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestKeyPersists(t *testing.T) {
	dir := t.TempDir()
	k1, err := loadKey(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	k2, err := loadKey(filepath.Join(dir, KeyFile))
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("key changed across loads: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v", fi.Mode())
	}
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("zz"), 0o600)
	if _, err := loadKey(filepath.Join(dir, KeyFile)); err == nil {
		t.Error("a damaged key was accepted")
	}
}

var _ = context.Background
