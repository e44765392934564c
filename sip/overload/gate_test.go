package overload

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestDecide(t *testing.T) {
	over := Load{InFlight: 10}
	tests := []struct {
		name   string
		m      []byte
		load   Load
		want   Verdict
		reason Reason
	}{
		{"new INVITE, idle", invite("z9hG4bK1"), Load{}, Admit, ""},
		{"new INVITE, in-flight at limit", invite("z9hG4bK2"), over, Reject, ReasonInflight},
		{"goroutines at limit", invite("z9hG4bK3"), Load{Goroutines: 1000}, Reject, ReasonGoroutines},
		{"queue delay at limit", invite("z9hG4bK4"), Load{QueueDelay: 50 * time.Millisecond}, Reject, ReasonQueueDelay},
		{"queue delay below limit", invite("z9hG4bK5"), Load{QueueDelay: 49 * time.Millisecond}, Admit, ""},
		{"REGISTER", msg("", "REGISTER sip:h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK6", "To: <sip:a@h>"), over, Reject, ReasonInflight},
		{"OPTIONS to the node", msg("", "OPTIONS sip:h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK7", "To: <sip:h>"), over, Reject, ReasonInflight},
		{"out-of-dialog MESSAGE", msg("x", "MESSAGE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK8", "To: <sip:b@h>"), over, Reject, ReasonInflight},
		{"in-dialog BYE", inDialog("BYE", "z9hG4bK9"), over, Admit, ""},
		{"in-dialog re-INVITE", inDialog("INVITE", "z9hG4bK10"), over, Admit, ""},
		{"in-dialog UPDATE", inDialog("UPDATE", "z9hG4bK11"), over, Admit, ""},
		{"PRACK", inDialog("PRACK", "z9hG4bK12"), over, Admit, ""},
		{"ACK of a 2xx", inDialog("ACK", "z9hG4bK13"), over, Admit, ""},
		{"CANCEL (no To tag)", msg("", "CANCEL sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK14", "To: <sip:b@h>"), over, Admit, ""},
		{"lower-case ack is ACK, as in sipgo", msg("", "ack sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK15", "To: <sip:b@h>"), over, Admit, ""},
		{"response", msg("", "SIP/2.0 200 OK", "Via: SIP/2.0/UDP a;branch=z9hG4bK16", "To: <sip:b@h>;tag=1"), over, Admit, ""},
		{"ACK of the gate's 503", msg("", "ACK sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK17", "To: <sip:b@h>;tag="+TagPrefix+"0123456789abcdef"), Load{}, Absorb, ""},
		{"ACK with a tag that only starts like ours", msg("", "ACK sip:b@h SIP/2.0", "Via: SIP/2.0/UDP a;branch=z9hG4bK18", "To: <sip:b@h>;tag="+TagPrefix), Load{}, Admit, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, fl, _, m := testGate(t, nil)
			fl.l = tt.load
			h := head(t, tt.m)
			d := g.Admit(&h)
			if d.Verdict != tt.want || d.Reason != tt.reason {
				t.Fatalf("got %+v, want verdict %d reason %q", d, tt.want, tt.reason)
			}
			if tt.want == Reject && m.rej(h.Method+"/"+string(tt.reason)) != 1 {
				t.Fatal("rejection not counted")
			}
		})
	}
}

// TestRetransmissionOfAdmittedRequestPasses: once admitted, a request's
// retransmissions reach its transaction even while the node sheds, for
// TrackTTL; a request rejected once is rejected again (same answer).
func TestRetransmissionOfAdmittedRequestPasses(t *testing.T) {
	g, fl, clk, _ := testGate(t, func(c *Config) { c.TrackTTL = 32 * time.Second })
	inv := head(t, invite("z9hG4bKadm"))
	if d := g.Admit(&inv); d.Verdict != Admit {
		t.Fatalf("first: %+v", d)
	}
	fl.l = Load{InFlight: 100}
	clk.advance(31 * time.Second)
	if d := g.Admit(&inv); d.Verdict != Admit {
		t.Fatalf("retransmission while shedding: %+v", d)
	}
	other := head(t, invite("z9hG4bKnew"))
	if d := g.Admit(&other); d.Verdict != Reject {
		t.Fatalf("new request while shedding: %+v", d)
	}
	if d := g.Admit(&other); d.Verdict != Reject {
		t.Fatalf("retransmission of a rejected request: %+v", d)
	}
	clk.advance(time.Second)
	if d := g.Admit(&inv); d.Verdict != Reject {
		t.Fatalf("after TrackTTL the branch is forgotten: %+v", d)
	}
	if st := g.Stats(); st.Admitted != 1 || st.Rejected != 3 || st.Tracked != 0 || !st.LastShed.Equal(clk.t) {
		t.Fatalf("stats %+v", st)
	}
}

func TestTrackMaxForgetsOldest(t *testing.T) {
	g, fl, clk, _ := testGate(t, func(c *Config) { c.TrackMax = 3 })
	heads := make([]Head, 5)
	for i := range heads {
		heads[i] = head(t, invite(fmt.Sprintf("z9hG4bKt%d", i)))
		if d := g.Admit(&heads[i]); d.Verdict != Admit {
			t.Fatal(d)
		}
		clk.advance(time.Millisecond)
	}
	if st := g.Stats(); st.Tracked > 3 {
		t.Fatalf("tracked %d > TrackMax", st.Tracked)
	}
	fl.l = Load{InFlight: 100}
	if d := g.Admit(&heads[0]); d.Verdict != Reject {
		t.Fatalf("oldest still tracked: %+v", d)
	}
	if d := g.Admit(&heads[4]); d.Verdict != Admit {
		t.Fatalf("newest forgotten: %+v", d)
	}
}

func TestTrackingStaysBounded(t *testing.T) {
	g, _, clk, _ := testGate(t, func(c *Config) { c.TrackTTL, c.TrackMax = time.Second, 1000 })
	for i := 0; i < 20000; i++ {
		h := head(t, invite(fmt.Sprintf("z9hG4bKb%d", i)))
		g.Admit(&h)
		clk.advance(time.Millisecond)
	}
	g.mu.Lock()
	n, q := len(g.tracked), len(g.order)-g.head
	capOrder := cap(g.order)
	g.mu.Unlock()
	if n > 1000 || q > 1000 || capOrder > 4096 {
		t.Fatalf("tracked %d, queued %d, queue capacity %d", n, q, capOrder)
	}
}

func TestPruneReleasesTrackingAfterBusySpell(t *testing.T) {
	g, _, clk, _ := testGate(t, func(c *Config) { c.TrackTTL = time.Second })
	g.now = clk.now
	for i := 0; i < 5000; i++ {
		h := head(t, invite(fmt.Sprintf("z9hG4bKp%d", i)))
		g.Admit(&h)
	}
	clk.advance(2 * time.Second)
	g.Prune()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.tracked) != 0 || g.order != nil {
		t.Fatalf("tracked %d, order capacity %d after the TTL", len(g.tracked), cap(g.order))
	}
}

func TestTokenBucket(t *testing.T) {
	g, _, clk, m := testGate(t, func(c *Config) { c.Rate, c.Burst = 10, 3 })
	admitted := func(n int) int {
		ok := 0
		for i := 0; i < n; i++ {
			h := head(t, invite(fmt.Sprintf("z9hG4bKr%d-%d", clk.t.UnixNano(), i)))
			if g.Admit(&h).Verdict == Admit {
				ok++
			}
		}
		return ok
	}
	if n := admitted(10); n != 3 {
		t.Fatalf("burst: admitted %d, want 3", n)
	}
	clk.advance(500 * time.Millisecond) // 5 tokens, capped at 3
	if n := admitted(10); n != 3 {
		t.Fatalf("after 0.5 s: admitted %d, want 3", n)
	}
	clk.advance(200 * time.Millisecond) // 2 tokens
	if n := admitted(10); n != 2 {
		t.Fatalf("after 0.2 s: admitted %d, want 2", n)
	}
	// In-dialog requests take no token.
	bye := head(t, inDialog("BYE", "z9hG4bKbye"))
	if d := g.Admit(&bye); d.Verdict != Admit {
		t.Fatalf("BYE: %+v", d)
	}
	if m.rej("INVITE/rate") != 22 {
		t.Fatalf("rate rejections %d", m.rej("INVITE/rate"))
	}
}

func TestLoadSampledOnlyForNewRequests(t *testing.T) {
	calls := 0
	g, err := New(DefaultConfig(), Deps{Load: func() Load { calls++; return Load{} }})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range [][]byte{inDialog("BYE", "z9hG4bK1"), inDialog("ACK", "z9hG4bK2"), msg("", "SIP/2.0 100 Trying", "Via: SIP/2.0/UDP a")} {
		h := head(t, b)
		g.Admit(&h)
	}
	if calls != 0 {
		t.Fatalf("load sampled %d times for in-dialog traffic", calls)
	}
	h := head(t, invite("z9hG4bKx"))
	g.Admit(&h)
	if calls != 1 {
		t.Fatalf("load sampled %d times for one INVITE", calls)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(DefaultConfig(), Deps{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("no Load: %v", err)
	}
	bad := DefaultConfig()
	bad.MaxInflight = 0
	if _, err := New(bad, Deps{Load: func() Load { return Load{} }}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad config: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"MaxInflight":           func(c *Config) { c.MaxInflight = 0 },
		"MaxGoroutines":         func(c *Config) { c.MaxGoroutines = 0 },
		"MaxQueueDelay":         func(c *Config) { c.MaxQueueDelay = -1 },
		"Rate":                  func(c *Config) { c.Rate = -1 },
		"Burst with Rate":       func(c *Config) { c.Rate, c.Burst = 5, 0 },
		"RetryAfter fraction":   func(c *Config) { c.RetryAfter = 1500 * time.Millisecond },
		"RetryAfter zero":       func(c *Config) { c.RetryAfter = 0 },
		"TrackTTL":              func(c *Config) { c.TrackTTL = 0 },
		"TrackMax":              func(c *Config) { c.TrackMax = 0 },
		"ReleaseAfter":          func(c *Config) { c.ReleaseAfter = -1 },
		"MaxMessage":            func(c *Config) { c.MaxMessage = 100 },
		"UDPReadBuffer":         func(c *Config) { c.UDPReadBuffer = -1 },
		"MaxConns":              func(c *Config) { c.MaxConns = 0 },
		"MaxConnsPerIP":         func(c *Config) { c.MaxConnsPerIP = c.MaxConns + 1 },
		"IdleTimeout":           func(c *Config) { c.IdleTimeout = 0 },
		"MessageTimeout > Idle": func(c *Config) { c.MessageTimeout = c.IdleTimeout + 1 },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
