package store

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Jobs that several instances share (the mail outbox, webhook deliveries)
// are claimed, not just read: a claim moves the rows' next attempt to
// now+lease, so no other instance sees them due while this one works, and
// if this one dies they are due again when the lease ends (at-least-once;
// mails keep their Message-ID, webhook bodies their event id). On
// PostgreSQL, FOR UPDATE SKIP LOCKED lets concurrent claimers pass each
// other's rows instead of waiting; SQLite's single writer serialises them.
//
// Jobs without rows of their own (the GDPR purge, retention) take a lease
// on a name with ClaimConsumer and run only while they hold it.

// skipLocked is the row-lock clause of a claim's inner SELECT.
func (d dialect) skipLocked() string {
	if d == dialectPostgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// ClaimMail claims up to limit (0 = 100) pending mails due at now for
// lease and returns them, the longest-waiting first. Their NextAttemptAt is
// the lease's end; RetryMail or MarkMailSent settle them.
func (s *sqlStore) ClaimMail(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMail, error) {
	rows, err := s.w.QueryContext(ctx, `UPDATE mail_outbox SET next_attempt_at = ? WHERE id IN (
SELECT id FROM mail_outbox WHERE status = ? AND next_attempt_at <= ?
ORDER BY next_attempt_at, id LIMIT ?`+s.d.skipLocked()+`) RETURNING `+outboxCols,
		now.Add(lease).UTC().UnixNano(), MailPending, now.UTC().UnixNano(), pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("store: claim mail: %w", err)
	}
	out, err := collect(rows, scanOutbox)
	if err != nil {
		return nil, fmt.Errorf("store: claim mail: %w", err)
	}
	slices.SortFunc(out, func(a, b OutboxMail) int { return int(a.ID - b.ID) })
	return out, nil
}

// ClaimWebhookJobs claims up to limit (0 = 100) jobs due at now for lease
// and returns them, oldest first. Their NextAt is the lease's end;
// FinishWebhookJob settles them.
func (s *sqlStore) ClaimWebhookJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]WebhookJob, error) {
	rows, err := s.w.QueryContext(ctx, `UPDATE webhook_jobs SET next_at = ? WHERE id IN (
SELECT id FROM webhook_jobs WHERE next_at <= ?
ORDER BY next_at, id LIMIT ?`+s.d.skipLocked()+`)
RETURNING id, webhook_id, event_id, event_type, body, attempts, next_at, created_at`,
		now.Add(lease).UnixNano(), now.UnixNano(), pageSize(limit))
	if err != nil {
		return nil, fmt.Errorf("store: claim webhook jobs: %w", err)
	}
	out, err := collect(rows, func(sc scanner) (WebhookJob, error) {
		var (
			j             WebhookJob
			next, created int64
		)
		err := sc.Scan(&j.ID, &j.WebhookID, &j.EventID, &j.EventType, &j.Body, &j.Attempts, &next, &created)
		j.NextAt, j.CreatedAt = fromNanos(next), fromNanos(created)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: claim webhook jobs: %w", err)
	}
	slices.SortFunc(out, func(a, b WebhookJob) int { return int(a.ID - b.ID) })
	return out, nil
}
