package sippbench

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
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Proc is one SIPp process a benchmark started, with a directory of its
// own for the statistics (-trace_stat, one line a second and a last one at
// exit), the error log and the setup-time log.
type Proc struct {
	cmd   *exec.Cmd
	dir   string
	start time.Time
	done  chan struct{}
	err   error         // exit status, valid once done is closed
	wall  time.Duration // from start to exit
	cpu   time.Duration // user + system time SIPp used
}

// Buffer is SIPp's socket buffer size (-buff_size; the kernel caps it at
// net.core.rmem_max): with its default of 64 KiB SIPp drops bursts of
// datagrams at a few thousand calls/s long before it runs out of CPU, and
// it is not SIPp's buffers the benchmarks are about.
const Buffer = "4194304"

// Start starts bin with args; with traceLogs, the scenario's <log> lines
// go to setup.log. The process is killed at the end of the test.
func Start(t fleet.TB, bin string, traceLogs bool, args ...string) *Proc {
	t.Helper()
	r := &Proc{dir: t.TempDir(), done: make(chan struct{})}
	full := []string{"-nostdin", "-buff_size", Buffer, "-trace_stat", "-stf", r.Path("stat.csv"), "-fd", "1",
		"-trace_err", "-error_file", r.Path("errors.log")}
	if traceLogs {
		full = append(full, "-trace_logs", "-log_file", r.Path("setup.log"))
	}
	full = append(full, args...)
	screen, err := os.Create(r.Path("screen.log"))
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
	t.Cleanup(r.Kill)
	return r
}

// Done is closed when the process has exited.
func (r *Proc) Done() <-chan struct{} { return r.done }

// Err is the exit status; valid once Done is closed.
func (r *Proc) Err() error { return r.err }

// Wall is the time from start to exit; valid once Done is closed.
func (r *Proc) Wall() time.Duration { return r.wall }

// Load is the share of one core SIPp used over its life.
func (r *Proc) Load() float64 {
	if r.wall <= 0 {
		return 0
	}
	return r.cpu.Seconds() / r.wall.Seconds()
}

// Path is the path of a file in the process's directory.
func (r *Proc) Path(name string) string { return filepath.Join(r.dir, name) }

// Wait waits up to d for SIPp to exit; past d it kills it and returns
// false.
func (r *Proc) Wait(d time.Duration) bool {
	select {
	case <-r.done:
		return true
	case <-time.After(d):
		r.Kill()
		return false
	}
}

// Kill kills the process (if it still runs) and waits for it.
func (r *Proc) Kill() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// Stats returns the last line of the statistics file, keyed by column
// (SuccessfulCall(C), FailedCall(C), Retransmissions(C), CurrentCall...).
func (r *Proc) Stats() (map[string]string, error) {
	b, err := os.ReadFile(r.Path("stat.csv"))
	if err != nil {
		return nil, fmt.Errorf("sippbench: statistics: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return nil, errors.New("sippbench: statistics: no data line yet")
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

// Counters returns the integer columns named of the last statistics line
// (missing or unreadable ones are -1).
func (r *Proc) Counters(names ...string) map[string]int {
	st, _ := r.Stats()
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

// SetupTimes returns the call-setup times (INVITE sent -> 200 received,
// microseconds) the timed scenarios logged ("setup_us <n>" lines).
func (r *Proc) SetupTimes() []float64 {
	f, err := os.Open(r.Path("setup.log"))
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

// Why explains a failed run: its exit status and the errors SIPp logged,
// counted by kind (or the tail of its screen when it logged none).
func (r *Proc) Why() string {
	msg := ErrorKinds(r.Path("errors.log"))
	if msg == "" {
		msg = lastLine(r.Path("screen.log"))
	}
	return fmt.Sprintf("%v: %s", r.err, msg)
}

var (
	// errorEntry starts an entry of SIPp's error log (entries are not
	// always on lines of their own).
	errorEntry = regexp.MustCompile(`\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: `)
	callID     = regexp.MustCompile(`'?\d+-\d+@[^ ,']+'?`) // SIPp's Call-IDs
)

// ErrorKinds summarises SIPp's error log at path: entries are counted by
// their first line without the Call-ID, most frequent first, at most three
// kinds.
func ErrorKinds(path string) string {
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
