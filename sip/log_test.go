package sip_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vmserver/voicemail/internal/testlog"
)

// keysOf returns the top-level keys of a JSON log line, in order.
func keysOf(line string) ([]string, error) {
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, tok.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// TestCallLogLines: during an access call and a deposit that turns into a
// login ('*'), every line is JSON with each key once, the digit lines name
// the key, and no PIN digit is logged.
func TestCallLogLines(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	ts := startServerLog(t, nil, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	// call dials user, types each group of keys (as SIP INFO) with a pause
	// after it, and hangs up.
	call := func(user, callID string, groups ...string) {
		p := newPhone(t, ts.addr)
		p.user, p.callID = user, callID+p.callID
		p.send("INVITE", 1, p.sdp("sendrecv"))
		p.expect("SIP/2.0 200", 5*time.Second)
		p.send("ACK", 1, "")
		cseq := 1
		for _, keys := range groups {
			for _, k := range keys {
				cseq++
				p.sendBody("INFO", cseq, "application/dtmf-relay", fmt.Sprintf("Signal=%c\r\nDuration=160\r\n", k))
				p.expect("SIP/2.0 200", 5*time.Second)
			}
			time.Sleep(400 * time.Millisecond)
		}
		p.send("BYE", cseq+1, "")
		p.expect("SIP/2.0 200", 5*time.Second)
	}
	call("5555", "access-", "1001#", "9876#") // the access number: mailbox 1001, PIN 9876
	call("1001", "star-", "*", "9876#")       // a deposit, '*' during the greeting, the PIN

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), `"login failed"`) || strings.Count(buf.String(), `"access call"`) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no login attempt in the log:\n%s", buf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	digits := 0
	failed := map[any]bool{} // call_id -> a login failed: digits after it are menu keys again
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		keys, err := keysOf(line)
		if err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		seen := map[string]bool{}
		for _, k := range keys {
			if seen[k] {
				t.Errorf("key %q twice: %s", k, line)
			}
			seen[k] = true
		}
		var rec map[string]any
		_ = json.Unmarshal([]byte(line), &rec)
		if rec["msg"] == "login failed" {
			failed[rec["call_id"]] = true
		}
		if rec["msg"] != "digit" {
			continue
		}
		digits++
		switch key, _ := rec["key"].(string); key {
		case "9", "8", "7", "6":
			if !failed[rec["call_id"]] {
				t.Errorf("a PIN digit is logged: %s", line)
			}
		case "":
			t.Errorf("a digit line without its key: %s", line)
		}
	}
	if digits < 10 {
		t.Errorf("%d digit lines, want every key (15)", digits)
	}
}

// TestSipgoLogsThroughOurHandler: what the SIP library itself logs (here
// datagrams it cannot parse) comes out through the server's handler, as
// JSON; parse failures as short warnings naming the source, at most 5 a
// second per source, each counted in voicemail_sip_malformed_total.
func TestSipgoLogsThroughOurHandler(t *testing.T) {
	t.Parallel()
	var buf testlog.Buffer
	ts := startServerLog(t, nil, slog.New(slog.NewJSONHandler(&buf, nil)))
	p := newPhone(t, ts.addr)
	junk := "NOT SIP AT ALL\r\n" + strings.Repeat("X", 1000) + "\r\n\r\n"
	const sent = 30
	for range sent {
		if _, err := p.conn.WriteToUDP([]byte(junk), ts.addr); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for malformedCount(t, ts) < sent {
		if time.Now().After(deadline) {
			t.Fatalf("voicemail_sip_malformed_total = %v, want %d\n%s", malformedCount(t, ts), sent, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not JSON: %s", line)
			continue
		}
		if rec["msg"] == "failed to parse" {
			t.Errorf("sipgo's own parse line passed through: %.300s", line)
		}
		if rec["msg"] != "malformed SIP message" {
			continue
		}
		lines++
		if rec["source"] != p.conn.LocalAddr().String() || rec["level"] != "WARN" || rec["bytes"] != float64(len(junk)) {
			t.Errorf("malformed line without its source, level or size: %s", line)
		}
		if d, _ := rec["data"].(string); len(d) > 210 || !strings.HasPrefix(d, "NOT SIP") {
			t.Errorf("data not clipped to 200 bytes: %d bytes", len(d))
		}
	}
	// Sent within a second or two: 5 lines per second at most.
	if lines == 0 || lines > 15 {
		t.Errorf("%d malformed lines for %d datagrams, want 1 to 15", lines, sent)
	}
}

func malformedCount(t *testing.T, ts *testServer) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(ts.srv.Collectors()...)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == "voicemail_sip_malformed_total" {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
