// Package keyfile keeps the server's secret keys in data_dir: 32 random
// bytes, hex encoded, mode 0600, created at first use. The GDPR audit key
// (gdpr_key) and the webhook secret key (webhook_key) are made by Load.
package keyfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Load reads the key at path, creating it (32 random bytes, hex, mode
// 0600, folder 0750) when absent. A file that is not hex of at least 16
// bytes is an error, never silently replaced: what it protects would be lost.
func Load(path string) ([]byte, error) {
	name := filepath.Base(path)
	if b, err := os.ReadFile(path); err == nil {
		k, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(k) < 16 {
			return nil, fmt.Errorf("key %s is damaged (want hex, 32 bytes)", path)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	// Link, not rename: if another process created the key meanwhile, its key wins.
	err := os.Link(tmp, path)
	os.Remove(tmp)
	if errors.Is(err, os.ErrExist) {
		return Load(path)
	}
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", name, err)
	}
	return k, nil
}
