package churn

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dsn-ims/dsn/deploy/fleet"
)

// Why a call failed. The first five come from SIPp's error log and the
// scenario index it names (testdata/uac.xml); ReasonDeadTarget refines a
// timeout on the first answer when the node the call was sent to was down
// at some moment while SIPp waited for it.
const (
	ReasonDeadTarget   = "sent to a dead node (no answer)"
	ReasonNoAnswer     = "no answer from a live node"
	ReasonSetupTimeout = "timeout after 100 Trying (home or phone path died)"
	ReasonByeTimeout   = "BYE unanswered (dialog node died)"
	Reason404          = "404 Not Found (registration lost!)"
	Reason480          = "480 (no live binding!)"
	Reason5xxStopping  = "5xx from the node being stopped"
	Reason5xx          = "5xx"
	ReasonOther        = "other"
	ReasonUnlogged     = "failed, not in SIPp's error log"
)

// Scenario indices of testdata/uac.xml that SIPp names in its error log.
const (
	idx100 = 1
	idx180 = 2
	idx200 = 3
	idxBye = 7
)

// sippFailure is one call's first failure entry in a SIPp error log.
type sippFailure struct {
	CallID string
	At     time.Time
	// Timeout is set for "receive timeout on message <scenario>:<Index>";
	// Code for "received 'SIP/2.0 <Code> ...'" while expecting another
	// message; otherwise Text says what happened.
	Timeout bool
	Index   int
	Code    int
	Text    string
	// Callee is the To URI of the message SIPp received, when it names
	// one.
	Callee string
}

var (
	sippEntryStart = regexp.MustCompile(`\d{4}-\d{2}-\d{2}\t\d{2}:\d{2}:\d{2}\.\d+\t(\d+)\.(\d{6}): `)
	sippCallID     = regexp.MustCompile(`Call-Id(?: '|: )([^',\s]+)`)
	sippTimeoutIdx = regexp.MustCompile(`receive timeout on message .*:(\d+) without label`)
	sippReceived   = regexp.MustCompile(`received 'SIP/2\.0 (\d{3})([^\r\n']*)`)
	sippTo         = regexp.MustCompile(`(?m)^To: *<?([^>;\s]+)`)
)

// parseSIPpErrors reads a SIPp error log (-trace_err) into the first
// failure of each call, in log order. Entries naming no Call-ID (messages
// SIPp could not map to a call) are skipped.
func parseSIPpErrors(log string) []sippFailure {
	locs := sippEntryStart.FindAllStringSubmatchIndex(log, -1)
	seen := map[string]bool{}
	var out []sippFailure
	for i, loc := range locs {
		end := len(log)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		text := strings.TrimSpace(log[loc[1]:end])
		sec, _ := strconv.ParseInt(log[loc[2]:loc[3]], 10, 64)
		usec, _ := strconv.ParseInt(log[loc[4]:loc[5]], 10, 64)
		m := sippCallID.FindStringSubmatch(text)
		if m == nil || seen[m[1]] {
			continue
		}
		seen[m[1]] = true
		f := sippFailure{CallID: m[1], At: time.Unix(sec, usec*1000)}
		switch {
		case sippTimeoutIdx.MatchString(text):
			f.Timeout = true
			f.Index, _ = strconv.Atoi(sippTimeoutIdx.FindStringSubmatch(text)[1])
		case sippReceived.MatchString(text):
			m := sippReceived.FindStringSubmatch(text)
			f.Code, _ = strconv.Atoi(m[1])
			f.Text = strings.TrimSpace(m[2])
			if m := sippTo.FindStringSubmatch(text); m != nil {
				f.Callee = m[1]
			}
		default:
			f.Text = firstLine(text, 100)
		}
		out = append(out, f)
	}
	return out
}

func firstLine(s string, n int) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > n {
		s = s[:n] + "..."
	}
	return s
}

// chunk is one second of the call load: one SIPp caller, all its calls
// sent to one node.
type chunk struct {
	Index  int
	Start  time.Time
	Mode   string // "cscf": where DNS sent it; "node": a random live node
	Target string // host:port the calls went to
	Node   string // the node at Target
	// DNS is what the CSCF was told, in its order (mode cscf).
	DNS []string

	run    *fleet.SIPpRun
	Counts fleet.SIPpCounts
	errLog string
}

// downtimes records, per node, when it was down (from the signal until
// its restarted process served again). Safe for use by one writer and
// readers under the runner's lock.
type downtimes map[string][]interval

type interval struct{ From, To time.Time }

// downDuring reports whether node was down at some moment of [from, to].
// An interval with a zero To is still open.
func (d downtimes) downDuring(node string, from, to time.Time) bool {
	for _, iv := range d[node] {
		if !iv.From.After(to) && (iv.To.IsZero() || !iv.To.Before(from)) {
			return true
		}
	}
	return false
}

// classify gives the reason of one failed call of chunk c.
func classify(f sippFailure, c *chunk, down downtimes, recvTimeout time.Duration) string {
	switch {
	case f.Timeout && f.Index == idx100:
		// SIPp heard nothing: its INVITE went out recvTimeout before the
		// entry (retransmitted meanwhile).
		sent := f.At.Add(-recvTimeout)
		if down.downDuring(c.Node, sent.Add(-100*time.Millisecond), f.At) {
			return ReasonDeadTarget
		}
		return ReasonNoAnswer
	case f.Timeout && (f.Index == idx180 || f.Index == idx200):
		return ReasonSetupTimeout
	case f.Timeout && f.Index >= idxBye:
		return ReasonByeTimeout
	case f.Code == 404:
		return Reason404
	case f.Code == 480:
		return Reason480
	case f.Code >= 500 && f.Code < 600:
		if down.downDuring(c.Node, f.At, f.At) {
			return Reason5xxStopping // a SIGTERM'd node answers while it leaves
		}
		return Reason5xx
	}
	return ReasonOther
}

// FailedCall is one failed call as the report lists it.
type FailedCall struct {
	At     time.Time
	Chunk  int
	Target string // node name
	Reason string
	// Quiet is set when the call failed outside every event window (no
	// node down or settling): such a failure has no churn to explain it.
	Quiet  bool
	Detail string
	Callee string // when the answer names it
}

// CallStats are the totals of the call load.
type CallStats struct {
	Chunks, Attempted, Succeeded, Failed int
	// ByReason counts failed calls by reason; ByMode attempted and failed
	// calls by how the target was chosen.
	ByReason map[string]int
	ByMode   map[string][2]int
	// Baseline is the part of the load before the first event.
	BaselineAttempted, BaselineFailed int
	// Failures lists every failed call (at most 200 kept).
	Failures []FailedCall
	// NotSent counts chunks the CSCF could not resolve a target for.
	NotSent int
}

// tally classifies every chunk's failures. windows are the event windows
// (kill until settled, plus the receive timeout); baselineEnd is when the
// first event started.
func tally(chunks []*chunk, down downtimes, windows []interval, baselineEnd time.Time, recvTimeout time.Duration) CallStats {
	st := CallStats{ByReason: map[string]int{}, ByMode: map[string][2]int{}}
	inWindow := func(t time.Time) bool {
		for _, w := range windows {
			if !t.Before(w.From) && !t.After(w.To) {
				return true
			}
		}
		return false
	}
	for _, c := range chunks {
		if c.run == nil {
			st.NotSent++
			continue
		}
		st.Chunks++
		st.Attempted += c.Counts.Created
		st.Succeeded += c.Counts.Successful
		st.Failed += c.Counts.Failed
		m := st.ByMode[c.Mode]
		m[0] += c.Counts.Created
		m[1] += c.Counts.Failed
		st.ByMode[c.Mode] = m
		if c.Start.Before(baselineEnd) {
			st.BaselineAttempted += c.Counts.Created
			st.BaselineFailed += c.Counts.Failed
		}
		fs := parseSIPpErrors(c.errLog)
		for _, f := range fs {
			r := classify(f, c, down, recvTimeout)
			st.ByReason[r]++
			if len(st.Failures) < 200 {
				d := f.Text
				if f.Timeout {
					d = fmt.Sprintf("timeout at scenario index %d", f.Index)
				} else if f.Code != 0 {
					d = fmt.Sprintf("answer %d %s", f.Code, f.Text)
				}
				st.Failures = append(st.Failures, FailedCall{At: f.At, Chunk: c.Index, Target: c.Node, Reason: r,
					Quiet: !inWindow(f.At), Detail: d, Callee: f.Callee})
			}
		}
		if extra := c.Counts.Failed - len(fs); extra > 0 {
			st.ByReason[ReasonUnlogged] += extra
		}
	}
	sort.Slice(st.Failures, func(i, j int) bool { return st.Failures[i].At.Before(st.Failures[j].At) })
	return st
}
