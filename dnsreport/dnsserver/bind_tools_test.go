package dnsserver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool returns the path of a BIND utility, skipping the test when it is
// missing outside CI and failing it in CI.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not installed but CI is set: %v", name, err)
	}
	t.Skipf("%s not installed (apt-get install bind9-dnsutils); set CI=1 to make this a failure", name)
	return ""
}

// TestBINDTools drives the server with BIND's own clients: nsupdate signs an
// UPDATE with a key file written by BINDFormat, dig reads the result back
// and transfers the zone with the key.
func TestBINDTools(t *testing.T) {
	nsupdate, dig := needTool(t, "nsupdate"), needTool(t, "dig")
	s := startServer(t, testConfig())
	host, port, _ := net.SplitHostPort(s.Addr())
	keyFile := filepath.Join(t.TempDir(), "update.key")
	if err := os.WriteFile(keyFile, []byte(keySHA256.BINDFormat()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(stdin string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return string(out)
	}

	script := "server " + host + " " + port + "\nzone dsn.example.com.\n" +
		"update add bind.dsn.example.com. 30 IN A 192.0.2.123\n" +
		"update add _sip._tcp.dsn.example.com. 30 IN SRV 10 50 5060 bind.dsn.example.com.\nsend\n"
	run(script, nsupdate, "-k", keyFile)
	if got := run("", dig, "@"+host, "-p", port, "+short", "bind.dsn.example.com.", "A"); strings.TrimSpace(got) != "192.0.2.123" {
		t.Errorf("dig after nsupdate: %q", got)
	}

	// An unsigned nsupdate is refused.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nsupdate)
	cmd.Stdin = strings.NewReader("server " + host + " " + port + "\nzone dsn.example.com.\nupdate add evil.dsn.example.com. 30 IN A 203.0.113.9\nsend\n")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "NOTAUTH") {
		t.Errorf("unsigned nsupdate: err %v, output %s", err, out)
	}

	axfr := run("", dig, "@"+host, "-p", port, "-k", keyFile, "dsn.example.com.", "AXFR")
	if !strings.Contains(axfr, "bind.dsn.example.com.") || strings.Contains(axfr, "failed") {
		t.Errorf("signed AXFR with dig:\n%s", axfr)
	}
	unsigned := run("", dig, "@"+host, "-p", port, "dsn.example.com.", "AXFR")
	if !strings.Contains(unsigned, "Transfer failed") {
		t.Errorf("unsigned AXFR with dig was not refused:\n%s", unsigned)
	}
}
