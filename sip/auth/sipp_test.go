package auth

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sippPath returns the sipp binary, or skips (fails with CI set) when it
// is missing.
func sippPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("sipp not found and CI is set: %v", err)
		}
		t.Skip("sipp not installed (set CI=1 to make this a failure)")
	}
	return p
}

// runSipp runs one scenario from testdata to completion and returns its
// output and exit error.
func runSipp(t *testing.T, bin, scenario string, args ...string) (string, error) {
	t.Helper()
	sf, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]string{"-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(freeUDPPort(t)), "-nostdin", "-trace_err",
		"-error_file", filepath.Join(dir, "errors.log"), "-timeout", "20s", "-timeout_error", "-m", "1"}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t.Logf("sipp %v", all)
	err = cmd.Run()
	errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
	tail := out.Bytes()
	if len(tail) > 3000 {
		tail = tail[len(tail)-3000:]
	}
	return string(tail) + "\nerrors:\n" + string(errs), err
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// TestSippDigest: the real SIPp registers through a sipgo server running
// the registrar with Digest: the right password gives 200, a wrong one a
// second 401. SIPp 3.6 implements only MD5 and reads the first algorithm
// of the joined WWW-Authenticate headers, so it works when MD5 is offered
// first (-auth-algorithms MD5,SHA-256); with the default order (SHA-256
// first, RFC 8760) it registers when the installed SIPp can do SHA-256,
// and otherwise must fail for that reason.
func TestSippDigest(t *testing.T) {
	bin := sippPath(t)
	for _, tc := range []struct {
		name string
		algs []Algorithm
	}{
		{"MD5 only", []Algorithm{MD5}},
		{"MD5 then SHA-256", []Algorithm{MD5, SHA256}},
		{"SHA-256 then MD5 (default)", Algorithms()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testDigestConfig()
			cfg.Algorithms = tc.algs
			e := newTestEnvClock(t, cfg, nil, time.Now)
			reg := newRegistrar(t, e.d, time.Now)
			addr := sipServer(t, reg)
			// SIPp hashes sip:<remote address> unless told the Request-URI.
			common := []string{"-s", "alice", "-au", "alice", "-auth_uri", testDomain, "-key", "domain", testDomain, addr}

			out, err := runSipp(t, bin, "register_auth.xml", append([]string{"-ap", password("alice")}, common...)...)
			if err != nil && tc.algs[0] == SHA256 && strings.Contains(out, "authentication must use MD5 or AKAv1-MD5") {
				// SIPp 3.6 implements only MD5 and answers only the first
				// challenge: it fails against the default order, as the
				// -auth-algorithms flag documents; a node serving such
				// clients offers MD5 first (the MD5-first cases above, and
				// the e2e tests with -auth-algorithms MD5,SHA-256). The
				// refusal is all there is to check here.
				if s := e.d.Stats(); s.Accepted != 0 || s.Challenged == 0 {
					t.Fatalf("stats %+v", s)
				}
				t.Logf("the installed SIPp cannot answer a SHA-256 challenge (SIPp 3.6): refused as expected")
				return
			}
			if err != nil {
				t.Fatalf("register_auth.xml: %v\n%s", err, out)
			}
			if bs, err := reg.Lookup(ctx, "sip:alice@"+testDomain); err != nil || len(bs) != 1 {
				t.Fatalf("after register_auth.xml: %v %v", bs, err)
			}
			out, err = runSipp(t, bin, "register_auth_wrong.xml", append([]string{"-ap", "guess"}, common...)...)
			if err != nil {
				t.Fatalf("register_auth_wrong.xml: %v\n%s", err, out)
			}
			if s := e.d.Stats(); s.Accepted != 1 || s.Failed != 1 {
				t.Fatalf("stats %+v", s)
			}
		})
	}
}
