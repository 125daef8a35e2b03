package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ForgottenByCaller reads what UndoForget deletes and checks, in one read
// transaction; it needs no schema of its own.
func (s *sqliteStore) ForgottenByCaller(ctx context.Context, tenant, e164, phoneHash string) ([]Message, error) {
	where, args, err := callerWhere(s.d, "h", tenant, e164)
	if err != nil {
		return nil, err
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("store: forgotten by caller: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+hiddenCols+` FROM gdpr_hidden AS h WHERE `+where+`
AND EXISTS (SELECT 1 FROM mailboxes b WHERE b.tenant = h.tenant AND b.number = h.mailbox) ORDER BY h.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: forgotten by caller: %w", err)
	}
	hidden, err := collect(rows, scanHidden)
	if err != nil {
		return nil, fmt.Errorf("store: forgotten by caller: %w", err)
	}
	if len(hidden) == 0 {
		q := `SELECT 1 FROM gdpr_forgets WHERE phone_hash = ? AND state = 'purged'`
		qargs := []any{phoneHash}
		if tenant != "" {
			q += ` AND tenant = ?`
			qargs = append(qargs, tenant)
		}
		var one int
		err := tx.QueryRowContext(ctx, q+` LIMIT 1`, qargs...).Scan(&one)
		if err == nil {
			return nil, fmt.Errorf("store: forgotten by caller: %w", ErrPurged)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("store: forgotten by caller: %w", err)
		}
		return nil, nil
	}
	msgs := make([]Message, 0, len(hidden))
	for _, h := range hidden {
		msgs = append(msgs, h.m)
	}
	return msgs, nil
}
