package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dsn-ims/dsn/dht/tcp"
)

var (
	testK1 = bytes.Repeat([]byte{0x11}, 32)
	testK2 = bytes.Repeat([]byte{0x22}, 16)
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// A rotation file: one key per line, the primary first, base64 or hex,
// with comments, blank lines and CRLF line ends.
func TestClusterKeysFile(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	body := "# rotation to K2: step 2\r\n" + b64(testK2) + "\r\n\r\n  " + hex.EncodeToString(testK1) + "  \r\n"
	keys, err := loadClusterKeys(writeFile(t, body), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !bytes.Equal(keys[0], testK2) || !bytes.Equal(keys[1], testK1) {
		t.Fatalf("keys %x, want [K2 K1]", keys)
	}
	entries := logs.FilterMessage("dsn-node: cluster keys loaded").All()
	if len(entries) != 1 {
		t.Fatalf("%d 'cluster keys loaded' lines", len(entries))
	}
	if got := entries[0].ContextMap()["primary_key_id"]; got != tcp.KeyID(testK2) {
		t.Errorf("primary_key_id %v, want %s", got, tcp.KeyID(testK2))
	}
	for _, e := range logs.All() {
		line := fmt.Sprint(e.Message, e.ContextMap())
		for _, k := range [][]byte{testK1, testK2} {
			if strings.Contains(line, b64(k)) || strings.Contains(line, hex.EncodeToString(k)) {
				t.Fatalf("log carries a key: %s", line)
			}
		}
	}
}

// A raw binary key that contains a newline byte is still one raw key.
func TestClusterKeyRawWithNewline(t *testing.T) {
	raw := "\x00\n\xff#" + strings.Repeat("\x80", 12)
	keys, err := loadClusterKeys(writeFile(t, raw), nopLogger())
	if err != nil || len(keys) != 1 || string(keys[0]) != raw {
		t.Fatalf("got %x, %v", keys, err)
	}
}

func TestClusterKeysFileErrors(t *testing.T) {
	many := ""
	for i := range tcp.MaxKeys + 1 {
		many += b64(bytes.Repeat([]byte{byte(i + 1)}, 16)) + "\n"
	}
	for name, c := range map[string]struct{ body, want string }{
		"empty":      {"", "no key"},
		"comments":   {"# nothing here\n\n", "no key"}, // 16 bytes, yet not a raw key
		"bad line":   {b64(testK1) + "\nnot a key\n", "line 2: want 16, 24 or 32 bytes"},
		"short key":  {b64(testK1) + "\n" + b64([]byte("short")) + "\n", "line 2: want 16, 24 or 32 bytes"},
		"duplicate":  {b64(testK1) + "\n# old\n" + hex.EncodeToString(testK1) + "\n", "line 3 repeats the key on line 1"},
		"too many":   {many, fmt.Sprintf("at most %d", tcp.MaxKeys)},
		"raw of two": {string(testK2) + "\n" + string(testK2), "want 16, 24 or 32 bytes"},
	} {
		_, err := loadClusterKeys(writeFile(t, c.body), nopLogger())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "-cluster-key-file") {
			t.Errorf("%s: got %v, want an error with %q", name, err, c.want)
		}
	}
}

// A file with several keys gives the node the whole keyring, primary
// first, and SIGHUP hands a re-read keyring to the running node.
func TestClusterKeyRing(t *testing.T) {
	path := writeFile(t, b64(testK1)+"\n"+b64(testK2)+"\n")
	o, err := parse(t, []string{"-cluster-key-file", path, "-domain", "dsn.example.com", "-auth-open"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, deps, err := buildConfig(o, nopLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(deps.ClusterKeys) != 2 || !bytes.Equal(deps.ClusterKeys[0], testK1) || !bytes.Equal(deps.ClusterKey, testK1) {
		t.Fatalf("keyring %d keys, primary %x", len(deps.ClusterKeys), deps.ClusterKey)
	}
	var got [][]byte
	set := keySetter(func(k [][]byte) error { got = k; return nil })
	if err := os.WriteFile(path, []byte(b64(testK2)+"\n"+b64(testK1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadClusterKeys(path, set, nopLogger())
	if len(got) != 2 || !bytes.Equal(got[0], testK2) {
		t.Fatalf("SIGHUP gave %d keys", len(got))
	}
	got = nil
	if err := os.WriteFile(path, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	reloadClusterKeys(path, set, nopLogger())
	if got != nil {
		t.Fatal("a bad file replaced the keys")
	}
}

type keySetter func([][]byte) error

func (f keySetter) SetClusterKeys(k [][]byte) error { return f(k) }
