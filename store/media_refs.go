package store

import (
	"context"
	"fmt"
	"strings"
)

// mediaRefsBatch bounds the ids of one query (SQLite and PostgreSQL both
// cap the bound parameters of a statement).
const mediaRefsBatch = 500

// MediaKeysOf returns the media keys of the message rows with those ids,
// visible or hidden by a GDPR forget (a hidden row still owns its audio
// until the purge). The orphan sweep (package reconcile) asks it which
// blobs are still referenced; ids are primary keys, so this never scans.
func (s *sqlStore) MediaKeysOf(ctx context.Context, ids []string) (map[string]bool, error) {
	out := make(map[string]bool, len(ids))
	for len(ids) > 0 {
		n := min(len(ids), mediaRefsBatch)
		batch := ids[:n]
		ids = ids[n:]
		in := strings.TrimSuffix(strings.Repeat("?,", len(batch)), ",")
		args := make([]any, 0, 2*len(batch))
		for range 2 {
			for _, id := range batch {
				args = append(args, id)
			}
		}
		rows, err := s.r.QueryContext(ctx, `SELECT media_key FROM messages WHERE id IN (`+in+`)
UNION ALL SELECT media_key FROM gdpr_hidden WHERE id IN (`+in+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: media keys of messages: %w", err)
		}
		keys, err := collect(rows, func(sc scanner) (string, error) {
			var k string
			err := sc.Scan(&k)
			return k, err
		})
		if err != nil {
			return nil, fmt.Errorf("store: media keys of messages: %w", err)
		}
		for _, k := range keys {
			out[k] = true
		}
	}
	return out, nil
}
