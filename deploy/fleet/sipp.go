package fleet

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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

// SIPpProc is a SIPp process running in the background (e.g. a UAS).
type SIPpProc struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
	err  error
	out  *strings.Builder
}

// StartSIPp starts SIPp in the background; Wait collects it.
func StartSIPp(t TB, target string, args ...string) *SIPpProc {
	t.Helper()
	bin := RequireTool(t, "sipp")
	dir := t.TempDir()
	args = absScenarios(t, args)
	full := append([]string{"-nostdin", "-trace_err", "-error_file", filepath.Join(dir, "errors.log")}, args...)
	if tr := os.Getenv("DSN_SIPP_TRACE"); tr != "" {
		full = append(full, "-trace_msg", "-message_file", filepath.Join(tr, fmt.Sprintf("msg-%d.log", time.Now().UnixNano())))
	}
	if target != "" {
		full = append([]string{target}, full...)
	}
	p := &SIPpProc{cmd: exec.Command(bin, full...), dir: dir, done: make(chan struct{}), out: &strings.Builder{}}
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Wait waits for SIPp to exit (at most d) and fails the test unless every
// call succeeded.
func (p *SIPpProc) Wait(t TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("sipp %v did not finish within %s", p.cmd.Args, d)
	}
	if p.err != nil {
		errLog, _ := os.ReadFile(filepath.Join(p.dir, "errors.log"))
		t.Fatalf("sipp %v: %v\n%s\n%s", p.cmd.Args, p.err, tailLines(p.out.String(), 30), tailLines(string(errLog), 20))
	}
}

func absScenarios(t TB, args []string) []string {
	out := append([]string(nil), args...)
	for i, a := range out {
		if strings.HasSuffix(a, ".xml") && !filepath.IsAbs(a) {
			abs, err := filepath.Abs(a)
			if err != nil {
				t.Fatal(err)
			}
			out[i] = abs
		}
	}
	return out
}

// FreeUDPPort returns a UDP port on ip that was free a moment ago.
func FreeUDPPort(t TB, ip string) int {
	t.Helper()
	c, err := net.ListenPacket("udp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
