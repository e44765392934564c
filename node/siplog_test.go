package node

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestSIPLogParseFailures: sipgo's "failed to parse" records, which carry
// the whole message, are counted, logged at debug without the message,
// and at warn once per interval with the number left out.
func TestSIPLogParseFailures(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	clock := &stepClock{t: time.Unix(1_700_000_000, 0)}
	h := NewSIPLog(zap.New(core), 10*time.Second, clock.now)
	sl := slog.New(h).With("caller", "Transport<UDP>")
	payload := "INVITE sip:x SIP/2.0\r\nX-Evil: \x1b[31mfake log line\n" + strings.Repeat("A", 5000)
	for range 5 {
		sl.Error("failed to parse", "data", payload, "error", errors.New("field name with no value in header: "+strings.Repeat("B", 400)))
	}
	clock.advance(10 * time.Second)
	sl.Error("failed to parse", "error", errors.New("x"), "data", "short")
	if got := h.Dropped(); got != 6 {
		t.Fatalf("dropped %d, want 6", got)
	}
	warns := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(warns) != 2 {
		t.Fatalf("%d warnings, want 2 (first, and one after the interval)", len(warns))
	}
	if n := warns[1].ContextMap()["suppressed_since_last"]; n != int64(4) {
		t.Fatalf("suppressed %v, want 4", n)
	}
	if n := logs.FilterLevelExact(zapcore.DebugLevel).Len(); n != 6 {
		t.Fatalf("%d debug records, want 6", n)
	}
	for _, e := range logs.All() {
		m := e.ContextMap()
		if _, ok := m["data"]; ok {
			t.Fatalf("message bytes logged: %v", m)
		}
		if s, _ := m["error"].(string); len(s) > maxLogValue+40 {
			t.Fatalf("error value not cut: %d bytes", len(s))
		}
		if m["caller"] != "Transport<UDP>" {
			t.Fatalf("attributes lost: %v", m)
		}
	}
	if b := warns[0].ContextMap()["bytes"]; b != int64(len(payload)) {
		t.Fatalf("bytes %v", b)
	}
}

// TestSIPLogOtherRecords: sipgo's debug records are dropped, info goes to
// debug, and warnings are rate-limited per message.
func TestSIPLogOtherRecords(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	clock := &stepClock{t: time.Unix(1_700_000_000, 0)}
	sl := slog.New(NewSIPLog(zap.New(core), time.Minute, clock.now))
	sl.Debug("getting connection")
	sl.Info("IP addr resolving failed")
	for range 3 {
		sl.Error("Server tx failed to handle request", "req", "INVITE sip:a SIP/2.0")
	}
	sl.Warn("another warning")
	var got []string
	for _, e := range logs.All() {
		got = append(got, e.Level.String()+" "+e.Message)
	}
	want := []string{"debug IP addr resolving failed", "error Server tx failed to handle request", "warn another warning"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("records %q, want %q", got, want)
	}
}
