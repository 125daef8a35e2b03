package testcalls

// GDPR end to end (docs/gdpr.md): messages left over SIP from several
// callers, then Export Me / Forget Me / Undo through the REST API, the
// `voicemail gdpr` CLI and the drop folder, watched by an MWI subscriber
// (NOTIFY), the SSE stream, the API and the files on disk; the purge after
// a short grace; retention of a back-dated message.

import (
	"archive/zip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// gdprRequestFile is shaped like the contact-center example: two FORGET
// cases; 617 555 1313 has no country code and must fail on its own.
const gdprRequestFile = `{
  "requests": [
    {
      "requestcase": "CASE-2024-0001",
      "type": "FORGET",
      "accountid": "ACME01",
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

var wantGDPRResponses = []string{"SUCCESS", "ERROR: incorrect device format", "SUCCESS: not found", "SUCCESS", "SUCCESS: not found"}

// depositFrom leaves a ~1.5 s message in mailbox from the caller number.
func depositFrom(t *testing.T, s *server, mailbox, caller string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := siptest.Dial(ctx, siptest.Config{
		Server:     s.sipAddr(),
		RequestURI: fmt.Sprintf("sip:%s@%s", mailbox, s.sipAddr()),
		From:       `"GDPR test" <sip:` + caller + `@127.0.0.1>`,
	})
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Errorf("deposit INVITE to %s answered %d", mailbox, c.Status())
		return
	}
	time.Sleep(300 * time.Millisecond)
	if err := skipGreeting(ctx, c); err != nil {
		t.Error(err)
		return
	}
	if err := c.SendAudio(ctx, siptest.Tone(700, 12000, 6000)); err != nil {
		t.Error(err)
		return
	}
	if _, err := c.Bye(ctx); err != nil {
		t.Error(err)
	}
}

// gdprAPIAnswer reads the result file of the contact-center format
// ({"requests": [as received], "result": [request + response per
// contact]}) and the API's summary fields.
type gdprAPIAnswer struct {
	Requests []struct {
		RequestCase string `json:"requestcase"`
		AccountID   string `json:"accountid"`
	} `json:"requests"`
	Result []struct {
		RequestCase string `json:"requestcase"`
		AccountID   string `json:"accountid"`
		Contacts    []struct {
			Phone     string   `json:"phone"`
			Response  string   `json:"response"`
			Messages  int      `json:"messages"`
			Mailboxes []string `json:"mailboxes"`
		} `json:"contacts"`
	} `json:"result"`
	ArchiveURL string `json:"archive_url"`
	Messages   int    `json:"messages"`
}

func (a gdprAPIAnswer) responses() []string {
	var out []string
	for _, r := range a.Result {
		for _, x := range r.Contacts {
			out = append(out, x.Response)
		}
	}
	return out
}

func (s *server) gdpr(t *testing.T, op string) gdprAPIAnswer {
	t.Helper()
	var a gdprAPIAnswer
	code, body, err := s.api("POST", "/api/v1/gdpr/"+op, json.RawMessage(gdprRequestFile), &a)
	if err != nil || code != 200 {
		t.Fatalf("POST gdpr/%s: %d %v %s", op, code, err, body)
	}
	return a
}

func messageIDs(ms []apiMessage) []string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	sort.Strings(ids)
	return ids
}

// checkExport reads an export (a zip, or the folder the CLI extracted it
// to) and compares its WAVs and export.json with the messages.
func checkExport(t *testing.T, what string, files map[string][]byte, us, uk []string) {
	t.Helper()
	var ej struct {
		CaseID    string              `json:"caseid"`
		Consumers map[string][]string `json:"consumers"`
		Messages  []struct {
			ID, Mailbox, File string
			CallerE164        string `json:"caller_e164"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(files["export.json"], &ej); err != nil {
		t.Fatalf("%s: export.json: %v", what, err)
	}
	var wavs []string
	for name, b := range files {
		if strings.HasSuffix(name, ".wav") {
			wavs = append(wavs, name)
			if len(b) < 44 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
				t.Errorf("%s: %s is not a WAV", what, name)
			}
		}
	}
	sort.Strings(wavs)
	var want []string
	for _, id := range append(append([]string{}, us...), uk...) {
		want = append(want, id+".wav")
	}
	sort.Strings(want)
	if !slices.Equal(wavs, want) {
		t.Errorf("%s: WAVs %v, want %v", what, wavs, want)
	}
	got := ej.Consumers["+1 781 555 1212"]
	sort.Strings(got)
	var wantUS []string
	for _, id := range us {
		wantUS = append(wantUS, id+".wav")
	}
	sort.Strings(wantUS)
	if ej.CaseID != "CASE-2024-0001,CASE-2024-0002" || !slices.Equal(got, wantUS) || len(ej.Consumers["+44 20 7946 0958"]) != len(uk) || len(ej.Messages) != len(want) {
		t.Errorf("%s: export.json %+v", what, ej)
	}
}

func zipFiles(t *testing.T, b []byte, path string) map[string][]byte {
	t.Helper()
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	zr, err := zip.NewReader(strings.NewReader(string(b)), int64(len(b)))
	if err != nil {
		t.Fatalf("zip: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		buf, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		rc.Close()
		out[f.Name] = buf
	}
	return out
}

// openDB opens the server's database for a direct look (or a back-dating write).
func openDB(t *testing.T, s *server) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.dataDir, "voicemail.db")+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestGDPRExportForgetUndoPurge(t *testing.T) {
	t.Parallel()
	submit, results := t.TempDir(), t.TempDir()
	s := mwiServer(t, "", "--gdpr-submit-dir", submit, "--gdpr-result-dir", results, "--gdpr-sweep-interval", "200ms")

	// Two messages from +1 781 555 1212 in 1001, one in 1002, one from
	// +44 20 7946 0958 in group 8000, and one from someone else in 1001.
	var wg sync.WaitGroup
	for _, d := range [][2]string{{"1001", "+17815551212"}, {"1001", "17815551212"}, {"1002", "+17815551212"},
		{"8000", "+442079460958"}, {"1001", "+16175551414"}} {
		wg.Add(1)
		go func() { defer wg.Done(); depositFrom(t, s, d[0], d[1]) }()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	all1001 := s.waitMessages(t, "1001", 3, 20*time.Second)
	m1002 := s.waitMessages(t, "1002", 1, 20*time.Second)
	m8000 := s.waitMessages(t, "8000", 1, 20*time.Second)
	var us, keep []string
	for _, m := range all1001 {
		if m.CallerID == "+16175551414" {
			keep = append(keep, m.ID)
		} else {
			us = append(us, m.ID)
		}
	}
	us = append(us, m1002[0].ID)
	uk := []string{m8000[0].ID}
	if len(us) != 3 || len(keep) != 1 {
		t.Fatalf("deposits: %+v", all1001)
	}

	phone := newUDPTarget(t, 0)
	subscribeUDP(t, phone, s.sipAddr(), "1001")
	phone.wait(t, "Voice-Message: 3/0")
	events := s.sseClient(t, s.token, "")

	// Export Me through the API.
	a := s.gdpr(t, "export")
	if got := a.responses(); !slices.Equal(got, wantGDPRResponses) {
		t.Fatalf("export responses %q, want %q", got, wantGDPRResponses)
	}
	if a.Requests[0].AccountID != "ACME01" || a.Result[0].AccountID != "ACME01" || a.Result[0].Contacts[0].Messages != 3 {
		t.Errorf("export echo %+v", a.Requests[0])
	}
	code, zipBody, err := s.api("GET", a.ArchiveURL, nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET %s: %d %v", a.ArchiveURL, code, err)
	}
	checkExport(t, "API export", zipFiles(t, zipBody, ""), us, uk)

	// Forget Me: gone at once from the API, the counts (NOTIFY) and the events.
	from := phone.count()
	a = s.gdpr(t, "forget")
	if got := a.responses(); !slices.Equal(got, wantGDPRResponses) {
		t.Fatalf("forget responses %q", got)
	}
	phone.waitAt(t, "Voice-Message: 1/0", from)
	if got := messageIDs(s.messages(t, "1001")); !slices.Equal(got, keep) {
		t.Errorf("1001 after forget: %v, want only %v", got, keep)
	}
	if len(s.messages(t, "1002")) != 0 || len(s.messages(t, "8000")) != 0 {
		t.Error("forgotten messages still listed in 1002 or 8000")
	}
	if code, _, _ := s.api("GET", "/api/v1/mailboxes/1002/messages/"+m1002[0].ID, nil, nil); code != 404 {
		t.Errorf("GET a forgotten message: %d", code)
	}
	events.wait(t, "message_deleted of the forgotten group message", 10*time.Second, func(e apiEvent) bool {
		return e.Type == "message_deleted" && e.objectID() == uk[0] && e.MailboxType == "group"
	})
	if _, err := os.Stat(mediaPath(s, "1002", m1002[0].ID)); err != nil {
		t.Errorf("audio removed before the grace: %v", err)
	}

	// Undo within the grace: back everywhere.
	from = phone.count()
	a = s.gdpr(t, "undo")
	if got := a.responses(); !slices.Equal(got, wantGDPRResponses) {
		t.Fatalf("undo responses %q", got)
	}
	phone.waitAt(t, "Voice-Message: 3/0", from)
	events.wait(t, "message_created of a restored message", 10*time.Second, func(e apiEvent) bool {
		return e.Type == "message_created" && e.objectID() == m1002[0].ID
	})
	if len(s.messages(t, "1002")) != 1 || len(s.messages(t, "8000")) != 1 {
		t.Error("undo did not restore 1002 and 8000")
	}

	// The CLI against the live server: export, forget, undo. The example's
	// 617 555 1313 answers ERROR, so each run exits 3.
	req := filepath.Join(t.TempDir(), "request.json")
	if err := os.WriteFile(req, []byte(gdprRequestFile), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "export")
	stdout, stderr, rc := s.cli(t, []string{"VOICEMAIL_TOKEN="}, "gdpr", "-p", "exportme", "-i", req, "-o", out, "-u", s.token)
	if rc != 3 {
		t.Fatalf("gdpr exportme: exit %d\n%s%s", rc, stdout, stderr)
	}
	files := map[string][]byte{}
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		if e.Name() == "output.json" || e.Name() == "execution.log" {
			continue
		}
		files[e.Name()], _ = os.ReadFile(filepath.Join(out, e.Name()))
	}
	checkExport(t, "CLI export", files, us, uk)
	checkCLIOutput(t, out, "exportme")
	if _, stderr, rc := s.cli(t, nil, "gdpr", "-p", "forgetme", "-i", req); rc != 2 || !strings.Contains(stderr, "-o") {
		t.Errorf("gdpr without -o: exit %d %q", rc, stderr)
	}
	from = phone.count()
	out = filepath.Join(t.TempDir(), "forget")
	if stdout, stderr, rc := s.cli(t, nil, "gdpr", "-p", "forgetme", "-i", req, "-o", out, "--confirm"); rc != 3 {
		t.Fatalf("gdpr forgetme: exit %d\n%s%s", rc, stdout, stderr)
	}
	checkCLIOutput(t, out, "forgetme")
	phone.waitAt(t, "Voice-Message: 1/0", from)
	from = phone.count()
	out = filepath.Join(t.TempDir(), "undo")
	if stdout, stderr, rc := s.cli(t, nil, "gdpr", "-p", "undoforget", "-i", req, "-o", out); rc != 3 {
		t.Fatalf("gdpr undoforget: exit %d\n%s%s", rc, stdout, stderr)
	}
	checkCLIOutput(t, out, "undoforget")
	phone.waitAt(t, "Voice-Message: 3/0", from)

	// The drop folder: an export request file gives its execution log and archive.
	tmp := filepath.Join(submit, ".incoming")
	if err := os.WriteFile(tmp, []byte(gdprRequestFile), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(submit, "export-20240601_17.json")); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(results, "export-20240601_17-execution-log.json")
	waitFor(t, "the drop folder's execution log", 20*time.Second, func() bool { _, err := os.Stat(logPath); return err == nil })
	b, _ := os.ReadFile(logPath)
	var elog gdprAPIAnswer
	if err := json.Unmarshal(b, &elog); err != nil || len(elog.Requests) != 2 || len(elog.Result) != 2 ||
		!slices.Equal(elog.responses(), wantGDPRResponses) || elog.Result[0].Contacts[1].Phone != "617 555 1313" {
		t.Errorf("execution log %v: %s", err, b)
	}
	checkResultKeys(t, "execution log", b)
	checkExport(t, "drop-folder archive", zipFiles(t, nil, filepath.Join(results, "export-20240601_17-archive.zip")), us, uk)
	if _, err := os.Stat(filepath.Join(submit, "export-20240601_17.json")); !os.IsNotExist(err) {
		t.Errorf("the request file is still in the submit folder: %v", err)
	}

	// The audit trail keeps every operation, and no number in clear.
	checkAudit(t, s, map[string]int{"export": 15, "forget": 10, "undo": 10})

	// Restart with a short grace: forget, the sweeper purges audio and
	// rows, and undo then answers "already purged".
	s.stop()
	s = mwiServer(t, s.dataDir, "--gdpr-forget-grace", "1s", "--gdpr-sweep-interval", "200ms")
	a = s.gdpr(t, "forget")
	if a.Messages != 4 {
		t.Fatalf("forget before the purge: %d messages", a.Messages)
	}
	db := openDB(t, s)
	waitFor(t, "the purge", 20*time.Second, func() bool {
		var n int
		return db.QueryRow(`SELECT count(*) FROM gdpr_hidden`).Scan(&n) == nil && n == 0
	})
	for _, id := range us[:2] {
		if _, err := os.Stat(mediaPath(s, "1001", id)); !os.IsNotExist(err) {
			t.Errorf("audio of %s survived the purge: %v", id, err)
		}
	}
	if _, err := os.Stat(mediaPath(s, "1001", keep[0])); err != nil {
		t.Errorf("another caller's audio was purged: %v", err)
	}
	var rows int
	db.QueryRow(`SELECT count(*) FROM messages WHERE caller_id LIKE '%7815551212' OR caller_e164 LIKE '%7815551212'`).Scan(&rows)
	if rows != 0 {
		t.Errorf("%d rows keep the purged caller id", rows)
	}
	a = s.gdpr(t, "undo")
	if got := a.responses(); got[0] != "ERROR: already purged" || got[1] != "ERROR: incorrect device format" || got[3] != "ERROR: already purged" {
		t.Errorf("undo after the purge: %q", got)
	}
	checkAudit(t, s, map[string]int{"purge": 1})
}

// checkCLIOutput: output.json holds the echoed requests with their results,
// execution.log a line per contact.
func checkCLIOutput(t *testing.T, dir, op string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "output.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out gdprAPIAnswer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s output.json: %v", op, err)
	}
	if got := out.responses(); !slices.Equal(got, wantGDPRResponses) || out.Requests[0].AccountID != "ACME01" {
		t.Errorf("%s output.json: %s", op, b)
	}
	checkResultKeys(t, op+" output.json", b)
	log, err := os.ReadFile(filepath.Join(dir, "execution.log"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(log), "case CASE-2024-") != 5 || !strings.Contains(string(log), "ERROR: incorrect device format") || !strings.Contains(string(log), op+" done") {
		t.Errorf("%s execution.log:\n%s", op, log)
	}
}

// checkAudit reads every column of the audit table: at least the counts
// per operation, and none of the contacts in clear.
func checkAudit(t *testing.T, s *server, atLeast map[string]int) {
	t.Helper()
	db := openDB(t, s)
	rows, err := db.Query(`SELECT * FROM gdpr_audit`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	ops := map[string]int{}
	for rows.Next() {
		v := make([]any, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			t.Fatal(err)
		}
		var line []string
		for i, c := range cols {
			line = append(line, asString(v[i]))
			if c == "operation" {
				ops[asString(v[i])]++
			}
		}
		flat := strings.NewReplacer(" ", "", "-", "", ".", "", "(", "", ")", "").Replace(strings.Join(line, "|"))
		for _, clear := range []string{"7815551212", "6175551313", "2079460958", "janedoe@example", "19202"} {
			if holdsClear(flat, clear) {
				t.Errorf("audit row holds %q in clear: %v", clear, line)
			}
		}
	}
	for op, n := range atLeast {
		if ops[op] < n {
			t.Errorf("audit has %d %s lines, want at least %d (all: %v)", ops[op], op, n, ops)
		}
	}
}

// holdsClear reports whether row holds the contact. The five-digit
// extension counts only with no digit beside it: a row's nanosecond
// timestamp holds any five digits now and then (1796231731920223827 did).
func holdsClear(row, contact string) bool {
	for i := 0; ; {
		j := strings.Index(row[i:], contact)
		if j < 0 {
			return false
		}
		at, end := i+j, i+j+len(contact)
		digit := func(k int) bool { return k >= 0 && k < len(row) && row[k] >= '0' && row[k] <= '9' }
		if len(contact) > 5 || (!digit(at-1) && !digit(end)) {
			return true
		}
		i = at + 1
	}
}

// Retention: a back-dated message is deleted by the sweeper through the
// common path (NOTIFY, message_deleted), the recent one stays.
func TestGDPRRetentionExpiresBackdated(t *testing.T) {
	t.Parallel()
	s := mwiServer(t, "", "--gdpr-sweep-interval", "200ms")
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); depositFrom(t, s, "1002", "+16175550100") }()
	}
	wg.Wait()
	msgs := s.waitMessages(t, "1002", 2, 20*time.Second)
	phone := newUDPTarget(t, 0)
	subscribeUDP(t, phone, s.sipAddr(), "1002")
	phone.wait(t, "Voice-Message: 2/0")
	events := s.sseClient(t, s.token, "?mailbox=1002")

	old := msgs[0].ID
	db := openDB(t, s)
	if _, err := db.Exec(`UPDATE messages SET received_at = received_at - ? WHERE id = ?`, int64(3*24*time.Hour), old); err != nil {
		t.Fatal(err)
	}
	from := phone.count()
	if code, body, err := s.api("PATCH", "/api/v1/mailboxes/1002", map[string]any{"retention_days": 2}, nil); err != nil || code != 200 {
		t.Fatalf("PATCH retention_days: %d %v %s", code, err, body)
	}
	phone.waitAt(t, "Voice-Message: 1/0", from)
	events.wait(t, "message_deleted by retention", 10*time.Second, func(e apiEvent) bool {
		return e.Type == "message_deleted" && e.objectID() == old
	})
	if got := messageIDs(s.messages(t, "1002")); !slices.Equal(got, []string{msgs[1].ID}) {
		t.Errorf("1002 after retention: %v, want %v", got, msgs[1].ID)
	}
	if _, err := os.Stat(mediaPath(s, "1002", old)); !os.IsNotExist(err) {
		t.Errorf("the expired message's audio is still there: %v", err)
	}
	checkAudit(t, s, map[string]int{"retention": 1})
}

func TestHoldsClear(t *testing.T) {
	for _, c := range []struct {
		row, contact string
		want         bool
	}{
		{"9|1796231731920223827|client:x|export", "19202", false},
		{"9|1796231731920223827|19202|export", "19202", true},
		{"9|x|+19202", "19202", true},
		{"call from 17815551212", "7815551212", true},
		{"nothing here", "7815551212", false},
	} {
		if got := holdsClear(c.row, c.contact); got != c.want {
			t.Errorf("holdsClear(%q, %q) = %v, want %v", c.row, c.contact, got, c.want)
		}
	}
}
