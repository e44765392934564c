package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func parse(t *testing.T, args []string, env map[string]string) (*options, error) {
	t.Helper()
	var o options
	fs := newFlagSet(&o, &bytes.Buffer{})
	err := loadFlags(fs, args, func(k string) string { return env[k] })
	return &o, err
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPrecedence(t *testing.T) {
	cfg := writeFile(t, "name: from-file\ndomain: file.example\njoin: [10.0.0.1:7946, 10.0.0.2:7946]\nreplicas: 5\n")
	o, err := parse(t, []string{"-config", cfg, "-domain", "flag.example"},
		map[string]string{"DSN_NAME": "from-env"})
	if err != nil {
		t.Fatal(err)
	}
	if o.domain != "flag.example" {
		t.Errorf("flag must override: domain %q", o.domain)
	}
	if o.name != "from-env" {
		t.Errorf("env must override file: name %q", o.name)
	}
	if o.join != "10.0.0.1:7946,10.0.0.2:7946" || o.replicas != 5 {
		t.Errorf("file values: join %q replicas %d", o.join, o.replicas)
	}
}

func TestConfigFromEnvOnly(t *testing.T) {
	cfg := writeFile(t, "sip: 127.0.0.9:5070\n")
	o, err := parse(t, nil, map[string]string{"DSN_CONFIG": cfg, "DSN_CLUSTER_KEY_FILE": "/k"})
	if err != nil {
		t.Fatal(err)
	}
	if o.sip != "127.0.0.9:5070" || o.clusterKeyFile != "/k" {
		t.Fatalf("got sip %q key %q", o.sip, o.clusterKeyFile)
	}
}

func TestBadInputFailsFastNamingTheField(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unknown yaml key", []string{"-config", writeFile(t, "nmae: x\n")}, nil, "unknown key(s) nmae"},
		{"bad yaml", []string{"-config", writeFile(t, "name: [\n")}, nil, "not valid YAML"},
		{"bad env int", nil, map[string]string{"DSN_REPLICAS": "three"}, "DSN_REPLICAS"},
		{"stray argument", []string{"oops"}, nil, "unexpected argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parse(t, c.args, c.env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("want error containing %q, got %v", c.want, err)
			}
		})
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	key := writeFile(t, "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n")
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no domain", []string{"-name", "a", "-cluster-key-file", key}, "-domain"},
		{"no key", []string{"-name", "a", "-domain", "d.example"}, "-cluster-key-file: must be set"},
		{"short key", []string{"-name", "a", "-domain", "d.example", "-cluster-key-file", writeFile(t, "short")}, "want 16, 24 or 32 bytes"},
		{"bad sip", []string{"-name", "a", "-domain", "d.example", "-cluster-key-file", key, "-sip", "nope"}, "-sip"},
		{"bad replicas", []string{"-name", "a", "-domain", "d.example", "-cluster-key-file", key, "-replicas", "0"}, "-replicas"},
		{"bad log level", []string{"-log-level", "loud"}, "-log-level"},
		{"negative queue delay", []string{"-dev", "-max-queue-delay", "-1ms"}, "-max-queue-delay -1ms: want >= 0"},
		{"tx linger too short", []string{"-dev", "-sip-tx-linger", "500ms"}, "-sip-tx-linger 500ms: want 1s to 32s"},
		{"tx linger over the RFC", []string{"-dev", "-sip-tx-linger", "1m"}, "-sip-tx-linger 1m0s: want 1s to 32s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(c.args, func(string) string { return "" }, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), c.want) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, errb.String(), c.want)
			}
		})
	}
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var errb bytes.Buffer
	if code := run([]string{"-h"}, func(string) string { return "" }, &bytes.Buffer{}, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, f := range []string{"-name", "-domain", "-sip", "-cluster", "-join", "-cluster-key-file", "-replicas", "-admin", "-dev", "DSN_"} {
		if !strings.Contains(errb.String(), f) {
			t.Errorf("help does not mention %s", f)
		}
	}
}

// The file is read as base64 first (the documented format), then hex,
// then as raw bytes.
func TestClusterKeyFormats(t *testing.T) {
	text := "0123456789abcdef0123456789abcdef"
	binary := "\x00\xff\x10\x80" + text[4:] // not valid base64 or hex
	for name, c := range map[string]struct{ body, want string }{
		"base64": {"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", text},
		"hex":    {"3031323334353637383961626364656630313233343536373839616263646566", text},
		"raw":    {binary, binary},
	} {
		k, err := loadClusterKeys(writeFile(t, c.body), nopLogger())
		if err != nil || len(k) != 1 || string(k[0]) != c.want {
			t.Errorf("%s: %v %q", name, err, k)
		}
	}
}
