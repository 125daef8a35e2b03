package store

import (
	"context"
	"sync"
	"testing"
	"time"
)

// A claimed job is invisible to other claimers until its lease ends, and
// due again afterwards (its claimer died).
func TestClaims(t *testing.T) { forEachBackend(t, testClaims) }

func testClaims(t *testing.T, b backend) {
	ctx := t.Context()
	s := b.open(t)
	mustTenant(t, s, "default")
	mustMailbox(t, s, Mailbox{Tenant: "default", Number: "1001", Email: "a@example.com"})
	for range 3 {
		m := mustMessage(t, s, Message{Tenant: "default", Mailbox: "1001"})
		if err := s.EnqueueMail(ctx, &OutboxMail{MessageID: m.ID, Tenant: "default", Mailbox: "1001", Recipients: []string{"a@example.com"}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EnqueueWebhookJobs(ctx, []WebhookJob{{WebhookID: "w", EventID: "e1", EventType: "x", Body: []byte("{}")},
		{WebhookID: "w", EventID: "e2", EventType: "x", Body: []byte("{}")}}); err != nil {
		t.Fatal(err)
	}
	now, lease := time.Now(), time.Minute
	mails, err := s.ClaimMail(ctx, now, lease, 2)
	if err != nil || len(mails) != 2 || mails[0].ID > mails[1].ID {
		t.Fatalf("first claim: %+v %v", mails, err)
	}
	rest, err := s.ClaimMail(ctx, now, lease, 0)
	if err != nil || len(rest) != 1 || rest[0].ID == mails[0].ID || rest[0].ID == mails[1].ID {
		t.Fatalf("second claim: %+v %v", rest, err)
	}
	if again, _ := s.ClaimMail(ctx, now, lease, 0); len(again) != 0 {
		t.Errorf("claimed mails claimed again: %+v", again)
	}
	if due, _ := s.ClaimMail(ctx, now.Add(lease+time.Second), lease, 0); len(due) != 3 {
		t.Errorf("after the lease: %d mails due, want 3", len(due))
	}
	jobs, err := s.ClaimWebhookJobs(ctx, now, lease, 0)
	if err != nil || len(jobs) != 2 || jobs[0].EventID != "e1" {
		t.Fatalf("webhook claim: %+v %v", jobs, err)
	}
	if again, _ := s.ClaimWebhookJobs(ctx, now, lease, 0); len(again) != 0 {
		t.Errorf("claimed jobs claimed again: %+v", again)
	}
	if due, _ := s.ClaimWebhookJobs(ctx, now.Add(lease+time.Second), lease, 0); len(due) != 2 {
		t.Errorf("after the lease: %d jobs due, want 2", len(due))
	}
}

// Concurrent claimers on two handles never get the same job.
func TestClaimsConcurrent(t *testing.T) { forEachBackend(t, testClaimsConcurrent) }

func testClaimsConcurrent(t *testing.T, b backend) {
	dsn := b.newDSN(t)
	s1, s2 := openDSN(t, dsn), openDSN(t, dsn)
	var jobs []WebhookJob
	for i := range 200 {
		jobs = append(jobs, WebhookJob{WebhookID: "w", EventID: string(rune('a'+i%26)) + time.Duration(i).String(), EventType: "x", Body: []byte("{}")})
	}
	if err := s1.EnqueueWebhookJobs(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[int64]int{}
	var wg sync.WaitGroup
	for i := range 8 {
		st := s1
		if i%2 == 1 {
			st = s2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				js, err := st.ClaimWebhookJobs(context.Background(), time.Now(), time.Hour, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(js) == 0 {
					return
				}
				mu.Lock()
				for _, j := range js {
					got[j.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 200 {
		t.Errorf("%d jobs claimed, want 200", len(got))
	}
	for id, n := range got {
		if n != 1 {
			t.Errorf("job %d claimed %d times", id, n)
		}
	}
}
