package overload

import (
	"errors"
	"fmt"
	"strings"
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
	if st := g.Stats(); st.Admitted != 1 || st.Rejected != 3 || st.Transactions != 0 || !st.LastShed.Equal(clk.t) {
		t.Fatalf("stats %+v", st)
	}
}

// TestWindowCapsTransactions: new out-of-dialog requests are paced into
// the window (an eighth of it at once), requests inside a dialog and
// CANCELs may fill it; beyond, 503 for reason "transactions".
// Retransmissions and the CANCEL of an admitted INVITE take no room;
// entries leave after TrackTTL.
func TestWindowCapsTransactions(t *testing.T) {
	g, _, clk, m := testGate(t, func(c *Config) { c.MaxTransactions, c.MaxMessage, c.TrackTTL = 16, 1024, 32*time.Second })
	invs := make([]Head, 3)
	for i := range invs {
		invs[i] = head(t, invite(fmt.Sprintf("z9hG4bKw%d", i)))
	}
	for i := 0; i < 2; i++ {
		if d := g.Admit(&invs[i]); d.Verdict != Admit {
			t.Fatalf("INVITE %d: %+v", i, d)
		}
	}
	if d := g.Admit(&invs[2]); d.Verdict != Reject || d.Reason != ReasonTransactions {
		t.Fatalf("third new request at once, with 16/8 allowed: %+v", d)
	}
	if d := g.Admit(&invs[0]); d.Verdict != Admit {
		t.Fatalf("retransmission: %+v", d)
	}
	cancel := head(t, msg("", "CANCEL sip:bob@dsn.test SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKw1;rport",
		"From: <sip:alice@dsn.test>;tag=a1", "To: <sip:bob@dsn.test>", "Call-ID: call-z9hG4bKw1", "CSeq: 1 CANCEL"))
	if d := g.Admit(&cancel); d.Verdict != Admit {
		t.Fatalf("CANCEL of an admitted INVITE: %+v", d)
	}
	byes := make([]Head, 15)
	for i := range byes {
		byes[i] = head(t, inDialog("BYE", fmt.Sprintf("z9hG4bKbye%d", i)))
	}
	for i := 0; i < 14; i++ {
		if d := g.Admit(&byes[i]); d.Verdict != Admit {
			t.Fatalf("BYE %d: %+v", i, d)
		}
	}
	if st := g.Stats(); st.Transactions != 16 || st.New != 2 {
		t.Fatalf("stats %+v, want 16 transactions, 2 new", st)
	}
	if d := g.Admit(&byes[14]); d.Verdict != Reject || d.Reason != ReasonTransactions {
		t.Fatalf("BYE with the window full: %+v", d)
	}
	ack := head(t, inDialog("ACK", "z9hG4bKack"))
	if d := g.Admit(&ack); d.Verdict != Admit {
		t.Fatalf("ACK with the window full: %+v", d)
	}
	if m.rej("INVITE/transactions") != 1 || m.rej("BYE/transactions") != 1 {
		t.Fatalf("rejections %v", m.rejected)
	}
	clk.advance(32 * time.Second)
	if d := g.Admit(&invs[2]); d.Verdict != Admit {
		t.Fatalf("after TrackTTL: %+v", d)
	}
	if st := g.Stats(); st.Transactions != 1 || st.New != 1 {
		t.Fatalf("stats after TrackTTL %+v", st)
	}
}

// TestNewRequestsPaced: under a sustained flood of new requests the
// window admits an eighth of itself at once, then three eighths per
// TrackTTL, steadily; new requests never hold more than half of it.
func TestNewRequestsPaced(t *testing.T) {
	g, _, clk, _ := testGate(t, func(c *Config) { c.MaxTransactions, c.MaxMessage, c.TrackTTL = 800, 1024, 32*time.Second })
	admitted := make([]int, 0, 64) // per second
	for s := 0; s < 64; s++ {
		n := 0
		for i := 0; i < 1000; i++ {
			h := head(t, invite(fmt.Sprintf("z9hG4bKf%d-%d", s, i)))
			if g.Admit(&h).Verdict == Admit {
				n++
			}
			clk.advance(time.Millisecond)
		}
		admitted = append(admitted, n)
		if st := g.Stats(); st.New > 400 {
			t.Fatalf("second %d: new requests hold %d of the window, over half", s, st.New)
		}
	}
	if admitted[0] < 100 || admitted[0] > 110 {
		t.Fatalf("first second admitted %d, want the burst of 100 and the pace", admitted[0])
	}
	// 800*3/8 per 32 s: 9.375 a second, every second.
	for s := 1; s < 64; s++ {
		if admitted[s] < 8 || admitted[s] > 11 {
			t.Fatalf("second %d admitted %d, want about 9.4 (all: %v)", s, admitted[s], admitted)
		}
	}
}

// TestWindowWeighsBigRequests: a request counts once more for every 2 KiB
// of its size, so big messages cannot multiply what the window bounds.
func TestWindowWeighsBigRequests(t *testing.T) {
	g, _, _, _ := testGate(t, func(c *Config) { c.MaxTransactions, c.MaxMessage = 80, 16384 })
	big := head(t, msg(strings.Repeat("v", 8192),
		"INVITE sip:bob@dsn.test SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKbig",
		"From: <sip:alice@dsn.test>;tag=a1", "To: <sip:bob@dsn.test>", "Call-ID: big", "CSeq: 1 INVITE"))
	if d := g.Admit(&big); d.Verdict != Admit {
		t.Fatalf("big INVITE: %+v", d)
	}
	if st := g.Stats(); st.Transactions != 5 || st.New != 5 {
		t.Fatalf("an INVITE of %d bytes weighs %d, want 5", big.Len+int(big.ContentLength), st.Transactions)
	}
	// It took 5 of the 10 (80/8) new requests may take at once.
	for i := 0; i < 6; i++ {
		small := head(t, invite(fmt.Sprintf("z9hG4bKsmall%d", i)))
		d := g.Admit(&small)
		if i < 5 && d.Verdict != Admit {
			t.Fatalf("small INVITE %d: %+v", i, d)
		}
		if i == 5 && (d.Verdict != Reject || d.Reason != ReasonTransactions) {
			t.Fatalf("new request beyond the pace: %+v", d)
		}
	}
}

// TestWindowKeyIsTheTransaction: a request counts once per server
// transaction the stack would make for it; changing the sent-by, the
// Call-ID, the CSeq or the method under the same branch is a new one.
func TestWindowKeyIsTheTransaction(t *testing.T) {
	g, fl, _, _ := testGate(t, nil)
	base := []string{"INVITE sip:bob@dsn.test SIP/2.0", "Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKsame",
		"From: <sip:alice@dsn.test>;tag=a1", "To: <sip:bob@dsn.test>", "Call-ID: c1", "CSeq: 1 INVITE"}
	first := head(t, msg("", base...))
	if d := g.Admit(&first); d.Verdict != Admit {
		t.Fatal(d)
	}
	fl.l = Load{InFlight: 100} // shedding: only retransmissions pass now
	variant := func(i int, line string) Head {
		l := append([]string(nil), base...)
		l[i] = line
		return head(t, msg("", l...))
	}
	same := variant(1, "v:  SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bKsame ") // compact form, spaces
	if d := g.Admit(&same); d.Verdict != Admit {
		t.Fatalf("retransmission: %+v", d)
	}
	for name, h := range map[string]Head{
		"sent-by": variant(1, "Via: SIP/2.0/UDP 127.0.0.10:5070;branch=z9hG4bKsame"),
		"Call-ID": variant(4, "Call-ID: c2"),
		"CSeq":    variant(5, "CSeq: 2 INVITE"),
		"method":  variant(0, "OPTIONS sip:bob@dsn.test SIP/2.0"),
	} {
		if d := g.Admit(&h); d.Verdict != Reject {
			t.Errorf("another %s, same branch, passed as a retransmission: %+v", name, d)
		}
	}
}

// TestWindowStaysBounded: a steady stream keeps the window and its queue
// at MaxTransactions, however long it runs.
func TestWindowStaysBounded(t *testing.T) {
	g, _, clk, _ := testGate(t, func(c *Config) { c.TrackTTL, c.MaxTransactions = time.Second, 1000 })
	for i := 0; i < 20000; i++ {
		h := head(t, invite(fmt.Sprintf("z9hG4bKb%d", i)))
		g.Admit(&h)
		b := head(t, inDialog("BYE", fmt.Sprintf("z9hG4bKe%d", i)))
		g.Admit(&b)
		clk.advance(time.Millisecond)
	}
	g.mu.Lock()
	n, q := g.win.len(), len(g.win.order)-g.win.head
	capOrder := cap(g.win.order)
	g.mu.Unlock()
	if n > 1000 || q > 1000 || capOrder > 4096 {
		t.Fatalf("window %d, queued %d, queue capacity %d", n, q, capOrder)
	}
}

// TestWindowGivesMemoryBack: after a busy spell the map and the queue
// are rebuilt at the size of what is left.
func TestWindowGivesMemoryBack(t *testing.T) {
	g, _, clk, _ := testGate(t, func(c *Config) { c.TrackTTL = time.Second })
	g.now = clk.now
	for i := 0; i < 5000; i++ {
		h := head(t, invite(fmt.Sprintf("z9hG4bKp%d", i)))
		g.Admit(&h)
	}
	clk.advance(500 * time.Millisecond)
	for i := 0; i < 10; i++ {
		h := head(t, invite(fmt.Sprintf("z9hG4bKq%d", i)))
		g.Admit(&h)
	}
	clk.advance(600 * time.Millisecond)
	g.Prune()
	g.mu.Lock()
	if g.win.len() != 10 || g.win.peak != 10 || cap(g.win.order) > 20 {
		t.Errorf("window %d, peak %d, queue capacity %d: want 10, 10, <= 20", g.win.len(), g.win.peak, cap(g.win.order))
	}
	g.mu.Unlock()
	clk.advance(time.Second)
	g.Prune()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.win.len() != 0 || g.win.news != 0 || cap(g.win.order) > 20 {
		t.Fatalf("window %d (%d new), queue capacity %d after the TTL", g.win.len(), g.win.news, cap(g.win.order))
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
		"MaxInflight":                    func(c *Config) { c.MaxInflight = 0 },
		"MaxGoroutines":                  func(c *Config) { c.MaxGoroutines = 0 },
		"MaxQueueDelay":                  func(c *Config) { c.MaxQueueDelay = -1 },
		"Rate":                           func(c *Config) { c.Rate = -1 },
		"Burst with Rate":                func(c *Config) { c.Rate, c.Burst = 5, 0 },
		"RetryAfter fraction":            func(c *Config) { c.RetryAfter = 1500 * time.Millisecond },
		"RetryAfter zero":                func(c *Config) { c.RetryAfter = 0 },
		"TrackTTL":                       func(c *Config) { c.TrackTTL = 0 },
		"MaxTransactions":                func(c *Config) { c.MaxTransactions = 1 },
		"MaxTransactions for MaxMessage": func(c *Config) { c.MaxTransactions, c.MaxMessage = 63, 65535 },
		"ReleaseAfter":                   func(c *Config) { c.ReleaseAfter = -1 },
		"MaxMessage":                     func(c *Config) { c.MaxMessage = 100 },
		"UDPReadBuffer":                  func(c *Config) { c.UDPReadBuffer = -1 },
		"MaxConns":                       func(c *Config) { c.MaxConns = 0 },
		"MaxConnsPerIP":                  func(c *Config) { c.MaxConnsPerIP = c.MaxConns + 1 },
		"IdleTimeout":                    func(c *Config) { c.IdleTimeout = 0 },
		"MessageTimeout > Idle":          func(c *Config) { c.MessageTimeout = c.IdleTimeout + 1 },
	} {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRetransmissionOfRejectedRequestRejectedAgain: a retransmission of a
// request answered 503 gets 503 again for shedTTL, even once the node has
// stopped shedding (the caller took the 503 and ended the transaction: a
// late copy must not start the call after all); the memory of rejected
// requests is bounded by MaxTransactions.
func TestRetransmissionOfRejectedRequestRejectedAgain(t *testing.T) {
	g, fl, clk, m := testGate(t, nil)
	inv := head(t, invite("z9hG4bKrej"))
	fl.l = Load{InFlight: 100}
	if d := g.Admit(&inv); d.Reason != ReasonInflight {
		t.Fatalf("while shedding: %+v", d)
	}
	fl.l = Load{}
	clk.advance(shedTTL - time.Millisecond)
	if d := g.Admit(&inv); d.Verdict != Reject || d.Reason != ReasonRepeat {
		t.Fatalf("retransmission after the overload: %+v, want 503 (repeat)", d)
	}
	if m.rej("INVITE/repeat") != 1 {
		t.Fatal("repeat not counted")
	}
	other := head(t, invite("z9hG4bKfresh"))
	if d := g.Admit(&other); d.Verdict != Admit {
		t.Fatalf("a new request once the overload is over: %+v", d)
	}
	clk.advance(time.Millisecond)
	if d := g.Admit(&inv); d.Verdict != Admit {
		t.Fatalf("after shedTTL: %+v", d)
	}

	g, fl, _, _ = testGate(t, nil)
	fl.l = Load{InFlight: 100}
	for i := 0; i < 3*g.cfg.MaxTransactions; i++ {
		h := head(t, invite(fmt.Sprintf("z9hG4bKb%d", i)))
		g.Admit(&h)
	}
	if n := g.shed.len(); n != g.cfg.MaxTransactions {
		t.Fatalf("remembered %d rejected requests, want the bound %d", n, g.cfg.MaxTransactions)
	}
}
