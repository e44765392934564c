package dnsreport

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport/bindtest"
)

const secret32 = "ofTiGgURFo/P4YNDo1mzzFcyccSKkGOzFc+PiI9LqHw="

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []Key
	}{
		{"tsig-keygen output", "key \"dsn-key\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + secret32 + "\";\n};\n",
			[]Key{{"dsn-key.", dns.HmacSHA256, secret32}}},
		{"one line, unquoted name and secret", `key dsn-key { algorithm hmac-sha512; secret ` + secret32 + `; };`,
			[]Key{{"dsn-key.", dns.HmacSHA512, secret32}}},
		{"no algorithm means hmac-sha256", `key "k" { secret "` + secret32 + `"; };`,
			[]Key{{"k.", dns.HmacSHA256, secret32}}},
		{"fqdn name and algorithm, upper case", `KEY "Dsn.Key." { ALGORITHM HMAC-SHA384.; SECRET "` + secret32 + `"; };`,
			[]Key{{"dsn.key.", dns.HmacSHA384, secret32}}},
		{"hmac-sha1", `key "old" { algorithm hmac-sha1; secret "` + secret32 + `"; };`,
			[]Key{{"old.", dns.HmacSHA1, secret32}}},
		{"comments of every style and several keys", `
// the update key
# shell style
/* a block
   comment */ key "a" { algorithm hmac-sha256; /* inline */ secret "` + secret32 + `"; }; // trailing
key "b" {
	secret "` + secret32 + `"; # secret first
	algorithm hmac-sha512;
};`,
			[]Key{{"a.", dns.HmacSHA256, secret32}, {"b.", dns.HmacSHA512, secret32}}},
		{"secret with slashes unquoted", `key k { secret ab//cd+/; };`,
			[]Key{{"k.", dns.HmacSHA256, "ab//cd+/"}}},
		{"CRLF line ends", "key \"k\" {\r\n algorithm hmac-sha256;\r\n secret \"" + secret32 + "\";\r\n};\r\n",
			[]Key{{"k.", dns.HmacSHA256, secret32}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKeys("test.key", []byte(tt.src))
			if err != nil {
				t.Fatalf("ParseKeys: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("key %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		line     int
		contains string
	}{
		{"empty file", "// nothing\n", 0, "no key statement"},
		{"other statement", "\noptions { };", 2, `unexpected "options"`},
		{"missing brace", `key "k" algorithm`, 1, `expected "{"`},
		{"missing semicolon after secret", "key \"k\" {\n secret \"" + secret32 + "\"\n};", 3, `expected ";" after secret`},
		{"missing final semicolon", "key \"k\" { secret \"" + secret32 + "\"; }\nkey", 2, `expected ";" after the closing }`},
		{"unknown clause", "key \"k\" {\n\n  flavour hmac; };", 3, `unknown clause "flavour"`},
		{"no secret", "key \"k\" {\n algorithm hmac-sha256;\n};", 1, "has no secret"},
		{"bad base64", "key \"k\" {\n algorithm hmac-sha256;\n secret \"not base64!\";\n};", 3, "not valid base64"},
		{"md5", "key \"k\" {\n algorithm hmac-md5;\n secret \"" + secret32 + "\";\n};", 2, "HMAC-MD5 is obsolete"},
		{"unknown algorithm", "key \"k\" { algorithm hmac-sha3; secret \"" + secret32 + "\"; };", 1, "not supported"},
		{"truncated algorithm", "key \"k\" { algorithm hmac-sha256-128; secret \"" + secret32 + "\"; };", 1, "not supported"},
		{"duplicate key", "key a { secret \"" + secret32 + "\"; };\n\nkey a { secret \"" + secret32 + "\"; };", 3, "defined twice (first on line 1)"},
		{"two secrets", "key a {\n secret \"" + secret32 + "\";\n secret \"" + secret32 + "\"; };", 3, "two secret clauses"},
		{"unterminated string", "key \"k {\n};", 1, "unterminated quoted string"},
		{"unterminated comment", "key k { /* oops\n\n", 1, "unterminated /* comment"},
		{"eof in key", "key k {\n secret \"" + secret32 + "\";", 2, `found end of file`},
		{"empty name", `key "" { secret "` + secret32 + `"; };`, 1, "key name is empty"},
		{"bad name", `key "a..b" { secret "` + secret32 + `"; };`, 1, "not a valid domain name"},
		{"empty secret", `key k { secret ""; };`, 1, "secret is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys("f.key", []byte(tt.src))
			if err == nil {
				t.Fatal("ParseKeys accepted bad input")
			}
			var kfe *KeyFileError
			if !errors.As(err, &kfe) {
				t.Fatalf("error %v (%T) is not a *KeyFileError", err, err)
			}
			if kfe.Line != tt.line {
				t.Errorf("line = %d, want %d (%v)", kfe.Line, tt.line, err)
			}
			if !strings.Contains(err.Error(), tt.contains) || !strings.HasPrefix(err.Error(), "dnsreport: TSIG key file f.key") {
				t.Errorf("error %q does not start with the file name or lacks %q", err, tt.contains)
			}
		})
	}
}

func TestGenerateKeyRoundTrip(t *testing.T) {
	for _, alg := range []string{"", "hmac-sha1", "hmac-sha256.", "HMAC-SHA384", "hmac-sha512"} {
		k, err := GenerateKey("dev-key", alg, bytes.NewReader(bytes.Repeat([]byte{7}, 64)))
		if err != nil {
			t.Fatalf("GenerateKey(%q): %v", alg, err)
		}
		got, err := ParseKeys("", []byte(k.BINDFormat()))
		if err != nil {
			t.Fatalf("parse BINDFormat of %q: %v\n%s", alg, err, k.BINDFormat())
		}
		if len(got) != 1 || got[0] != k {
			t.Errorf("round trip %q: got %+v, want %+v", alg, got, k)
		}
	}
	if _, err := GenerateKey("k", "hmac-md5", bytes.NewReader(make([]byte, 64))); err == nil {
		t.Error("GenerateKey accepted hmac-md5")
	}
	if _, err := GenerateKey("k", "", bytes.NewReader(nil)); err == nil {
		t.Error("GenerateKey ignored a short random source")
	}
}

func TestLoadKeyFileWarnsOnReadableFile(t *testing.T) {
	dir := t.TempDir()
	src := "key \"k\" { algorithm hmac-sha256; secret \"" + secret32 + "\"; };\n"
	private := filepath.Join(dir, "private.key")
	public := filepath.Join(dir, "public.key")
	if err := os.WriteFile(private, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(public, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(public, 0o644); err != nil { // umask-proof
		t.Fatal(err)
	}
	keys, warn, err := LoadKeyFile(private)
	if err != nil || warn != nil || len(keys) != 1 {
		t.Fatalf("private file: keys=%v warn=%v err=%v", keys, warn, err)
	}
	keys, warn, err = LoadKeyFile(public)
	if err != nil || len(keys) != 1 {
		t.Fatalf("public file: keys=%v err=%v", keys, err)
	}
	if warn == nil || !strings.Contains(warn.String(), "chmod 600") {
		t.Errorf("no usable warning for a world-readable key file: %v", warn)
	}
	if _, _, err := LoadKeyFile(filepath.Join(dir, "missing.key")); err == nil || !strings.HasPrefix(err.Error(), "dnsreport:") {
		t.Errorf("missing file: %v", err)
	}
}

// TestParseRealTSIGKeygenOutput parses what the installed tsig-keygen
// writes, for every algorithm we accept.
func TestParseRealTSIGKeygenOutput(t *testing.T) {
	keygen := requireBinary(t, "tsig-keygen")
	for _, alg := range []string{"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"} {
		out, err := exec.Command(keygen, "-a", alg, "dsn."+alg).Output()
		if err != nil {
			t.Fatalf("tsig-keygen -a %s: %v", alg, err)
		}
		keys, err := ParseKeys("tsig-keygen", out)
		if err != nil {
			t.Fatalf("parse tsig-keygen %s output: %v\n%s", alg, err, out)
		}
		if len(keys) != 1 || keys[0].Name != "dsn."+alg+"." || keys[0].Algorithm != alg+"." {
			t.Errorf("tsig-keygen %s: got %+v", alg, keys)
		}
	}
}

func TestSelectKey(t *testing.T) {
	a := Key{"a.", dns.HmacSHA256, secret32}
	b := Key{"b.", dns.HmacSHA256, secret32}
	if k, err := SelectKey([]Key{a}, ""); err != nil || k != a {
		t.Errorf("single key: %v %v", k, err)
	}
	if _, err := SelectKey([]Key{a, b}, ""); err == nil || !strings.Contains(err.Error(), "a., b.") {
		t.Errorf("ambiguous: %v", err)
	}
	if k, err := SelectKey([]Key{a, b}, "B"); err != nil || k != b {
		t.Errorf("by name: %v %v", k, err)
	}
	if _, err := SelectKey([]Key{a}, "c"); err == nil {
		t.Error("missing key selected")
	}
}

func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("key \"k\" { algorithm hmac-sha256; secret \"" + secret32 + "\"; };"))
	f.Add([]byte("/* x */ key k { secret a; }; # y\n// z"))
	f.Add([]byte("key \"\\\"\" {"))
	f.Fuzz(func(t *testing.T, src []byte) {
		keys, err := ParseKeys("fuzz", src)
		if err != nil {
			return
		}
		for _, k := range keys {
			if verr := k.Validate(); verr != nil {
				t.Fatalf("parsed an invalid key %+v: %v", k, verr)
			}
			again, perr := ParseKeys("again", []byte(k.BINDFormat()))
			if perr != nil || len(again) != 1 || again[0] != k {
				t.Fatalf("BINDFormat of %+v does not parse back: %v %+v", k, perr, again)
			}
		}
	})
}

// requireBinary returns the path of an external tool, skipping when it is
// missing and CI is unset, failing when CI is set.
func requireBinary(t *testing.T, name string) string {
	t.Helper()
	skip, err := bindtest.Availability(name)
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	p, err := bindtest.Find(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeyNameCharacters(t *testing.T) {
	_, err := ParseKeys("q", []byte(`key "a\"b" { secret "`+secret32+`"; };`))
	if err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("quote in key name: %v", err)
	}
}
