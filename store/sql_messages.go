package store

// Message rows, on both SQL backends (see sqlStore in store/sqlite.go).

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ---- messages ----

const messageCols = `id, tenant, mailbox, folder, caller_id, caller_e164, caller_name,
received_at, duration_ms, urgent, read, size, media_key`

func scanMessage(sc scanner) (Message, error) {
	var (
		m        Message
		received int64
	)
	err := sc.Scan(&m.ID, &m.Tenant, &m.Mailbox, &m.Folder, &m.CallerID, &m.CallerE164,
		&m.CallerName, &received, &m.DurationMS, &m.Urgent, &m.Read, &m.Size, &m.MediaKey)
	if err != nil {
		return Message{}, err
	}
	m.ReceivedAt = fromNanos(received)
	return m, nil
}

func (s *sqlStore) CreateMessage(ctx context.Context, m *Message) error {
	msg := *m // fill defaults on a copy; the caller's struct changes only on success
	if msg.ID == "" {
		msg.ID = NewMessageID()
	}
	if msg.Folder == "" {
		msg.Folder = FolderNew
	}
	if msg.ReceivedAt.IsZero() {
		msg.ReceivedAt = time.Now()
	}
	msg.ReceivedAt = msg.ReceivedAt.UTC()
	if msg.MediaKey == "" {
		msg.MediaKey = MediaKey(msg.Tenant, msg.Mailbox, msg.ID)
	}
	if !ValidFolder(msg.Folder) {
		return fmt.Errorf("store: create message: invalid folder %q", msg.Folder)
	}
	where := msg.Tenant + "/" + msg.Mailbox + "/" + msg.ID
	var err error
	if s.group != nil {
		// SQLite: rows of deposits ending together share a transaction
		// (store/sqlite_groupcommit.go).
		err = s.group.submit(ctx, &msg, where)
	} else {
		err = s.createMessageTx(ctx, &msg, where)
	}
	if err != nil {
		return err
	}
	*m = msg
	return nil
}

// createMessageTx inserts one message in a transaction of its own.
func (s *sqlStore) createMessageTx(ctx context.Context, msg *Message, where string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create message %s: %w", where, err)
	}
	defer tx.Rollback()
	if err := s.insertMessage(ctx, tx, msg, where); err != nil {
		return err
	}
	if err := s.commitChanges(tx); err != nil {
		return fmt.Errorf("store: create message %s: commit: %w", where, err)
	}
	return nil
}

// insertMessage writes the row and its change-log event in tx: the event
// exists exactly when the row does (store/outbox.go).
func (s *sqlStore) insertMessage(ctx context.Context, tx *sqlTx, msg *Message, where string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM mailboxes WHERE tenant = ? AND number = ?`, msg.Tenant, msg.Mailbox).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: create message %s: mailbox %s/%s: %w", where, msg.Tenant, msg.Mailbox, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: create message %s: %w", where, err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO messages (`+messageCols+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		msg.ID, msg.Tenant, msg.Mailbox, msg.Folder, msg.CallerID, msg.CallerE164, msg.CallerName,
		msg.ReceivedAt.UnixNano(), msg.DurationMS, msg.Urgent, msg.Read, msg.Size, msg.MediaKey)
	if isConflict(err) {
		return fmt.Errorf("store: create message %s: %w", where, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create message %s: %w", where, err)
	}
	created := *msg
	if err := s.writeChange(ctx, tx, Change{Kind: MessageCreated, Tenant: msg.Tenant, Mailbox: msg.Mailbox, Message: &created}); err != nil {
		return fmt.Errorf("store: create message %s: %w", where, err)
	}
	return nil
}

func (s *sqlStore) GetMessage(ctx context.Context, tenant, mailbox, id string) (*Message, error) {
	m, err := scanMessage(s.r.QueryRowContext(ctx, `SELECT `+messageCols+` FROM messages
WHERE id = ? AND tenant = ? AND mailbox = ?`, id, tenant, mailbox))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: message %s/%s/%s: %w", tenant, mailbox, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get message %s/%s/%s: %w", tenant, mailbox, id, err)
	}
	return &m, nil
}

func (s *sqlStore) ListMessages(ctx context.Context, f MessageFilter) ([]Message, string, error) {
	if f.Tenant == "" {
		// Never list across tenants by accident.
		return nil, "", errors.New("store: list messages: tenant is required")
	}
	limit := pageSize(f.Limit)
	var (
		where = []string{"tenant = ?"}
		args  = []any{f.Tenant}
	)
	if f.Mailbox != "" {
		where, args = append(where, "mailbox = ?"), append(args, f.Mailbox)
	}
	if f.Folder != "" {
		where, args = append(where, "folder = ?"), append(args, f.Folder)
	}
	if f.CallerID != "" {
		where, args = append(where, "(caller_id = ? OR caller_e164 = ?)"), append(args, f.CallerID, f.CallerID)
	}
	if f.After != "" {
		where, args = append(where, "id > ?"), append(args, f.After)
	}
	args = append(args, limit+1)
	// Prepared once per shape (at most 16: which filters are set), as the
	// mailbox listing is the API's and the IVR's most frequent read.
	rows, err := s.hotQuery(ctx, `SELECT `+messageCols+` FROM messages WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("store: list messages of %s/%s: %w", f.Tenant, f.Mailbox, err)
	}
	items, err := collect(rows, scanMessage)
	if err != nil {
		return nil, "", fmt.Errorf("store: list messages of %s/%s: %w", f.Tenant, f.Mailbox, err)
	}
	var next string
	if len(items) > limit {
		items = items[:limit]
		next = items[limit-1].ID
	}
	return items, next, nil
}

const countMessagesSQL = `
SELECT
	count(*) FILTER (WHERE folder = 'new' AND read = 0),
	count(*) FILTER (WHERE NOT (folder = 'new' AND read = 0)),
	count(*) FILTER (WHERE folder = 'new' AND read = 0 AND urgent <> 0),
	count(*) FILTER (WHERE NOT (folder = 'new' AND read = 0) AND urgent <> 0)
FROM messages WHERE tenant = ? AND mailbox = ?`

func (s *sqlStore) CountMessages(ctx context.Context, tenant, mailbox string) (Counts, error) {
	// One statement, so the four numbers always describe the same snapshot.
	var c Counts
	err := s.hotQueryRow(ctx, countMessagesSQL, tenant, mailbox).Scan(&c.New, &c.Old, &c.UrgentNew, &c.UrgentOld)
	if err != nil {
		return Counts{}, fmt.Errorf("store: count messages of %s/%s: %w", tenant, mailbox, err)
	}
	return c, nil
}

func (s *sqlStore) CountMailboxes(ctx context.Context, tenant string, mailboxes []string) (map[string]Counts, error) {
	out := make(map[string]Counts, len(mailboxes))
	const chunk = 500 // parameters per statement, far below either backend's limit
	for len(mailboxes) > 0 {
		part := mailboxes[:min(chunk, len(mailboxes))]
		mailboxes = mailboxes[len(part):]
		args := make([]any, 0, len(part)+1)
		args = append(args, tenant)
		for _, mb := range part {
			args = append(args, mb)
			out[mb] = Counts{}
		}
		rows, err := s.r.QueryContext(ctx, `
SELECT mailbox,
	count(*) FILTER (WHERE folder = 'new' AND read = 0),
	count(*) FILTER (WHERE NOT (folder = 'new' AND read = 0)),
	count(*) FILTER (WHERE folder = 'new' AND read = 0 AND urgent <> 0),
	count(*) FILTER (WHERE NOT (folder = 'new' AND read = 0) AND urgent <> 0)
FROM messages WHERE tenant = ? AND mailbox IN (?`+strings.Repeat(", ?", len(part)-1)+`) GROUP BY mailbox`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: count messages of %d mailboxes of %s: %w", len(part), tenant, err)
		}
		for rows.Next() {
			var mb string
			var c Counts
			if err := rows.Scan(&mb, &c.New, &c.Old, &c.UrgentNew, &c.UrgentOld); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: count messages of %s: %w", tenant, err)
			}
			out[mb] = c
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("store: count messages of %s: %w", tenant, err)
		}
	}
	return out, nil
}

func (s *sqlStore) UpdateMessage(ctx context.Context, m *Message) error {
	if !ValidFolder(m.Folder) {
		return fmt.Errorf("store: update message %s/%s/%s: invalid folder %q", m.Tenant, m.Mailbox, m.ID, m.Folder)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: update message %s/%s/%s: %w", m.Tenant, m.Mailbox, m.ID, err)
	}
	defer tx.Rollback()
	got, err := scanMessage(tx.QueryRowContext(ctx, `UPDATE messages SET folder = ?, read = ?, urgent = ?
WHERE id = ? AND tenant = ? AND mailbox = ? RETURNING `+messageCols,
		m.Folder, m.Read, m.Urgent, m.ID, m.Tenant, m.Mailbox))
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: update message %s/%s/%s: %w", m.Tenant, m.Mailbox, m.ID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: update message %s/%s/%s: %w", m.Tenant, m.Mailbox, m.ID, err)
	}
	changed := got
	if err := s.writeChange(ctx, tx, Change{Kind: MessageUpdated, Tenant: m.Tenant, Mailbox: m.Mailbox, Message: &changed}); err != nil {
		return fmt.Errorf("store: update message %s/%s/%s: %w", m.Tenant, m.Mailbox, m.ID, err)
	}
	if err := s.commitChanges(tx); err != nil {
		return fmt.Errorf("store: update message %s/%s/%s: commit: %w", m.Tenant, m.Mailbox, m.ID, err)
	}
	*m = got // the caller sees the stored row, including fields it did not set
	return nil
}

func (s *sqlStore) DeleteMessage(ctx context.Context, tenant, mailbox, id string) (*Message, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("store: delete message %s/%s/%s: %w", tenant, mailbox, id, err)
	}
	defer tx.Rollback()
	m, err := scanMessage(tx.QueryRowContext(ctx, `DELETE FROM messages
WHERE id = ? AND tenant = ? AND mailbox = ? RETURNING `+messageCols, id, tenant, mailbox))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store: delete message %s/%s/%s: %w", tenant, mailbox, id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: delete message %s/%s/%s: %w", tenant, mailbox, id, err)
	}
	deleted := m
	if err := s.writeChange(ctx, tx, Change{Kind: MessageDeleted, Tenant: tenant, Mailbox: mailbox, Message: &deleted}); err != nil {
		return nil, fmt.Errorf("store: delete message %s/%s/%s: %w", tenant, mailbox, id, err)
	}
	if err := s.commitChanges(tx); err != nil {
		return nil, fmt.Errorf("store: delete message %s/%s/%s: commit: %w", tenant, mailbox, id, err)
	}
	return &m, nil
}
