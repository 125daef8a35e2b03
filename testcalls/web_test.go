package testcalls

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/vmserver/voicemail/internal/siptest"
)

// The web inbox and admin console (issue 19) in a real headless Chromium
// against the real binary. Each test saves screenshots under
// testcalls/out/<test>/.

const gdprForgetWeb = `{"requests": [{"requestcase": "WEB-1", "type": "FORGET",
  "contacts": [{"phone": "+1 781 555 1212"}, {"phone": "555"}]}]}`

func msgSel(id string) string { return fmt.Sprintf(`#messages li[data-id="%s"]`, id) }

// jsHas is a JavaScript test that a selector matches.
func jsHas(sel string) string { return fmt.Sprintf(`document.querySelector(%q) !== null`, sel) }

// TestWebInbox: sign in as 1001; a sipp deposit appears in the open page
// without a reload; it plays to the end from the bytes the server stores;
// move to Old; delete, undo, delete for good; an operator's GDPR forget in
// the admin console (another tab) removes a message from the open inbox.
func TestWebInbox(t *testing.T) {
	requireSipp(t)
	t.Parallel()
	s := mwiServer(t, "") // 1.5 s messages are kept
	if code, body, err := s.api("PATCH", "/api/v1/mailboxes/1001", map[string]string{"timezone": "America/New_York"}, nil); err != nil || code != 200 {
		t.Fatalf("set the time zone: %d %v %s", code, err, body)
	}
	tb := newBrowser(t, s)
	tb.open("/")
	tb.shot("01-sign-in")
	tb.signIn("1001", "1234")
	tb.waitJS("the inbox, live", `!document.querySelector('#inbox-view').hidden && document.querySelector('#live').textContent === 'live'`, 15*time.Second)
	tb.eval(`window.noReload = 1`, nil)
	media := tb.mediaResponses()

	// A deposit by sipp shows up live, with the count in the tab title.
	runSipp(t, s, "uac_deposit.xml", "1001", "codec_pt", "0", "codec_name", "PCMU",
		"pcap", pcapPath("audio_pcmu.pcap"), "pause_ms", pauseFor("audio_pcmu.pcap"))
	m := s.waitMessages(t, "1001", 1, 20*time.Second)[0]
	sel := msgSel(m.ID)
	tb.waitJS("the deposit in the open page", jsHas(sel), 20*time.Second)
	var marker int
	tb.eval(`window.noReload ?? 0`, &marker)
	if marker != 1 {
		t.Fatal("the page was reloaded")
	}
	var title string
	tb.eval(`document.title`, &title)
	if !strings.HasPrefix(title, "(1) ") {
		t.Errorf("title %q, want the unread count (1) first", title)
	}
	if got := tb.text(sel + " .caller"); !strings.Contains(got, m.CallerID) {
		t.Errorf("caller shown %q, want %q in it", got, m.CallerID)
	}
	// Received time in the mailbox's time zone.
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse(time.RFC3339Nano, m.ReceivedAt)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tb.text(sel+" .when"), at.In(ny).Format("03:04 PM"); !strings.Contains(got, want) || !strings.Contains(got, at.In(ny).Format("MST")) {
		t.Errorf("received time shown %q, want %s %s (New York)", got, want, at.In(ny).Format("MST"))
	}
	tb.waitJS("the waveform picture", fmt.Sprintf(`document.querySelector(%q).complete && document.querySelector(%q).naturalWidth > 0`,
		sel+" .wave", sel+" .wave"), 10*time.Second)
	tb.shot("02-new-message")

	// Play to the end; the audio element's source serves the stored WAV.
	player := fmt.Sprintf(`document.querySelector(%q)`, sel+" .player")
	tb.waitJS("the audio source", player+`.getAttribute('src')`, 10*time.Second)
	tb.eval(player+`.play().then(() => true)`, nil)
	tb.waitJS("the audio element to reach the end", player+`.ended`, time.Duration(m.DurationMS)*time.Millisecond+20*time.Second)
	var played struct {
		Src      string  `json:"src"`
		Duration float64 `json:"duration"`
		B64      string  `json:"b64"`
	}
	tb.eval(`(async () => {
		const a = `+player+`;
		const b = new Uint8Array(await (await fetch(a.currentSrc)).arrayBuffer());
		let s = ''; for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
		return {src: a.currentSrc, duration: a.duration, b64: btoa(s)};
	})()`, &played)
	got, _ := base64.StdEncoding.DecodeString(played.B64)
	stored, err := os.ReadFile(mediaPath(s, "1001", m.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, stored) {
		t.Errorf("the audio element's source gave %d bytes that differ from the stored %d-byte WAV", len(got), len(stored))
	}
	if d := played.Duration * 1000; d < float64(m.DurationMS)-100 || d > float64(m.DurationMS)+100 {
		t.Errorf("audio element duration %.0f ms, message says %d ms", d, m.DurationMS)
	}
	if !strings.Contains(played.Src, "sig=") || strings.Contains(played.Src, "vmu_") {
		t.Errorf("audio source %q: want a signed link without the token", played.Src)
	}
	// What the element itself fetched over the network: the signed link,
	// answered 200/206, every byte of the file.
	var mine []mediaResponse
	for _, r := range media() {
		if strings.Contains(r.url, "/messages/"+m.ID+"/audio") {
			mine = append(mine, r)
			if r.status != 200 && r.status != 206 {
				t.Errorf("the audio element got %d for %s", r.status, r.url)
			}
		}
	}
	if !covered(mine, len(stored)) {
		t.Errorf("the audio element's responses %+v do not carry the %d bytes of the WAV", mine, len(stored))
	}
	waitFor(t, "playing to mark the message read", 5*time.Second, func() bool { return s.messages(t, "1001")[0].Read })

	// Mark unread again, forward to 1002, and the download link.
	tb.do("mark unread", chromedp.Click(chromedp.CSS(sel+" .act-read")))
	waitFor(t, "the message unread", 5*time.Second, func() bool { return !s.messages(t, "1001")[0].Read })
	tb.waitJS("the unread count back in the title", `document.title.startsWith('(1) ')`, 5*time.Second)
	tb.do("forward", chromedp.Click(chromedp.CSS(sel+" .act-forward")), chromedp.WaitVisible(chromedp.CSS("#forward-dialog")),
		chromedp.SetValue(chromedp.CSS("#forward-to"), "1002"), chromedp.Click(chromedp.CSS("#forward-ok")))
	fwd := s.waitMessages(t, "1002", 1, 10*time.Second)[0]
	if b := s.audio(t, "1002", fwd.ID); !bytes.Equal(b, stored) {
		t.Error("the forwarded message's audio differs")
	}
	var link struct{ Href, Name string }
	tb.eval(fmt.Sprintf(`(a => ({href: a.href, name: a.download}))(document.querySelector(%q))`, sel+" .act-download"), &link)
	if !strings.Contains(link.Href, "/messages/"+m.ID+"/audio?") || link.Name != m.ID+".wav" {
		t.Errorf("download link %+v", link)
	}

	// Move to Old.
	tb.do("move to Old", chromedp.SetValue(chromedp.CSS(sel+" .act-move-to"), "old"), chromedp.Click(chromedp.CSS(sel+" .act-move")))
	waitFor(t, "the message in Old", 5*time.Second, func() bool { return s.messages(t, "1001")[0].Folder == "old" })
	tb.waitJS("the message to leave New", `!`+jsHas(sel), 5*time.Second)
	// The folder tabs by keyboard: arrow right from New is Old.
	tb.do("open Old by keyboard", chromedp.Focus(chromedp.CSS("#tab-new")), chromedp.KeyEvent(kb.ArrowRight))
	tb.waitJS("the message in Old", jsHas(sel)+` && document.activeElement.id === 'tab-old'`, 5*time.Second)

	// Delete and undo: nothing reaches the server.
	tb.do("delete", chromedp.Click(chromedp.CSS(sel+" .act-delete")))
	tb.waitJS("the undo bar", `!`+jsHas(sel)+` && !document.querySelector('#undo-bar').hidden`, 5*time.Second)
	tb.shot("03-undo")
	tb.do("undo", chromedp.Click(chromedp.CSS("#undo-btn")))
	tb.waitJS("the message back", jsHas(sel), 5*time.Second)
	undone := time.Now()

	// Meanwhile: more messages (one for group 8000); the one from
	// +1 781 555 1212, forgotten by the operator in the admin console
	// (another tab), leaves the open inbox.
	var wg sync.WaitGroup
	for i, d := range [][3]string{{"1001", "+17815551212", "Jane Doe"}, {"1001", "+442079460958", "London office"}, {"8000", "+16175550100", "Front desk"}} {
		wg.Add(1)
		go func() { defer wg.Done(); depositAs(t, s, d[0], d[1], d[2], speechLike(2+i)) }()
	}
	wg.Wait()
	var forgotten string
	for _, x := range s.waitMessages(t, "1001", 3, 20*time.Second) {
		if x.CallerID == "+17815551212" {
			forgotten = x.ID
		}
		if x.CallerID == "+442079460958" {
			if code, _, _ := s.api("PATCH", "/api/v1/mailboxes/1001/messages/"+x.ID, map[string]bool{"urgent": true}, nil); code != 200 {
				t.Fatalf("mark urgent: %d", code)
			}
		}
	}
	group := s.waitMessages(t, "8000", 1, 20*time.Second)[0]
	tb.do("open New", chromedp.Click(chromedp.CSS("#tab-new")))
	tb.waitJS("the new messages in the page", jsHas(msgSel(forgotten))+" && "+jsHas(msgSel(group.ID)+" .badge.group")+" && "+jsHas("#messages .badge.urgent"), 20*time.Second)
	tb.waitJS("their waveforms", `[...document.querySelectorAll('#messages .wave')].every(i => i.naturalWidth > 0)`, 10*time.Second)
	copyToDocs(t, tb.shot("04-inbox"), "web-inbox.png")

	admin := tb.b.newTab("admin")
	admin.open("/admin#gdpr")
	admin.adminSignIn(s.token, "default")

	// Export first: the archive downloaded from the page holds the audio.
	dl := t.TempDir()
	if _, err := chromedp.Call(admin.ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
		Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl}); err != nil {
		t.Fatal(err)
	}
	admin.do("export",
		chromedp.WaitVisible(chromedp.CSS("#gdpr-form")),
		chromedp.SetValue(chromedp.CSS("#gdpr-op"), "export"),
		chromedp.SetValue(chromedp.CSS("#gdpr-doc"), gdprForgetWeb),
		chromedp.Click(chromedp.CSS("#gdpr-run")))
	admin.waitJS("the archive button", `!document.querySelector('#gdpr-archive').hidden`, 15*time.Second)
	admin.do("download", chromedp.Click(chromedp.CSS("#gdpr-archive")))
	var zips []string
	waitFor(t, "the archive downloaded", 15*time.Second, func() bool { zips, _ = filepath.Glob(filepath.Join(dl, "*.zip")); return len(zips) == 1 })
	checkArchiveHolds(t, zips[0], mediaPath(s, "1001", forgotten))

	admin.do("forget",
		chromedp.WaitVisible(chromedp.CSS("#gdpr-form")),
		chromedp.SetValue(chromedp.CSS("#gdpr-op"), "forget"),
		chromedp.SetValue(chromedp.CSS("#gdpr-doc"), gdprForgetWeb),
		chromedp.Click(chromedp.CSS("#gdpr-run")))
	admin.waitJS("the per-contact result", `document.querySelectorAll('#gdpr-rows tr').length === 2`, 15*time.Second)
	rows := admin.text("#gdpr-rows")
	if !strings.Contains(rows, "SUCCESS") || !strings.Contains(rows, "ERROR") {
		t.Errorf("GDPR rows %q, want a SUCCESS and an ERROR (555 has no country code)", rows)
	}
	admin.shot("05-gdpr-forget")
	tb.waitJS("the forgotten message to leave the inbox", `!`+jsHas(msgSel(forgotten)), 10*time.Second)
	tb.do("open Old", chromedp.Click(chromedp.CSS("#tab-old")))
	if !strings.Contains(tb.text("#folders"), "Old 1") || !strings.Contains(tb.text("#folders"), "New 2") {
		t.Errorf("folder tabs %q", tb.text("#folders"))
	}

	// The undo window has passed: the undone message is still on the server.
	time.Sleep(time.Until(undone.Add(7 * time.Second)))
	has := func(id string) bool {
		for _, x := range s.messages(t, "1001") {
			if x.ID == id {
				return true
			}
		}
		return false
	}
	if !has(m.ID) || has(forgotten) {
		t.Fatalf("after undo and forget, 1001 holds %v", s.messages(t, "1001"))
	}
	// Delete for good: the delete is sent when the undo window closes.
	tb.do("delete", chromedp.Click(chromedp.CSS(sel+" .act-delete")))
	waitFor(t, "the delete to reach the server", 15*time.Second, func() bool { return !has(m.ID) })
	tb.waitJS("the undo bar to go", `document.querySelector('#undo-bar').hidden`, 5*time.Second)
	tb.shot("06-deleted")
}

// TestWebGreetingAndSettings: upload a greeting WAV and hear it in the next
// deposit; record one with the (fake) microphone; change PIN, email and
// time zone.
func TestWebGreetingAndSettings(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	tb := newBrowser(t, s)
	tb.open("/")
	tb.signIn("1002", "1234")
	tb.waitJS("the inbox", `!document.querySelector('#inbox-view').hidden`, 15*time.Second)
	tb.do("open settings", chromedp.Click(chromedp.CSS("#nav-settings")))
	tb.waitJS("the greetings", `document.querySelectorAll('#greetings li').length === 4`, 10*time.Second)

	// Upload: a 700 Hz tone at 16 kHz (the server converts it).
	const greetingHz = 700.0
	wav := filepath.Join(t.TempDir(), "greeting.wav")
	if err := os.WriteFile(wav, makeWAV16k(tone16k(greetingHz, 32000, 9000)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := `#greetings li[data-kind="unavailable"]`
	tb.do("upload", chromedp.SetUploadFiles(chromedp.CSS(g+" .g-file"), []string{wav}))
	tb.waitJS("the upload saved and loaded", fmt.Sprintf(`document.querySelector(%q).textContent === 'Saved.' && document.querySelector(%q).dataset.size > 44`,
		g+" .g-msg", g), 15*time.Second)

	// The next deposit plays it, as the caller hears it.
	d, err := siptest.Dial(t.Context(), siptest.Config{Server: s.sipAddr(), RequestURI: "sip:1002@" + s.sipAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	waitFor(t, "the uploaded greeting in the deposit call", 10*time.Second, func() bool { return findTone(d.Received(), greetingHz, 0) >= 0 })
	_, _ = d.Bye(t.Context())

	// Record the name with Chromium's fake microphone.
	n := `#greetings li[data-kind="name"]`
	tb.do("record", chromedp.Click(chromedp.CSS(n+" .g-record")))
	tb.waitJS("recording", fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-pressed') === 'true'`, n+" .g-record"), 10*time.Second)
	time.Sleep(2 * time.Second)
	tb.do("stop", chromedp.Click(chromedp.CSS(n+" .g-record")))
	tb.waitJS("the recording saved", fmt.Sprintf(`document.querySelector(%q).textContent === 'Saved.'`, n+" .g-msg"), 15*time.Second)
	rec := s.greeting(t, "1002", "name")
	w, err := parseWAV(rec)
	if err != nil {
		t.Fatalf("recorded greeting: %v", err)
	}
	if dur := len(w.samples) * 1000 / int(w.rate); dur < 1000 || dur > 6000 {
		t.Errorf("recorded greeting lasts %d ms, want about 2 s", dur)
	}
	if siptest.MeanAbs(w.samples) < 10 {
		t.Errorf("recorded greeting is silent (mean |x| %.1f)", siptest.MeanAbs(w.samples))
	}

	// Settings: mismatched PINs are refused in the page; then saved.
	tb.do("mismatched PINs",
		chromedp.SetValue(chromedp.CSS("#set-pin"), "5678"),
		chromedp.SetValue(chromedp.CSS("#set-pin2"), "5679"),
		chromedp.Click(chromedp.CSS("#settings-save")))
	tb.waitJS("the mismatch", `document.querySelector('#settings-msg').textContent.includes('differ')`, 5*time.Second)
	tb.do("save settings",
		chromedp.SetValue(chromedp.CSS("#set-pin2"), "5678"),
		chromedp.SetValue(chromedp.CSS("#set-email"), "bob@example.com"),
		chromedp.SetValue(chromedp.CSS("#set-tz"), "Europe/Paris"),
		chromedp.Click(chromedp.CSS("#settings-save")))
	tb.waitJS("saved", `document.querySelector('#settings-msg').textContent.startsWith('Saved')`, 10*time.Second)
	tb.shot("01-settings")
	var mb struct {
		Email    string `json:"email"`
		Timezone string `json:"timezone"`
	}
	if code, body, err := s.api("GET", "/api/v1/mailboxes/1002", nil, &mb); err != nil || code != 200 {
		t.Fatalf("GET mailbox: %d %v %s", code, err, body)
	}
	if mb.Email != "bob@example.com" || mb.Timezone != "Europe/Paris" {
		t.Errorf("mailbox after save: %+v", mb)
	}
	if code := userLogin(t, s, "1002", "5678"); code != 200 {
		t.Errorf("login with the new PIN: %d", code)
	}
}

// TestWebAdmin: the operator creates a tenant and a token, a mailbox and a
// group, edits the group's members, deletes with confirmation, reads a
// webhook's delivery log; a user token is refused by the API and the page.
func TestWebAdmin(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()

	tb := newBrowser(t, s)
	tb.open("/admin")
	tb.adminSignIn(s.token, "default")
	tb.waitJS("the dashboard", `!document.querySelector('#sec-dashboard').hidden && document.querySelector('#st-calls').textContent !== '–'`, 15*time.Second)
	tb.waitJS("the chart", `document.querySelectorAll('#chart polyline').length === 3`, 10*time.Second)
	tb.shot("01-dashboard")

	// A webhook first, so that the mailbox changes below are delivered.
	tb.do("webhook", chromedp.Click(chromedp.CSS(`#nav a[data-sec="webhooks"]`)),
		chromedp.WaitVisible(chromedp.CSS("#webhook-form")),
		chromedp.SetValue(chromedp.CSS("#wh-url"), hook.URL+"/hook"),
		chromedp.SetValue(chromedp.CSS("#wh-events"), "mailbox_created"),
		chromedp.Click(chromedp.CSS(`#webhook-form button[type=submit]`)))
	tb.waitJS("the webhook listed", `document.querySelectorAll('#webhooks tr').length === 1`, 10*time.Second)

	// A mailbox and a group.
	tb.do("mailboxes", chromedp.Click(chromedp.CSS(`#nav a[data-sec="mailboxes"]`)), chromedp.WaitVisible(chromedp.CSS("#mailbox-form")))
	tb.waitJS("the demo mailboxes", jsHas(`#mailboxes tr[data-number="8000"]`), 10*time.Second)
	tb.do("create 1003",
		chromedp.SetValue(chromedp.CSS("#mb-number"), "1003"),
		chromedp.SetValue(chromedp.CSS("#mb-name"), "Carol"),
		chromedp.SetValue(chromedp.CSS("#mb-pin"), "4321"),
		chromedp.Click(chromedp.CSS("#mb-create")))
	tb.waitJS("1003 listed", jsHas(`#mailboxes tr[data-number="1003"]`), 10*time.Second)
	tb.do("create group 8100",
		chromedp.SetValue(chromedp.CSS("#mb-number"), "8100"),
		chromedp.SetValue(chromedp.CSS("#mb-name"), "Support"),
		chromedp.SetValue(chromedp.CSS("#mb-type"), "group"),
		chromedp.SetValue(chromedp.CSS("#mb-members"), "1001, 1003"),
		chromedp.Click(chromedp.CSS("#mb-create")))
	tb.waitJS("8100 listed", jsHas(`#mailboxes tr[data-number="8100"]`), 10*time.Second)
	if got := s.mailbox(t, "8100"); got.Type != "group" || strings.Join(got.Members, ",") != "1001,1003" {
		t.Errorf("group 8100: %+v", got)
	}
	if s.mailbox(t, "1003").Name != "Carol" || userLogin(t, s, "1003", "4321") != 200 {
		t.Error("mailbox 1003 is not as created")
	}
	copyToDocs(t, tb.shot("02-mailboxes"), "web-admin.png")

	// Edit the members.
	row := `#mailboxes tr[data-number="8100"]`
	tb.do("edit members", chromedp.Click(chromedp.CSS(row+" .edit-members")),
		chromedp.SetValue(chromedp.CSS(row+" .members-input"), "1003"),
		chromedp.Click(chromedp.CSS(row+" .save-members")))
	waitFor(t, "the members saved", 10*time.Second, func() bool { return strings.Join(s.mailbox(t, "8100").Members, ",") == "1003" })

	// Delete with confirmation: Cancel keeps it, Delete removes it.
	tb.waitJS("the table refreshed", fmt.Sprintf(`document.querySelector(%q).textContent === '1003'`, row+" .members"), 10*time.Second)
	tb.do("delete, cancel", chromedp.Click(chromedp.CSS(row+" .del-mailbox")), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	tb.shot("03-confirm")
	tb.do("cancel", chromedp.Click(chromedp.CSS("#confirm-no")))
	time.Sleep(500 * time.Millisecond)
	if code, _, _ := s.api("GET", "/api/v1/mailboxes/8100", nil, nil); code != 200 {
		t.Fatalf("8100 after Cancel: %d", code)
	}
	tb.do("delete, confirm", chromedp.Click(chromedp.CSS(row+" .del-mailbox")), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")),
		chromedp.Click(chromedp.CSS("#confirm-yes")))
	waitFor(t, "8100 deleted", 10*time.Second, func() bool { code, _, _ := s.api("GET", "/api/v1/mailboxes/8100", nil, nil); return code == 404 })

	// Tenants and tokens (operator).
	tb.do("tenants", chromedp.Click(chromedp.CSS(`#nav a[data-sec="tenants"]`)),
		chromedp.WaitVisible(chromedp.CSS("#tenant-form")),
		chromedp.SetValue(chromedp.CSS("#tenant-name"), "acme"),
		chromedp.Click(chromedp.CSS(`#tenant-form button[type=submit]`)))
	tb.waitJS("acme listed", jsHas(`#tenants tr[data-tenant="acme"]`), 10*time.Second)
	tb.do("token", chromedp.SetValue(chromedp.CSS("#tokens-tenant"), "acme"), chromedp.Click(chromedp.CSS("#token-create")))
	tb.waitJS("the new token", jsHas(`#token-msg code.secret`), 10*time.Second)
	tenantToken := tb.text("#token-msg code.secret")
	tb.shot("04-tenants")

	// The webhook's delivery log shows the deliveries of mailbox_created.
	tb.do("webhooks", chromedp.Click(chromedp.CSS(`#nav a[data-sec="webhooks"]`)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		// A click in the page: the table may be re-rendering under a
		// protocol-level click.
		tb.eval(`document.querySelector('#webhooks tr button')?.click()`, nil)
		time.Sleep(300 * time.Millisecond)
		if strings.Count(tb.text("#deliveries"), "delivered") >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(700 * time.Millisecond)
	}
	if got := tb.text("#deliveries"); strings.Count(got, "delivered") < 2 {
		t.Errorf("delivery log %q, want two delivered mailbox_created", got)
	}
	tb.shot("05-webhooks")

	// A tenant token opens the console without the operator's tenants page.
	tt := tb.b.newTab("tenant")
	tt.open("/admin")
	tt.adminSignIn(tenantToken, "")
	tt.waitJS("the tenant's console", `!document.querySelector('#sec-dashboard').hidden && document.querySelector('#nav-tenants').hidden`, 10*time.Second)

	// A user token: the API refuses it, and so does the page.
	user := userToken(t, s, "1001", "1234")
	for _, p := range []string{"/api/v1/webhooks", "/api/v1/tenants", "/api/v1/gdpr/audit"} {
		req, _ := http.NewRequest("GET", s.url(p), nil)
		req.Header.Set("Authorization", "Bearer "+user)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("GET %s with a user token: %d, want 403", p, resp.StatusCode)
		}
	}
	ut := tb.b.newTab("user")
	ut.open("/admin")
	ut.adminSignIn(user, "")
	ut.waitJS("the refusal", `!document.querySelector('#refusal').hidden && document.querySelector('#refusal-text').textContent.includes('403')`, 10*time.Second)
	var visible bool
	ut.eval(`!document.querySelector('#nav').hidden || [...document.querySelectorAll('.sec')].some(s => !s.hidden)`, &visible)
	if visible {
		t.Error("the console shows its sections to a user token")
	}
	ut.shot("06-user-refused")
}

// TestWebLockout: five wrong PINs in the page lock the mailbox, for the
// page and for the phone.
func TestWebLockout(t *testing.T) {
	t.Parallel()
	s := startServer(t, "")
	tb := newBrowser(t, s)
	tb.open("/")
	for i, pin := range []string{"1111", "2222", "3333", "4444", "5555"} {
		tb.signIn("1001", pin)
		tb.waitJS(fmt.Sprintf("wrong PIN %d refused", i+1), `document.querySelector('#login-error').textContent === 'Wrong mailbox or PIN.' && !document.querySelector('#login-submit').disabled`, 10*time.Second)
		tb.eval(`document.querySelector('#login-error').textContent = ''`, nil)
	}
	// The right PIN, typed and sent with Enter: refused, the mailbox is locked.
	tb.do("sign in by keyboard", setValue("#login-pin", ""), chromedp.Focus(chromedp.CSS("#login-pin")),
		chromedp.KeyEvent("1234"+kb.Enter))
	tb.waitJS("the lock", `document.querySelector('#login-error').textContent.includes('locked')`, 10*time.Second)
	tb.shot("01-locked")

	// The phone: the right PIN is refused too.
	c := accessDial(t, s, "1001")
	login(t, c, "1234")
	waitFor(t, "the IVR to refuse the locked mailbox", 10*time.Second, func() bool {
		return strings.Contains(s.log.String(), `"msg":"login refused: mailbox locked"`)
	})
}
