package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"github.com/dsn-ims/dsn/dht/tcp"
)

// loadClusterKeys reads the -cluster-key-file: one key per line, the
// first the primary, as the key rotation procedure needs (see the dht/tcp
// package documentation). Each line is a 16, 24 or 32-byte key in base64
// (recommended) or hex; blank lines and lines starting with # are
// skipped. A file that holds a single key may also be that key's raw
// bytes, as before keyrings: a file of 16, 24 or 32 bytes whose lines do
// not decode (unless they are all blank or comments). It logs the KeyID
// of every key, never a key.
func loadClusterKeys(path string, log *zap.Logger) ([][]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("-cluster-key-file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		log.Warn("dsn-node: cluster key file is readable by group or others; chmod 600 it", zap.String("file", path))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-cluster-key-file: %w", err)
	}
	keys, err := parseClusterKeys(raw)
	if err != nil && !errors.Is(err, errNoClusterKey) && validKeyLen(len(raw)) {
		keys, err = [][]byte{raw}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("-cluster-key-file %s: %w (create one with: head -c 32 /dev/urandom | base64 > %s)", path, err, path)
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = tcp.KeyID(k)
	}
	log.Info("dsn-node: cluster keys loaded", zap.String("file", path), zap.String("primary_key_id", ids[0]), zap.Strings("key_ids", ids))
	return keys, nil
}

// errNoClusterKey: the file has only blank and comment lines. It is not
// then taken as a raw key, whatever its length.
var errNoClusterKey = errors.New("no key: want 16, 24 or 32 bytes in base64 or hex")

// parseClusterKeys decodes a key file's lines.
func parseClusterKeys(raw []byte) ([][]byte, error) {
	var keys [][]byte
	var lines []int // line number of each key
	for i, line := range strings.Split(string(raw), "\n") {
		text := strings.TrimSpace(line)
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		key, ok := decodeClusterKey(text)
		if !ok {
			return nil, fmt.Errorf("line %d: want 16, 24 or 32 bytes in base64 or hex (or one raw key as the whole file), got %d characters", i+1, len(text))
		}
		for j, k := range keys {
			if bytes.Equal(k, key) {
				return nil, fmt.Errorf("line %d repeats the key on line %d", i+1, lines[j])
			}
		}
		keys, lines = append(keys, key), append(lines, i+1)
	}
	switch {
	case len(keys) == 0:
		return nil, errNoClusterKey
	case len(keys) > tcp.MaxKeys:
		return nil, fmt.Errorf("%d keys, at most %d (remove the retired ones)", len(keys), tcp.MaxKeys)
	}
	return keys, nil
}

// decodeClusterKey reads one key given in base64 or hex.
func decodeClusterKey(text string) ([]byte, bool) {
	for _, dec := range []func(string) ([]byte, error){base64.StdEncoding.DecodeString, hex.DecodeString} {
		if b, err := dec(text); err == nil && validKeyLen(len(b)) {
			return b, true
		}
	}
	return nil, false
}

func validKeyLen(n int) bool { return n == 16 || n == 24 || n == 32 }

// reloadClusterKeys re-reads the -cluster-key-file on SIGHUP and gives
// the node the new keyring: one step of a key rotation without restart
// (README, "Rotating the cluster key"). A file that does not load, or a
// node started without a key file (-dev), keeps the keys it has.
func reloadClusterKeys(path string, n interface{ SetClusterKeys([][]byte) error }, log *zap.Logger) {
	if path == "" {
		log.Warn("dsn-node: SIGHUP: no -cluster-key-file to reload")
		return
	}
	keys, err := loadClusterKeys(path, log)
	if err == nil {
		err = n.SetClusterKeys(keys)
	}
	if err != nil {
		log.Error("dsn-node: SIGHUP: cluster keys unchanged", zap.Error(err))
		return
	}
	log.Info("dsn-node: SIGHUP: cluster keys reloaded", zap.Int("keys", len(keys)))
}
