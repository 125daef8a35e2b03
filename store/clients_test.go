package store

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// RunClientContract checks the ClientStore behaviour every Store
// implementation must share. open must return an empty store and register
// its Close with t.Cleanup.
func RunClientContract(t *testing.T, open func(t *testing.T) Store) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"Clients", contractClients},
		{"ClientTokens", contractClientTokens},
		{"ClientsGoWithTheirTenant", contractClientsTenantDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, open(t))
		})
	}
}

func TestClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		RunClientContract(t, b.open)
	})
}

func contractClients(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, DefaultTenant)
	mustTenant(t, s, "acme")
	c := &APIClient{ID: "cl_1", Tenant: "acme", Name: "cron", Scopes: []string{ScopeGDPR, ScopeRead}, SecretHash: "h1"}
	if err := s.CreateAPIClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c.CreatedAt.IsZero() {
		t.Error("CreatedAt not set")
	}
	if err := s.CreateAPIClient(ctx, &APIClient{ID: "cl_1", Tenant: "acme", SecretHash: "h"}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate id: %v", err)
	}
	if err := s.CreateAPIClient(ctx, &APIClient{ID: "cl_x", Tenant: "nosuch", SecretHash: "h"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	if err := s.CreateAPIClient(ctx, &APIClient{ID: "cl_2", Tenant: "acme", Scopes: []string{ScopeAdmin}, SecretHash: "h2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIClient(ctx, &APIClient{ID: "cl_3", Tenant: DefaultTenant, SecretHash: "h3"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAPIClient(ctx, "cl_1")
	if err != nil || got.Tenant != "acme" || got.Name != "cron" || !slices.Equal(got.Scopes, []string{"gdpr", "read"}) ||
		got.SecretHash != "h1" || !got.RevokedAt.IsZero() {
		t.Fatalf("GetAPIClient: %+v %v", got, err)
	}
	if _, err := s.GetAPIClient(ctx, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}
	list, err := s.ListAPIClients(ctx, "acme")
	if err != nil || len(list) != 2 || list[0].ID != "cl_1" || list[1].ID != "cl_2" {
		t.Fatalf("ListAPIClients: %+v %v", list, err)
	}
	if err := s.RevokeAPIClient(ctx, DefaultTenant, "cl_1", time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke through another tenant: %v", err)
	}
	at := time.Now().Add(-time.Minute).UTC()
	if err := s.RevokeAPIClient(ctx, "acme", "cl_1", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIClient(ctx, "acme", "cl_1", time.Now()); err != nil {
		t.Errorf("second revoke: %v", err)
	}
	got, _ = s.GetAPIClient(ctx, "cl_1")
	if !got.RevokedAt.Equal(at) {
		t.Errorf("RevokedAt %v, want the first revocation %v", got.RevokedAt, at)
	}
}

func contractClientTokens(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "acme")
	for _, id := range []string{"cl_a", "cl_b"} {
		if err := s.CreateAPIClient(ctx, &APIClient{ID: id, Tenant: "acme", Scopes: []string{ScopeGDPR, ScopeRead}, SecretHash: "h-" + id}); err != nil {
			t.Fatal(err)
		}
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Microsecond)
	if err := s.CreateClientToken(ctx, ClientToken{Hash: "t1", ClientID: "cl_a", Scopes: []string{ScopeRead}, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClientToken(ctx, ClientToken{Hash: "t2", ClientID: "cl_b", Scopes: []string{ScopeGDPR}, ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClientToken(ctx, ClientToken{Hash: "t3", ClientID: "nosuch", ExpiresAt: exp}); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of an unknown client: %v", err)
	}
	tok, c, err := s.ClientByToken(ctx, "t1")
	if err != nil || tok.ClientID != "cl_a" || !slices.Equal(tok.Scopes, []string{"read"}) || !tok.ExpiresAt.Equal(exp) ||
		c.ID != "cl_a" || c.Tenant != "acme" || !slices.Equal(c.Scopes, []string{"gdpr", "read"}) {
		t.Fatalf("ClientByToken: %+v %+v %v", tok, c, err)
	}
	if _, _, err := s.ClientByToken(ctx, "nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	// An expired token goes when the next one is issued.
	if err := s.CreateClientToken(ctx, ClientToken{Hash: "old", ClientID: "cl_a", ExpiresAt: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClientByToken(ctx, "old"); err != nil {
		t.Errorf("an expired token is still returned until swept: %v", err)
	}
	if err := s.CreateClientToken(ctx, ClientToken{Hash: "t4", ClientID: "cl_a", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClientByToken(ctx, "old"); !errors.Is(err, ErrNotFound) {
		t.Errorf("expired token not swept: %v", err)
	}
	// Revoking a client drops its tokens, not the others'.
	if err := s.RevokeAPIClient(ctx, "acme", "cl_a", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"t1", "t4"} {
		if _, _, err := s.ClientByToken(ctx, h); !errors.Is(err, ErrNotFound) {
			t.Errorf("token %s of a revoked client: %v", h, err)
		}
	}
	if _, _, err := s.ClientByToken(ctx, "t2"); err != nil {
		t.Errorf("another client's token: %v", err)
	}
}

func contractClientsTenantDelete(t *testing.T, s Store) {
	ctx := t.Context()
	mustTenant(t, s, "gone")
	if err := s.CreateAPIClient(ctx, &APIClient{ID: "cl_g", Tenant: "gone", SecretHash: "h"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClientToken(ctx, ClientToken{Hash: "tg", ClientID: "cl_g", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteTenant(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAPIClient(ctx, "cl_g"); !errors.Is(err, ErrNotFound) {
		t.Errorf("client of a deleted tenant: %v", err)
	}
	if _, _, err := s.ClientByToken(ctx, "tg"); !errors.Is(err, ErrNotFound) {
		t.Errorf("token of a deleted tenant: %v", err)
	}
	// A tenant created again with the same name does not inherit them.
	mustTenant(t, s, "gone")
	if l, _ := s.ListAPIClients(ctx, "gone"); len(l) != 0 {
		t.Errorf("recreated tenant has clients %+v", l)
	}
}

// The undo preview is read-only and agrees with UndoForget.
func TestForgottenByCaller(t *testing.T) {
	forEachBackend(t, testForgottenByCaller)
}

func testForgottenByCaller(t *testing.T, b backend) {
	s, m := gdprFixture(t, b)
	ctx := t.Context()
	if got, err := s.ForgottenByCaller(ctx, "", "+17815551212", "hash"); err != nil || len(got) != 0 {
		t.Fatalf("before forget: %v %v", got, err)
	}
	if _, err := s.ForgetCaller(ctx, Forget{ID: "f1", E164: "+17815551212", PhoneHash: "hash", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ForgottenByCaller(ctx, "", "+17815551212", "hash")
	if err != nil || len(got) != 3 {
		t.Fatalf("after forget: %d %v", len(got), err)
	}
	if got, _ := s.ForgottenByCaller(ctx, "acme", "+17815551212", "hash"); len(got) != 1 || got[0].ID != m["acme"].ID {
		t.Errorf("acme only: %+v", got)
	}
	again, _ := s.ForgottenByCaller(ctx, "", "+17815551212", "hash")
	if len(again) != 3 {
		t.Error("the preview changed something")
	}
	ids, _ := s.ForgottenBefore(ctx, time.Now().Add(time.Hour), 0)
	var all []string
	for _, x := range ids {
		all = append(all, x.ID)
	}
	if err := s.PurgeForgotten(ctx, all); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ForgottenByCaller(ctx, "", "+17815551212", "hash"); !errors.Is(err, ErrPurged) {
		t.Errorf("after purge: %v", err)
	}
}
