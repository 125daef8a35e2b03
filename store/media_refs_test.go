package store

import (
	"fmt"
	"maps"
	"slices"
	"testing"
)

func TestMediaKeysOf(t *testing.T) { forEachBackend(t, testMediaKeysOf) }

// testMediaKeysOf: visible and GDPR-hidden rows keep their media; deleted
// rows and unknown ids do not; batches larger than one query work.
func testMediaKeysOf(t *testing.T, b backend) {
	s, m := gdprFixture(t, b)
	ctx := t.Context()
	if _, err := s.ForgetCaller(ctx, Forget{ID: "f1", Tenant: "acme", E164: "+17815551212", PhoneHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteMessage(ctx, DefaultTenant, "1001", m["other"].ID); err != nil {
		t.Fatal(err)
	}
	ids := []string{m["e164"].ID, m["acme"].ID, m["other"].ID, NewMessageID()}
	// More ids than one query takes, all unknown but the ones above.
	for i := range 2 * mediaRefsBatch {
		ids = append(ids, fmt.Sprintf("missing-%d", i))
	}
	ids = append(ids, m["digits"].ID)
	got, err := s.MediaKeysOf(ctx, ids)
	if err != nil {
		t.Fatalf("MediaKeysOf: %v", err)
	}
	want := []string{m["e164"].MediaKey, m["acme"].MediaKey, m["digits"].MediaKey}
	slices.Sort(want)
	if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, want) {
		t.Errorf("MediaKeysOf = %v, want %v (visible and hidden, not deleted)", keys, want)
	}
	if none, err := s.MediaKeysOf(ctx, nil); err != nil || len(none) != 0 {
		t.Errorf("MediaKeysOf(nil) = %v, %v", none, err)
	}
}
