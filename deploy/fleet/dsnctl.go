package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	ctlOnce sync.Once
	ctlPath string
	ctlErr  error
)

// DsnctlBinary builds cmd/dsnctl once per test run.
func DsnctlBinary(t TB) string {
	t.Helper()
	ctlOnce.Do(func() {
		dir, err := os.MkdirTemp("", "dsn-e2e-ctl-")
		if err != nil {
			ctlErr = err
			return
		}
		ctlPath = filepath.Join(dir, "dsnctl")
		out, err := exec.Command("go", "build", "-o", ctlPath, "github.com/dsn-ims/dsn/cmd/dsnctl").CombinedOutput()
		if err != nil {
			ctlErr = fmt.Errorf("go build dsnctl: %v\n%s", err, out)
		}
	})
	if ctlErr != nil {
		t.Fatal(ctlErr)
	}
	return ctlPath
}

// Dsnctl runs the operator CLI against the fleet's BIND (-dns-server and
// -tsig-key-file set) and fails the test unless it exits 0. It returns
// the output.
func (f *DNSFleet) Dsnctl(t TB, args ...string) string {
	t.Helper()
	full := append([]string{"-dns-server", f.Named, "-tsig-key-file", f.BIND.KeyFile(), "-timeout", "10s"}, args...)
	out, err := exec.Command(DsnctlBinary(t), full...).CombinedOutput()
	if err != nil {
		t.Fatalf("dsnctl %s: %v\n%s", strings.Join(full, " "), err, out)
	}
	return string(out)
}
