package blobtest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vmserver/voicemail/store"
)

func unsettledKeys(t *testing.T, b store.Blobs) []string {
	t.Helper()
	side, err := b.Unsettled()
	if err != nil {
		t.Fatalf("Unsettled: %v", err)
	}
	keys := []string{}
	for _, s := range side {
		keys = append(keys, s.Key)
	}
	return keys
}

// settleAfterCommit is the recorder's path: the sidecar stays through the
// commit, so that a crash before the row leaves something the recovery
// finds (Unsettled), and goes with SettlePart once the row exists.
func settleAfterCommit(t *testing.T, b store.Blobs) {
	key := store.MediaKey("default", "1001", store.NewMessageID())
	before := time.Now().Add(-time.Hour)
	f, err := b.Create(key)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if err := b.WritePartMeta(key, map[string]string{"caller": "1002"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("committed audio"); err != nil {
		t.Fatal(err)
	}
	if got := unsettledKeys(t, b); len(got) != 0 {
		t.Errorf("Unsettled while the part is written = %v, want none", got)
	}
	if err := f.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	var m map[string]string
	if err := b.ReadPartMeta(key, &m); err != nil || m["caller"] != "1002" {
		t.Errorf("sidecar after Commit = %v, %v; want kept", m, err)
	}
	side, err := b.Unsettled()
	if err != nil || len(side) != 1 || side[0].Key != key {
		t.Fatalf("Unsettled after Commit = %+v, %v; want [%s]", side, err, key)
	}
	if side[0].ModTime.Before(before) {
		t.Errorf("Unsettled ModTime = %v, want about the commit", side[0].ModTime)
	}
	if got := Read(t, b, key); got != "committed audio" {
		t.Errorf("content = %q", got)
	}
	if err := b.SettlePart(key); err != nil {
		t.Fatalf("SettlePart: %v", err)
	}
	if got := unsettledKeys(t, b); len(got) != 0 {
		t.Errorf("Unsettled after SettlePart = %v", got)
	}
	if got := Read(t, b, key); got != "committed audio" {
		t.Errorf("content after SettlePart = %q", got)
	}
	if err := b.SettlePart("../x.wav"); !errors.Is(err, store.ErrInvalidKey) {
		t.Errorf("SettlePart(bad key) = %v, want ErrInvalidKey", err)
	}
}

// list is what the orphan sweep walks: committed blobs only, by prefix,
// with their size and time.
func list(t *testing.T, b store.Blobs) {
	before := time.Now().Add(-time.Hour)
	blobs := map[string]string{
		"default/1001/0001.wav":           "one",
		"default/1001/greetings/busy.wav": "busy greeting",
		"default/1002/0002.wav":           "two!",
		"acme/1001/0003.wav":              "three",
	}
	for k, v := range blobs {
		if err := b.Put(k, strings.NewReader(v)); err != nil {
			t.Fatal(err)
		}
	}
	// A part in progress and an unsettled sidecar are not blobs.
	f, err := b.Create("default/1001/0009.wav")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	f.WriteString("in progress")
	if err := b.WritePartMeta("default/1001/0009.wav", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	if err := b.WritePartMeta("default/1001/0010.wav", map[string]int{"n": 2}); err != nil {
		t.Fatal(err)
	}
	all, err := b.List("")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, bi := range all {
		keys = append(keys, bi.Key)
		if want, ok := blobs[bi.Key]; ok && bi.Size != int64(len(want)) {
			t.Errorf("List %s size = %d, want %d", bi.Key, bi.Size, len(want))
		}
		if bi.ModTime.Before(before) {
			t.Errorf("List %s ModTime = %v, want about now", bi.Key, bi.ModTime)
		}
	}
	want := []string{"acme/1001/0003.wav", "default/1001/0001.wav", "default/1001/greetings/busy.wav", "default/1002/0002.wav"}
	if !slices.Equal(keys, want) {
		t.Errorf("List(\"\") = %v, want %v", keys, want)
	}
	sub, err := b.List("default/1001/")
	if err != nil {
		t.Fatalf("List(prefix): %v", err)
	}
	keys = keys[:0]
	for _, bi := range sub {
		keys = append(keys, bi.Key)
	}
	if want := []string{"default/1001/0001.wav", "default/1001/greetings/busy.wav"}; !slices.Equal(keys, want) {
		t.Errorf("List(default/1001/) = %v, want %v", keys, want)
	}
	// Prefixes that end inside a name, name one mailbox's greetings, or a
	// folder that does not exist (a volume walks only the folder named).
	for prefix, want := range map[string][]string{
		"default/100":                           {"default/1001/0001.wav", "default/1001/greetings/busy.wav", "default/1002/0002.wav"},
		store.GreetingPrefix("default", "1001"): {"default/1001/greetings/busy.wav"},
		store.GreetingPrefix("default", "1002"): nil,
		"nobody/9999/greetings/":                nil,
	} {
		got, err := b.List(prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = keys[:0]
		for _, bi := range got {
			keys = append(keys, bi.Key)
		}
		if !slices.Equal(keys, want) {
			t.Errorf("List(%q) = %v, want %v", prefix, keys, want)
		}
	}
	if err := b.Delete("default/1002/0002.wav"); err != nil {
		t.Fatal(err)
	}
	if none, err := b.List("default/1002/"); err != nil || len(none) != 0 {
		t.Errorf("List after Delete = %v, %v; want none", none, err)
	}
}
