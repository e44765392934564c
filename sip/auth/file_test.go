package auth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var (
	md5Hex = strings.Repeat("a1", 16)
	shaHex = strings.Repeat("b2", 32)
)

func TestParseFile(t *testing.T) {
	good := strings.Join([]string{
		"# DSN credentials",
		"",
		"alice dsn.test " + md5Hex,
		"alice dsn.test sha256:" + strings.ToUpper(shaHex) + "   # upper case accepted",
		"  bob\tother.realm   md5:" + md5Hex,
		"carol dsn.test " + md5Hex + " #comment right after",
		"   # indented comment",
	}, "\n")
	es, err := ParseFile(strings.NewReader(good), "creds")
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{User: "alice", Realm: "dsn.test", Algorithm: MD5, HA1: md5Hex, Line: 3},
		{User: "alice", Realm: "dsn.test", Algorithm: SHA256, HA1: shaHex, Line: 4},
		{User: "bob", Realm: "other.realm", Algorithm: MD5, HA1: md5Hex, Line: 5},
		{User: "carol", Realm: "dsn.test", Algorithm: MD5, HA1: md5Hex, Line: 6},
	}
	if len(es) != len(want) {
		t.Fatalf("got %d entries: %+v", len(es), es)
	}
	for i := range want {
		if es[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, es[i], want[i])
		}
	}

	for _, tc := range []struct{ name, text, wantMsg string }{
		{"two fields", "alice dsn.test", "creds:1: want \"user realm hash\", found 2 fields"},
		{"four fields", "a r " + md5Hex + " x", "creds:1: want \"user realm hash\", found 4 fields"},
		{"short md5", "# c\nalice dsn.test abcd", "creds:2: MD5 hash has 4 characters, want 32 hex digits"},
		{"sha256 length", "alice dsn.test sha256:" + md5Hex, "creds:1: SHA-256 hash has 32 characters, want 64"},
		{"not hex", "alice dsn.test " + strings.Repeat("zz", 16), "creds:1: MD5 hash is not lower-case hex"},
		{"bad prefix", "alice dsn.test sha1:" + md5Hex, `creds:1: hash prefix "sha1:"`},
		{"realm with @", "alice a@b " + md5Hex, `creds:1: realm "a@b" contains '@'`},
		{"quote in user", `al"ice dsn.test ` + md5Hex, "creds:1: user"},
		{"duplicate", "alice dsn.test " + md5Hex + "\n\nalice dsn.test md5:" + md5Hex,
			`creds:3: user "alice" in realm "dsn.test" already has a MD5 hash on line 1`},
		{"too long", "alice dsn.test " + strings.Repeat("a", MaxLineLen+10), "creds:1: line longer than 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFile(strings.NewReader(tc.text), "creds")
			if !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("err = %v, want ErrCredentials with %q", err, tc.wantMsg)
			}
		})
	}
}

func TestStoreLoadReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds")
	write := func(text string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	l1, _ := HA1Line("alice", "dsn.test", "one", MD5)
	write(l1+"\n", 0o600)
	s, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if s.Len() != 1 || len(s.Warnings()) != 0 || s.Path() != path || !s.HasRealm("dsn.test") || s.HasRealm("x") {
		t.Fatalf("store: len %d warnings %v", s.Len(), s.Warnings())
	}
	if ha1, ok := s.lookup("alice", "dsn.test", MD5); !ok || ha1 != hexHash("MD5", "alice", "dsn.test", "one") {
		t.Fatal("alice MD5 not found")
	}

	// A broken file keeps the old credentials.
	write(l1+"\nbroken line\n", 0o600)
	if err := s.Reload(); !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), path+":2:") {
		t.Fatalf("Reload of broken file: %v", err)
	}
	if _, ok := s.lookup("alice", "dsn.test", MD5); !ok || s.Len() != 1 {
		t.Fatal("broken reload lost the old credentials")
	}

	// A good file replaces them; a world-readable one warns.
	l2, _ := HA1Line("bob", "dsn.test", "two", SHA256)
	write(l2+"\n", 0o644)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.lookup("alice", "dsn.test", MD5); ok {
		t.Fatal("alice survived the reload")
	}
	if _, ok := s.lookup("bob", "dsn.test", SHA256); !ok {
		t.Fatal("bob missing after reload")
	}
	w := s.Warnings()
	if len(w) != 1 || !errors.Is(w[0], ErrInsecureFile) || !strings.Contains(w[0].Error(), "0644") {
		t.Fatalf("warnings %v, want one ErrInsecureFile naming 0644", w)
	}

	// Group-readable warns too; an empty file loads with a warning.
	write("# nobody\n", 0o640)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if w := s.Warnings(); len(w) != 2 || s.Len() != 0 {
		t.Fatalf("empty group-readable file: warnings %v", w)
	}

	if _, err := LoadFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "auth: credentials file") {
		t.Fatalf("missing file: %v", err)
	}
	mem, err := NewStore(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.Reload(); !errors.Is(err, ErrCredentials) {
		t.Fatalf("Reload of NewStore: %v", err)
	}
}

func TestNewStoreValidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    []Entry
	}{
		{"upper-case hash", []Entry{{User: "a", Realm: "r", Algorithm: MD5, HA1: strings.ToUpper(md5Hex)}}},
		{"unknown algorithm", []Entry{{User: "a", Realm: "r", Algorithm: "SHA-1", HA1: md5Hex}}},
		{"empty user", []Entry{{Realm: "r", Algorithm: MD5, HA1: md5Hex}}},
		{"duplicate", []Entry{{User: "a", Realm: "r", Algorithm: MD5, HA1: md5Hex}, {User: "a", Realm: "r", Algorithm: MD5, HA1: md5Hex}}},
	} {
		if _, err := NewStore(tc.e); !errors.Is(err, ErrCredentials) {
			t.Errorf("%s: err %v, want ErrCredentials", tc.name, err)
		}
	}
}
