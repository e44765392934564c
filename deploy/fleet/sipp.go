package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// writeUsers writes a SIPp injection file of n users in domain.
func WriteUsers(t TB, dir, domain string, n int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("SEQUENTIAL\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "user%04d;%s\n", i, domain)
	}
	p := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sipp runs SIPp to completion against target and fails the test on any
// failed call.
func SIPp(t TB, target string, args ...string) string {
	t.Helper()
	bin := RequireTool(t, "sipp")
	dir := t.TempDir()
	for i, a := range args {
		if strings.HasSuffix(a, ".xml") && !filepath.IsAbs(a) {
			abs, err := filepath.Abs(a)
			if err != nil {
				t.Fatal(err)
			}
			args[i] = abs
		}
	}
	full := append([]string{target, "-trace_stat", "-stf", filepath.Join(dir, "stat.csv"), "-nostdin", "-timeout", "60s", "-timeout_error"}, args...)
	cmd := exec.Command(bin, full...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
		var errLog []byte
		if len(logs) > 0 {
			errLog, _ = os.ReadFile(logs[0])
		}
		t.Fatalf("sipp %v: %v\n%s\n%s", full, err, tailLines(string(out), 40), tailLines(string(errLog), 20))
	}
	return string(out)
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
