package fleet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// SIPpCounts are the call totals of one finished SIPp run, read from its
// -trace_stat file (the cumulative columns of the last line), and the
// reasons it logged for failed calls (-trace_err).
type SIPpCounts struct {
	Created, Successful, Failed int
	// Errors are the entries of SIPp's error log (failed calls and
	// unexpected messages), at most 20.
	Errors []string
}

// SIPpRun is a SIPp process whose outcome is judged by its counts rather
// than its exit status (e.g. a load in which some calls are expected to
// fail).
type SIPpRun struct {
	args       []string
	stat, errs string
	out        *strings.Builder
	kill       func()
	done       chan error
}

// StartSIPpCounted starts SIPp in the background with -trace_stat and
// -trace_err. It only starts processes, so it may be called in a loop on
// a schedule; Counts collects the result (on the test's goroutine).
func StartSIPpCounted(t TB, target string, args ...string) *SIPpRun {
	t.Helper()
	bin := RequireTool(t, "sipp")
	dir := t.TempDir()
	r := &SIPpRun{stat: filepath.Join(dir, "stat.csv"), errs: filepath.Join(dir, "errors.log"),
		out: &strings.Builder{}, done: make(chan error, 1)}
	r.args = append([]string{target, "-nostdin", "-trace_stat", "-stf", r.stat, "-trace_err", "-error_file", r.errs},
		absScenarios(t, args)...)
	cmd := exec.Command(bin, r.args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = r.out, r.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.kill = func() { cmd.Process.Kill() }
	go func() { r.done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case err := <-r.done:
			r.done <- err
		default:
			r.kill()
		}
	})
	return r
}

// Counts waits for SIPp to exit (at most d) and returns its call totals.
// It does not fail the test when calls failed: the caller judges the
// counts. It fails the test when SIPp did not finish in time or wrote no
// statistics.
func (r *SIPpRun) Counts(t TB, d time.Duration) SIPpCounts {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
	case <-time.After(d):
		r.kill()
		r.done <- <-r.done
		t.Fatalf("sipp %v did not finish within %s:\n%s", r.args, d, tailLines(r.out.String(), 20))
	}
	c, err := readSIPpStat(r.stat)
	if err != nil {
		t.Fatalf("sipp %v: %v\n%s", r.args, err, tailLines(r.out.String(), 20))
	}
	if b, err := os.ReadFile(r.errs); err == nil {
		c.Errors = splitSIPpErrors(string(b), 20)
	}
	return c
}

// ErrorLog returns SIPp's whole error log (-trace_err) as written so far;
// Counts keeps only its first 20 entries.
func (r *SIPpRun) ErrorLog() string {
	b, _ := os.ReadFile(r.errs)
	return string(b)
}

// RunSIPpCounted runs SIPp to completion (at most d) and returns its call
// totals; see StartSIPpCounted and Counts.
func RunSIPpCounted(t TB, d time.Duration, target string, args ...string) SIPpCounts {
	t.Helper()
	return StartSIPpCounted(t, target, args...).Counts(t, d)
}

// readSIPpStat reads the cumulative call counters from the last line of a
// SIPp -stf file.
func readSIPpStat(path string) (SIPpCounts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return SIPpCounts{}, fmt.Errorf("sipp statistics: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return SIPpCounts{}, fmt.Errorf("sipp statistics %s: no data line", path)
	}
	head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
	col := map[string]int{}
	for i, h := range head {
		if i < len(last) {
			col[h], _ = strconv.Atoi(strings.TrimSpace(last[i]))
		}
	}
	for _, want := range []string{"TotalCallCreated", "SuccessfulCall(C)", "FailedCall(C)"} {
		if _, ok := col[want]; !ok {
			return SIPpCounts{}, fmt.Errorf("sipp statistics %s: no column %s", path, want)
		}
	}
	return SIPpCounts{Created: col["TotalCallCreated"], Successful: col["SuccessfulCall(C)"], Failed: col["FailedCall(C)"]}, nil
}

// splitSIPpErrors splits SIPp's error log into at most n entries. SIPp
// does not always end an entry with a newline; every entry starts with a
// date, so a new entry is also cut where "call" runs into the next year.
func splitSIPpErrors(s string, n int) []string {
	s = strings.TrimPrefix(strings.TrimSpace(s), "The following events occurred:")
	var out []string
	for _, e := range strings.Split(strings.ReplaceAll(s, "call20", "call\n20"), "\n") {
		if e = strings.TrimSpace(e); e != "" && len(out) < n {
			out = append(out, e)
		}
	}
	return out
}
