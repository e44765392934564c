package calls

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sippRun is one SIPp process the benchmark started, with a directory of
// its own for the statistics (-trace_stat, one line a second and a last
// one at exit), the error log and the setup-time log.
type sippRun struct {
	cmd   *exec.Cmd
	dir   string
	start time.Time
	done  chan struct{}
	err   error         // exit status, valid once done is closed
	wall  time.Duration // from start to exit
	cpu   time.Duration // user + system time SIPp used
}

// sippBuffer is SIPp's socket buffer size (-buff_size; the kernel caps it
// at net.core.rmem_max): with its default of 64 KiB SIPp drops bursts of
// datagrams at a few thousand calls/s long before it runs out of CPU, and
// it is not SIPp's buffers this benchmark is about.
const sippBuffer = "4194304"

// startSIPp starts bin with args; with traceLogs, the scenario's <log>
// lines go to setup.log.
func startSIPp(t *testing.T, bin string, traceLogs bool, args ...string) *sippRun {
	t.Helper()
	r := &sippRun{dir: t.TempDir(), done: make(chan struct{})}
	full := []string{"-nostdin", "-buff_size", sippBuffer, "-trace_stat", "-stf", r.path("stat.csv"), "-fd", "1",
		"-trace_err", "-error_file", r.path("errors.log")}
	if traceLogs {
		full = append(full, "-trace_logs", "-log_file", r.path("setup.log"))
	}
	full = append(full, args...)
	screen, err := os.Create(r.path("screen.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, full...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout, r.cmd.Stderr = screen, screen
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		screen.Close()
		t.Fatalf("start sipp %v: %v", full, err)
	}
	go func() {
		r.err = r.cmd.Wait()
		r.wall = time.Since(r.start)
		if ps := r.cmd.ProcessState; ps != nil {
			r.cpu = ps.UserTime() + ps.SystemTime()
		}
		screen.Close()
		close(r.done)
	}()
	t.Cleanup(r.kill)
	return r
}

// load is the share of one core SIPp used over its life.
func (r *sippRun) load() float64 {
	if r.wall <= 0 {
		return 0
	}
	return r.cpu.Seconds() / r.wall.Seconds()
}

func (r *sippRun) path(name string) string { return filepath.Join(r.dir, name) }

// wait waits up to d for SIPp to exit; past d it kills it and returns
// false.
func (r *sippRun) wait(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		r.kill()
		return false
	}
}

func (r *sippRun) kill() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// stats returns the last line of the statistics file, keyed by column
// (SuccessfulCall(C), FailedCall(C), Retransmissions(C), CurrentCall...).
func (r *sippRun) stats() (map[string]string, error) {
	b, err := os.ReadFile(r.path("stat.csv"))
	if err != nil {
		return nil, fmt.Errorf("sipp statistics: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil, errors.New("sipp statistics: no data line yet")
	}
	head := strings.Split(lines[0], ";")
	vals := strings.Split(lines[len(lines)-1], ";")
	if len(vals) < len(head)-1 { // a line being written
		vals = strings.Split(lines[len(lines)-2], ";")
	}
	out := map[string]string{}
	for i, h := range head {
		if i < len(vals) {
			out[h] = vals[i]
		}
	}
	return out, nil
}

// counters returns the integer columns named of the last statistics line
// (missing or unreadable ones are -1).
func (r *sippRun) counters(names ...string) map[string]int {
	st, _ := r.stats()
	out := map[string]int{}
	for _, n := range names {
		v, err := strconv.Atoi(st[n])
		if err != nil {
			v = -1
		}
		out[n] = v
	}
	return out
}

// setupTimes returns the call-setup times (INVITE sent -> 200 received,
// microseconds) the timed scenarios logged.
func (r *sippRun) setupTimes() []float64 {
	f, err := os.Open(r.path("setup.log"))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []float64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "setup_us "); ok {
			if us, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				out = append(out, us)
			}
		}
	}
	return out
}

// why explains a failed run: its exit status and the errors SIPp logged,
// counted by kind (or the tail of its screen when it logged none).
func (r *sippRun) why() string {
	msg := errorKinds(r.path("errors.log"))
	if msg == "" {
		msg = lastLine(r.path("screen.log"))
	}
	return fmt.Sprintf("%v: %s", r.err, msg)
}

var (
	// errorEntry starts an entry of SIPp's error log (entries are not
	// always on lines of their own).
	errorEntry = regexp.MustCompile(`\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: `)
	callID     = regexp.MustCompile(`'?\d+-\d+@[^ ,']+'?`) // SIPp's Call-IDs
)

// errorKinds summarises SIPp's error log: entries are counted by their
// first line without the Call-ID, most frequent first, at most three
// kinds.
func errorKinds(path string) string {
	b, _ := os.ReadFile(path)
	count := map[string]int{}
	for _, e := range errorEntry.Split(string(b), -1)[1:] {
		msg, _, _ := strings.Cut(e, "\n")
		msg = callID.ReplaceAllString(strings.TrimSpace(msg), "<id>")
		if len(msg) > 120 {
			msg = msg[:120] + "..."
		}
		count[msg]++
	}
	kinds := make([]string, 0, len(count))
	for k := range count {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool { return count[kinds[i]] > count[kinds[j]] })
	var out []string
	for i, k := range kinds {
		if i == 3 {
			out = append(out, fmt.Sprintf("%d more kinds", len(kinds)-3))
			break
		}
		out = append(out, fmt.Sprintf("%dx %s", count[k], k))
	}
	return strings.Join(out, "; ")
}

func lastLine(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "---") {
			return l
		}
	}
	return ""
}

func TestErrorKinds(t *testing.T) {
	// Two entry shapes of SIPp 3.6: one on a line of its own followed by
	// the message, and entries run together without newlines.
	log := "The following events occurred:\n" +
		"2026-11-26\t13:30:49.1\t1795699849.1: Aborting call on unexpected message for Call-Id '97-29@127.0.0.1': while expecting '180' (index 2), received 'SIP/2.0 200 OK\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5080\n'\n" +
		"2026-11-26\t13:30:49.2\t1795699849.2: Aborting call on unexpected message for Call-Id '98-29@127.0.0.1': while expecting '180' (index 2), received 'SIP/2.0 200 OK\n'\n" +
		"2026-11-26\t13:33:01.4\t1795699981.4: Call-Id: 1-2504@127.0.0.1, receive timeout on message X:1 without label to jump to (ontimeout attribute): aborting call" +
		"2026-11-26\t13:33:01.5\t1795699981.5: Dead call 3-2504@127.0.0.1 (aborted at index 2), received 'SIP/2.0 200 OK\n"
	p := filepath.Join(t.TempDir(), "errors.log")
	if err := os.WriteFile(p, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "2x Aborting call on unexpected message for Call-Id <id>: while expecting '180' (index 2), received 'SIP/2.0 200 OK; "
	if got := errorKinds(p); !strings.HasPrefix(got, want) || !strings.Contains(got, "1x Dead call <id> (aborted") ||
		!strings.Contains(got, "1x Call-Id: <id>, receive timeout") {
		t.Fatalf("errorKinds = %q", got)
	}
}
