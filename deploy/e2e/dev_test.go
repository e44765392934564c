package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// The README's first command: dsn-node -dev runs on its embedded default,
// publishes itself in its embedded DNS, and the instructions it prints
// (register with SIPp, answer, call) work as printed.
func TestDevModeInstructionsWork(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	f := fleet.New(t, "dsn.local")
	p, err := f.Exec("dev", "127.0.0.1", []string{"-dev", "-sip", "127.0.0.1:0", "-cluster", "127.0.0.1:0",
		"-admin", "127.0.0.1:0", "-log-format", "json"})
	if err != nil {
		t.Fatal(err)
	}
	fleet.Eventually(t, 10*time.Second, "dev node ready (registered in its DNS)", func() error {
		code, err := p.GetJSON("/readyz", nil)
		if err != nil || code != 200 {
			return err
		}
		return nil
	})
	out := p.Stdout()
	for _, want := range []string{"development mode", "register.xml", "uac.xml", "_sip._udp.dsn.local SRV", "tel:+15550001"} {
		if !strings.Contains(out, want) {
			t.Fatalf("instructions lack %q:\n%s", want, out)
		}
	}
	// Follow the printed SIPp commands (with free ports).
	phone := fleet.FreeUDPPort(t, "127.0.0.1")
	fleet.SIPp(t, p.SIP, "-sf", scenarios+"register.xml", "-s", "alice", "-key", "domain", "dsn.local",
		"-i", "127.0.0.1", "-p", itoa(phone), "-m", "1")
	uas := fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", itoa(phone), "-m", "1",
		"-timeout", "20s", "-timeout_error")
	uac := fleet.StartSIPp(t, p.SIP, "-sf", scenarios+"uac.xml", "-s", "alice", "-key", "domain", "dsn.local",
		"-i", "127.0.0.1", "-p", itoa(fleet.FreeUDPPort(t, "127.0.0.1")), "-m", "1", "-timeout", "20s", "-timeout_error")
	uac.Wait(t, 30*time.Second)
	uas.Wait(t, 10*time.Second)

	// The printed number: a phone registered as +15550001 is reachable as
	// tel:+15550001 through ENUM in the embedded DNS.
	num := fleet.FreeUDPPort(t, "127.0.0.1")
	fleet.SIPp(t, p.SIP, "-sf", scenarios+"register.xml", "-s", "+15550001", "-key", "domain", "dsn.local",
		"-i", "127.0.0.1", "-p", itoa(num), "-m", "1")
	uas = fleet.StartSIPp(t, "", "-sf", scenarios+"uas.xml", "-i", "127.0.0.1", "-p", itoa(num), "-m", "1",
		"-timeout", "20s", "-timeout_error")
	inf := filepath.Join(t.TempDir(), "callee.csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\ntel:+15550001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uac = fleet.StartSIPp(t, p.SIP, "-sf", "testdata/uac_uri.xml", "-inf", inf, "-key", "uriparams", "",
		"-i", "127.0.0.1", "-p", itoa(fleet.FreeUDPPort(t, "127.0.0.1")), "-m", "1", "-timeout", "20s", "-timeout_error")
	uac.Wait(t, 30*time.Second)
	uas.Wait(t, 10*time.Second)
	if err := p.Term(10 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}
