package testcalls

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/vmserver/voicemail/internal/siptest"
)

// Helpers of the web console tests (web_test.go) that are not about the
// browser: API shortcuts, deposits with a caller name, test audio.

type apiMailbox struct {
	Number  string   `json:"number"`
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Members []string `json:"members"`
}

func (s *server) mailbox(t *testing.T, n string) apiMailbox {
	t.Helper()
	var mb apiMailbox
	if code, body, err := s.api("GET", "/api/v1/mailboxes/"+n, nil, &mb); err != nil || code != 200 {
		t.Fatalf("GET mailbox %s: %d %v %s", n, code, err, body)
	}
	return mb
}

func (s *server) greeting(t *testing.T, mailbox, kind string) []byte {
	t.Helper()
	code, body, err := s.api("GET", "/api/v1/mailboxes/"+mailbox+"/greetings/"+kind, nil, nil)
	if err != nil || code != 200 {
		t.Fatalf("GET greeting %s/%s: %d %v", mailbox, kind, code, err)
	}
	return body
}

// userLogin posts a login and returns the status.
func userLogin(t *testing.T, s *server, mailbox, pin string) int {
	t.Helper()
	code, _ := loginCall(t, s, mailbox, pin)
	return code
}

func userToken(t *testing.T, s *server, mailbox, pin string) string {
	t.Helper()
	code, tok := loginCall(t, s, mailbox, pin)
	if code != 200 {
		t.Fatalf("login %s: %d", mailbox, code)
	}
	return tok
}

func loginCall(t *testing.T, s *server, mailbox, pin string) (int, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"mailbox": mailbox, "pin": pin})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url("/api/v1/login"), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out.Token
}

// depositAs leaves pcm in mailbox from caller (number and display name).
func depositAs(t *testing.T, s *server, mailbox, caller, name string, pcm []int16) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := siptest.Dial(ctx, siptest.Config{Server: s.sipAddr(), RequestURI: fmt.Sprintf("sip:%s@%s", mailbox, s.sipAddr()),
		From: fmt.Sprintf(`"%s" <sip:%s@127.0.0.1>`, name, caller)})
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	if c.Status() != 200 {
		t.Errorf("deposit to %s answered %d", mailbox, c.Status())
		return
	}
	time.Sleep(300 * time.Millisecond)
	if err := skipGreeting(ctx, c); err != nil {
		t.Error(err)
		return
	}
	if err := c.SendAudio(ctx, pcm); err != nil {
		t.Error(err)
		return
	}
	if _, err := c.Bye(ctx); err != nil {
		t.Error(err)
	}
}

// speechLike is 8 kHz audio with syllable-like bursts and pauses (so that
// a waveform picture shows something), seed picks the rhythm.
func speechLike(seed int) []int16 {
	out := make([]int16, 8000*2)
	for i := range out {
		t := float64(i) / 8000
		syl := math.Max(0, math.Sin(math.Pi*t*float64(3+seed%3)))
		env := syl * syl * (0.4 + 0.6*math.Abs(math.Sin(t*float64(seed)*1.7)))
		out[i] = int16(9000 * env * (math.Sin(2*math.Pi*220*t) + 0.5*math.Sin(2*math.Pi*330*t)))
	}
	return out
}

// tone16k is a sine at 16 kHz.
func tone16k(freq float64, n int, amp float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(i)/16000))
	}
	return out
}

// makeWAV16k is makeWAV at 16 kHz: a rate the server must convert.
func makeWAV16k(pcm []int16) []byte {
	b := makeWAV(pcm)
	b[24], b[25], b[26], b[27] = 0x80, 0x3e, 0, 0 // 16000
	b[28], b[29], b[30], b[31] = 0x00, 0x7d, 0, 0 // 32000 bytes/s
	return b
}

// checkArchiveHolds: the zip holds a file with the bytes of wav.
func checkArchiveHolds(t *testing.T, archive, wav string) {
	t.Helper()
	want, err := os.ReadFile(wav)
	if err != nil {
		t.Fatal(err)
	}
	// A download is renamed from its temporary name when complete.
	var z *zip.ReadCloser
	waitFor(t, "a complete archive", 10*time.Second, func() bool { z, err = zip.OpenReader(archive); return err == nil })
	defer z.Close()
	var names []string
	for _, f := range z.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if bytes.Equal(b, want) {
			return
		}
	}
	t.Errorf("the downloaded archive (%v) does not hold the message audio", names)
}
