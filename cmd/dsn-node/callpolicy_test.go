package main

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/dsn-ims/dsn/sip/auth"
	"github.com/dsn-ims/dsn/sip/proxy"
)

// The call policy: challenge by default with credentials, accept with
// -auth-open or -dev, an explicit value wins, challenge without
// credentials is refused; -trusted and the credentials reach the node.
func TestCallPolicyFlag(t *testing.T) {
	line, err := auth.HA1Line("alice", "dsn.example.com", "secret", auth.MD5)
	if err != nil {
		t.Fatal(err)
	}
	creds := writeFile(t, line+"\n")
	key := writeFile(t, b64(testK1)+"\n")
	base := []string{"-domain", "dsn.example.com", "-cluster-key-file", key}
	for _, c := range []struct {
		name   string
		args   []string
		policy proxy.CallPolicy
		err    string
	}{
		{"auth-file: challenge", []string{"-auth-file", creds}, proxy.PolicyChallenge, ""},
		{"auth-open: accept", []string{"-auth-open"}, proxy.PolicyAccept, ""},
		{"explicit reject", []string{"-auth-file", creds, "-call-policy", "reject"}, proxy.PolicyReject, ""},
		{"explicit accept with credentials", []string{"-auth-file", creds, "-call-policy", "Accept"}, proxy.PolicyAccept, ""},
		{"reject with auth-open", []string{"-auth-open", "-call-policy", "reject", "-trusted", "10.0.0.0/8"}, proxy.PolicyReject, ""},
		{"challenge without credentials", []string{"-auth-open", "-call-policy", "challenge"}, "", "needs -auth-file"},
		{"unknown policy", []string{"-auth-open", "-call-policy", "open"}, "", "-call-policy"},
		{"bad algorithms", []string{"-auth-file", creds, "-auth-algorithms", "MD5,SHA-1"}, "", "-auth-algorithms"},
		{"MD5 first", []string{"-auth-file", creds, "-auth-algorithms", "MD5,SHA-256"}, proxy.PolicyChallenge, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			o, err := parse(t, append(append([]string(nil), base...), c.args...), nil)
			if err != nil {
				t.Fatal(err)
			}
			cfg, deps, err := buildConfig(o, nopLogger())
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Proxy.CallPolicy != c.policy {
				t.Fatalf("policy %q, want %q", cfg.Proxy.CallPolicy, c.policy)
			}
			if d, ok := deps.Authenticator.(*auth.Digest); ok != (deps.Callers != nil) || (ok && deps.Callers != d) {
				t.Fatalf("Callers %v for authenticator %T", deps.Callers, deps.Authenticator)
			}
			if strings.Contains(strings.Join(c.args, " "), "-trusted") && (deps.Trusted == nil || !deps.Trusted.Contains(mustAddr("10.1.2.3"))) {
				t.Fatalf("-trusted not passed on: %v", deps.Trusted)
			}
		})
	}
	var o options
	fs := newFlagSet(&o, &strings.Builder{})
	if err := loadFlags(fs, []string{"-dev", "-cluster-key-file", key}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	applyDevDefaults(&o, fs)
	cfg, _, err := buildConfig(&o, nopLogger())
	if err != nil || cfg.Proxy.CallPolicy != proxy.PolicyAccept {
		t.Fatalf("-dev: policy %q, %v", cfg.Proxy.CallPolicy, err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
