package testcalls

// The cluster harness (docs/storage.md, "Several instances"): one real
// PostgreSQL, one media store (a versitygw bucket or one shared folder) and
// N `voicemail serve` processes of the built binary on loopback, each with
// its own SIP/HTTP/RTP ports and spool folder, one admin token. Instances
// can be killed with SIGKILL and started again on the same SIP port (a
// proxy's dispatcher list keeps pointing at it).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	"github.com/vmserver/voicemail/internal/pgtest"
	"github.com/vmserver/voicemail/internal/s3test"
	"github.com/vmserver/voicemail/internal/siptest"
)

// clusterMedia is where the instances keep their audio.
type clusterMedia string

const (
	mediaS3   clusterMedia = "s3"   // one versitygw bucket
	mediaFile clusterMedia = "file" // one folder shared by all instances
)

type cluster struct {
	t        *testing.T
	pg       *pgtest.Server
	dsn      string
	mode     clusterMedia
	s3       *s3test.Server
	s3cl     *minio.Client
	mediaDir string   // file mode: the shared folder
	flags    []string // --db, --media and keys, shared by every instance
	token    string
	inst     []*server
	dirs     []string  // each instance's own data (spool) folder
	rtp      []string  // each instance's --rtp-ports, kept across restarts
	procs    []*server // every process started, restarts included
}

// rtpPortsPerInstance is each instance's RTP range: two ports a call, room
// for the failover tests' calls on the two instances left.
const rtpPortsPerInstance = 400

// startCluster starts PostgreSQL, the media store and n instances, one after
// the other (the first creates the demo mailboxes).
func startCluster(t *testing.T, mode clusterMedia, n int, extra ...string) *cluster {
	t.Helper()
	requireSipp(t)
	pg, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNotInstalled) {
		skipOrFail(t, err.Error())
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(pg.Stop)
	c := &cluster{t: t, pg: pg, dsn: pg.NewDatabase(t), mode: mode, token: randToken()}
	c.flags = []string{"--db", c.dsn, "--recording-min-seconds", "1", "--log-level", "info",
		// Takeover of a dead instance's subscriptions within ~3 s (docs/mwi.md).
		"--cluster-heartbeat", "1s"}
	switch mode {
	case mediaS3:
		c.s3 = s3test.Start(t)
		c.s3cl = c.s3.Client(t)
		c.flags = append(c.flags, "--media", c.s3.URL("vm"),
			"--s3-access-key", c.s3.AccessKey, "--s3-secret-key", c.s3.SecretKey)
	case mediaFile:
		c.mediaDir = t.TempDir()
		c.flags = append(c.flags, "--media", "file://"+c.mediaDir)
	default:
		t.Fatalf("unknown media mode %q", mode)
	}
	c.flags = append(c.flags, extra...)
	// One set of keys for every instance, as in deploy/local/cluster.sh: what one
	// seals (webhook secrets, GDPR audit), the others open.
	keys := map[string]string{"webhook_key": randToken() + randToken(), "gdpr_key": randToken() + randToken()}
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		for name, k := range keys {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(k+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		c.dirs = append(c.dirs, dir)
		base := portBlock(t, rtpPortsPerInstance)
		c.rtp = append(c.rtp, fmt.Sprintf("%d-%d", base, base+rtpPortsPerInstance-1))
		c.inst = append(c.inst, nil)
		c.start(i, 0)
	}
	// Short greetings on the demo mailboxes: deposits reach the beep fast.
	for _, mb := range []string{"1001", "1002"} {
		c.putGreeting(mb, "unavailable", siptest.Tone(unavailableHz, 4000, 6000))
	}
	return c
}

// start starts instance i on its own data folder; sipPort 0 picks a new
// port, else the instance listens there again (after a kill).
func (c *cluster) start(i, sipPort int) *server {
	c.t.Helper()
	flags := append([]string{"--auth-admin-token", c.token, "--rtp-ports", c.rtp[i]}, c.flags...)
	if sipPort != 0 {
		flags = append(flags, "--sip-listen", fmt.Sprintf("udp:127.0.0.1:%d,tcp:127.0.0.1:%d", sipPort, sipPort))
	}
	s := startServer(c.t, c.dirs[i], flags...)
	s.token = c.token
	if sipPort != 0 {
		s.sipPort = sipPort
	}
	c.inst[i] = s
	c.procs = append(c.procs, s)
	return s
}

// restart starts a killed instance again on its SIP port and data folder.
func (c *cluster) restart(i int) *server {
	c.t.Helper()
	return c.start(i, c.inst[i].sipPort)
}

// putGreeting uploads a greeting through the API (it lands in the shared media).
func (c *cluster) putGreeting(mailbox, kind string, pcm []int16) {
	c.t.Helper()
	s := c.inst[0]
	req, _ := http.NewRequest("PUT", s.url("/api/v1/mailboxes/"+mailbox+"/greetings/"+kind), bytes.NewReader(makeWAV(pcm)))
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "audio/wav")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		c.t.Fatalf("PUT greeting %s/%s: %d", mailbox, kind, resp.StatusCode)
	}
}

// dbRow is one messages row.
type dbRow struct{ ID, Mailbox, CallerID, MediaKey string }

// rows reads the messages table of the shared database.
func (c *cluster) rows() []dbRow {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		c.t.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	r, err := conn.Query(ctx, `SELECT id, mailbox, caller_id, media_key FROM messages ORDER BY id`)
	if err != nil {
		c.t.Fatalf("query messages: %v", err)
	}
	defer r.Close()
	var out []dbRow
	for r.Next() {
		var m dbRow
		if err := r.Scan(&m.ID, &m.Mailbox, &m.CallerID, &m.MediaKey); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, m)
	}
	if err := r.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// messageKey matches the key of a message's audio (not a greeting, not a
// temporary upload).
var messageKey = regexp.MustCompile(`^[^/]+/[^/]+/[^/]+\.wav$`)

// objects lists the message audio keys present in the shared media, plus
// everything else found there that is not a greeting (temporary files).
func (c *cluster) objects() (keys, other []string) {
	c.t.Helper()
	var all []string
	switch c.mode {
	case mediaS3:
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for o := range c.s3cl.ListObjects(ctx, c.s3.Bucket, minio.ListObjectsOptions{Prefix: "vm/", Recursive: true}) {
			if o.Err != nil {
				c.t.Fatalf("list bucket: %v", o.Err)
			}
			all = append(all, strings.TrimPrefix(o.Key, "vm/"))
		}
	case mediaFile:
		_ = filepath.WalkDir(c.mediaDir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			rel, _ := filepath.Rel(c.mediaDir, p)
			all = append(all, filepath.ToSlash(rel))
			return nil
		})
	}
	for _, k := range all {
		switch {
		case strings.Contains(k, "/greetings/"):
		case messageKey.MatchString(k):
			keys = append(keys, k)
		default:
			other = append(other, k)
		}
	}
	sort.Strings(keys)
	return keys, other
}

// mediaMismatch compares the media with the table: objects without a row,
// rows without an object, and leftovers that are neither.
func (c *cluster) mediaMismatch() (orphans, missing, leftovers []string) {
	c.t.Helper()
	keys, other := c.objects()
	rows := c.rows()
	have := map[string]bool{}
	for _, k := range keys {
		have[k] = true
	}
	want := map[string]bool{}
	for _, r := range rows {
		want[r.MediaKey] = true
		if !have[r.MediaKey] {
			missing = append(missing, r.ID+" → "+r.MediaKey)
		}
	}
	for _, k := range keys {
		if !want[k] {
			orphans = append(orphans, k)
		}
	}
	return orphans, missing, other
}

// waitConsistent waits until every object has a row and every row an
// object, and reports what remains after timeout.
func (c *cluster) waitConsistent(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		orphans, missing, leftovers := c.mediaMismatch()
		if len(orphans) == 0 && len(missing) == 0 && len(leftovers) == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Errorf("media and database disagree %v after recovery (%s media):\n objects without a row: %v\n rows without an object: %v\n other files left in the media: %v",
				timeout, c.mode, orphans, missing, leftovers)
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sippDeposits runs the cluster deposit scenario against addr: calls calls,
// at most limit at once, rate new calls per second, each sending pauseMs of
// the clean PCMU capture; callers are prefix+1, prefix+2…
func sippDeposits(t *testing.T, addr, mailbox, prefix string, calls, limit, rate, pauseMs int) *sippProc {
	t.Helper()
	dir := t.TempDir()
	args := []string{"-sf", filepath.Join(testDir, "scenarios", "cluster_deposit.xml"),
		"-m", fmt.Sprint(calls), "-l", fmt.Sprint(limit), "-r", fmt.Sprint(rate), "-rp", "1000",
		"-timeout_error", "-timeout", "90s", "-nostdin", "-recv_timeout", "20000",
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-mp", fmt.Sprint(portBlock(t, 4)),
		"-s", mailbox,
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"),
		"-watchdog_minor_maxtriggers", "100000", "-watchdog_major_maxtriggers", "100000",
		"-key", "caller", prefix, "-key", "codec_pt", "0", "-key", "codec_name", "PCMU",
		"-key", "pcap", pcapPath("audio_pcmu.pcap"), "-key", "pause_ms", fmt.Sprint(pauseMs),
		addr,
	}
	return launchSipp(t, dir, args)
}

// sippCall is what the SIP trace of one call of a multi-call sipp run says.
type sippCall struct {
	callID   string
	caller   string // the From user
	answered bool   // 200 to the INVITE
	contact  string // host:port of the Contact of that 200 (the instance)
	byeOK    bool   // 200 to the BYE
}

var (
	reCallID  = regexp.MustCompile(`(?mi)^(?:Call-ID|i):\s*(\S+)`)
	reCSeq    = regexp.MustCompile(`(?mi)^CSeq:\s*(\d+)\s+(\w+)`)
	reFrom    = regexp.MustCompile(`(?mi)^(?:From|f):[^<]*<sip:([^@>]+)@`)
	reContact = regexp.MustCompile(`(?mi)^(?:Contact|m):[^<]*<sip:(?:[^@>]+@)?([^;>]+)`)
)

// sippCalls reads sipp's message trace into one record per Call-ID.
func sippCalls(msgLog string) map[string]*sippCall {
	calls := map[string]*sippCall{}
	for _, block := range regexp.MustCompile(`(?m)^-{20,}.*$`).Split(msgLog, -1) {
		block = strings.ReplaceAll(block, "\r\n", "\n")
		received := strings.Contains(block, "message received")
		i := strings.Index(block, "\n\n")
		if i < 0 {
			continue
		}
		msg := strings.TrimLeft(block[i:], "\n")
		m := reCallID.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		c := calls[m[1]]
		if c == nil {
			c = &sippCall{callID: m[1]}
			calls[m[1]] = c
		}
		if f := reFrom.FindStringSubmatch(msg); f != nil && c.caller == "" {
			c.caller = f[1]
		}
		cs := reCSeq.FindStringSubmatch(msg)
		if !received || !strings.HasPrefix(msg, "SIP/2.0 200") || cs == nil {
			continue
		}
		switch cs[2] {
		case "INVITE":
			c.answered = true
			if ct := reContact.FindStringSubmatch(msg); ct != nil {
				c.contact = ct[1]
			}
		case "BYE":
			c.byeOK = true
		}
	}
	return calls
}

// digits keeps the digits of a caller id ("+14155501" and "sip:+14155501@h"
// compare equal).
func digits(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		s = s[:i]
	}
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// checkStretch requires the recording to be a stretch of the clean PCMU
// source, sample for sample (the last frame may be cut by the BYE).
func checkStretch(t *testing.T, what string, wav []byte) {
	t.Helper()
	w, err := parseWAV(wav)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	rec := w.samples
	if len(rec) < 8000 {
		t.Errorf("%s: %d samples, want at least 1 s", what, len(rec))
		return
	}
	rec = rec[:len(rec)-160]
	dec := decodedSource(siptest.PCMU, len(source))
	off, ok := findOffset(rec, dec)
	if !ok {
		t.Errorf("%s: the audio (%d samples) is not found in the sent audio", what, len(rec))
		return
	}
	if n, first := mismatches(rec, dec, off, 0, len(rec), nil); n > 0 {
		t.Errorf("%s: %d samples differ from the sent audio, first at %d", what, n, first)
	}
}

// signedHooks is a webhook receiver (signature checked) registered on s for
// message_created.
func signedHooks(t *testing.T, s *server) (*hookReceiver, string) {
	t.Helper()
	secret := "cluster-" + randToken()
	h := startHookReceiver(t, "127.0.0.1:0", secret)
	id := s.addWebhook(t, "http://"+h.ln.Addr().String()+"/hook", secret, "message_created")
	return h, id
}

// checkOncePerMessage: every message id got a message_created, one event id
// per message (redeliveries of the same event id are allowed and reported).
// ids maps each message id to a description for the report.
func checkOncePerMessage(t *testing.T, h *hookReceiver, ids map[string]string, timeout time.Duration) (ok bool) {
	t.Helper()
	ok = true
	fail := func(format string, args ...any) {
		t.Helper()
		ok = false
		t.Errorf(format, args...)
	}
	deadline := time.Now().Add(timeout)
	for {
		h.mu.Lock()
		byMsg := map[string]map[string]int{}
		for _, e := range h.events {
			if e.Type != "message_created" {
				continue
			}
			id := e.objectID()
			if byMsg[id] == nil {
				byMsg[id] = map[string]int{}
			}
			byMsg[id][e.ID]++
		}
		bad := append([]string(nil), h.bad...)
		h.mu.Unlock()
		var absent []string
		for id, what := range ids {
			if len(byMsg[id]) == 0 {
				absent = append(absent, id+" ("+what+")")
			}
		}
		if len(absent) == 0 || time.Now().After(deadline) {
			if len(absent) > 0 {
				fail("webhook: no message_created for %d of %d messages within %v: %v", len(absent), len(ids), timeout, absent)
			}
			if len(bad) > 0 {
				fail("webhook receiver refused deliveries: %v", bad)
			}
			dups := 0
			for id, evs := range byMsg {
				if _, known := ids[id]; !known {
					fail("webhook: message_created for %s, which has no row (events %v)", id, evs)
				}
				if len(evs) > 1 {
					fail("webhook: message %s created by %d different events %v (want one event id per message)", id, len(evs), evs)
				}
				for ev, n := range evs {
					if n > 1 {
						dups += n - 1
						t.Logf("webhook: event %s (message %s) delivered %d times (at-least-once, deduplicated by event id)", ev, id, n)
					}
				}
			}
			t.Logf("webhook: %d distinct messages created, %d redeliveries", len(byMsg), dups)
			return ok
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// keyOf is the media key of a message.
func keyOf(mailbox, id string) string { return "default/" + mailbox + "/" + id + ".wav" }

// waitFile is a small helper for tools that write a file when ready.
func waitFile(path string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// webhookJobs describes the queued webhook jobs whose body names id (for a
// report: an event never queued differs from one held by a dead claimer).
func (c *cluster) webhookJobs(id string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		return err.Error()
	}
	defer conn.Close(ctx)
	r, err := conn.Query(ctx, `SELECT event_id, attempts, next_at FROM webhook_jobs WHERE position($1 in convert_from(body, 'UTF8')) > 0`, id)
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var ev string
		var attempts, next int64
		if err := r.Scan(&ev, &attempts, &next); err != nil {
			return err.Error()
		}
		out = append(out, fmt.Sprintf("job for event %s, %d attempts, next_at %d (now %d)", ev, attempts, next, time.Now().UnixMilli()))
	}
	if len(out) == 0 {
		return "no queued job"
	}
	return strings.Join(out, "; ")
}
