package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

func resp(code int, hdrs ...string) *sip.Response {
	r := sip.NewResponse(code, fmt.Sprintf("R%d", code))
	for _, h := range hdrs {
		name, val, _ := strings.Cut(h, ": ")
		r.AppendHeader(sip.NewHeader(name, val))
	}
	return r
}

func acts(as []action) string {
	var s []string
	for _, a := range as {
		switch a.kind {
		case actRelay:
			s = append(s, fmt.Sprintf("relay%d@%d", a.res.StatusCode, a.branch))
		case actCancel:
			s = append(s, fmt.Sprintf("cancel@%d", a.branch))
		case actNextHop:
			s = append(s, fmt.Sprintf("next@%d", a.branch))
		case actAbandon:
			s = append(s, fmt.Sprintf("abandon@%d", a.branch))
		case actArmTimerC:
			s = append(s, fmt.Sprintf("timerC@%d", a.branch))
		}
	}
	return strings.Join(s, " ")
}

func TestChooseBest(t *testing.T) {
	codes := func(cs ...int) []*sip.Response {
		var out []*sip.Response
		for _, c := range cs {
			out = append(out, resp(c))
		}
		return out
	}
	cases := []struct {
		in   []*sip.Response
		want int
	}{
		{codes(486, 404), 404},
		{codes(486, 603, 302), 603}, // 6xx beats all
		{codes(500, 486), 486},      // lowest class
		{codes(480, 407, 404), 407}, // auth preferred in 4xx
		{codes(484, 404), 484},      // so is 484
		{codes(503), 500},           // a 503 is never forwarded
		{codes(503, 504), 500},      // lowest 5xx is 503, becomes 500
		{codes(408, 408), 408},      // timeouts
		{codes(302, 486), 302},      // 3xx before 4xx
		{codes(604, 600), 600},      // lowest 6xx
		{[]*sip.Response{nil, resp(486)}, 486},
	}
	for _, tc := range cases {
		var in []int
		for _, r := range tc.in {
			if r != nil {
				in = append(in, r.StatusCode)
			}
		}
		if got := chooseBest(tc.in); got == nil || got.StatusCode != tc.want {
			t.Errorf("chooseBest(%v) = %v, want %d", in, got, tc.want)
		}
	}
	if chooseBest(nil) != nil {
		t.Error("chooseBest(nil) not nil")
	}

	// RFC 3261 16.7 step 7: challenges are collected into the one sent.
	a := resp(401, `WWW-Authenticate: Digest realm="a"`)
	b := resp(407, `Proxy-Authenticate: Digest realm="b"`)
	c := resp(401, `WWW-Authenticate: Digest realm="c"`)
	best := chooseBest([]*sip.Response{a, b, c})
	if best.StatusCode != 401 {
		t.Fatalf("got %d", best.StatusCode)
	}
	if n := len(best.GetHeaders("WWW-Authenticate")); n != 2 {
		t.Errorf("%d WWW-Authenticate, want 2", n)
	}
	if n := len(best.GetHeaders("Proxy-Authenticate")); n != 1 {
		t.Errorf("%d Proxy-Authenticate, want 1", n)
	}
}

func TestRespContextSequences(t *testing.T) {
	type step struct {
		do   func(rc *respContext) []action
		want string
	}
	onRes := func(i, code int) func(rc *respContext) []action {
		return func(rc *respContext) []action { return rc.onResponse(i, resp(code)) }
	}
	onFail := func(i, hopIdx, code int) func(rc *respContext) []action {
		return func(rc *respContext) []action { return rc.onFailure(i, hopIdx, resp(code)) }
	}
	cases := []struct {
		name   string
		invite bool
		hops   []int
		steps  []step
		done   bool
	}{
		{"one branch rings and answers", true, []int{1}, []step{
			{onRes(0, 100), "timerC@0"},
			{onRes(0, 180), "timerC@0 relay180@0"},
			{onRes(0, 200), "relay200@0"},
			{onRes(0, 200), "relay200@0"}, // 2xx retransmission is forwarded
			{onRes(0, 180), ""},           // a 1xx after the 2xx is not
		}, true},
		{"fork: 2xx forwarded at once, ringing branch cancelled, silent branch cancelled on its 1xx", true, []int{1, 1, 1}, []step{
			{onRes(0, 180), "timerC@0 relay180@0"},
			{onRes(1, 183), "timerC@1 relay183@1"},
			{onRes(1, 200), "relay200@1 cancel@0"},
			{onRes(0, 487), ""},
			{onRes(2, 180), "timerC@2 cancel@2"},
		}, true},
		{"fork: waits for all, then the best", true, []int{1, 1}, []step{
			{onRes(0, 486), ""},
			{onRes(1, 404), "relay404@-1"},
		}, true},
		{"fork: 6xx cancels the rest but is not sent at once", true, []int{1, 1}, []step{
			{onRes(1, 180), "timerC@1 relay180@1"},
			{onRes(0, 603), "cancel@1"},
			{onRes(1, 487), "relay603@-1"},
		}, true},
		{"caller CANCEL: ringing branches at once, silent ones on their 1xx", true, []int{1, 1}, []step{
			{onRes(0, 180), "timerC@0 relay180@0"},
			{func(rc *respContext) []action { return rc.onCallerCancel() }, "cancel@0"},
			{func(rc *respContext) []action { return rc.onCallerCancel() }, ""},
			{onRes(1, 100), "timerC@1 cancel@1"},
			{onRes(1, 200), "relay200@1"}, // a 2xx racing the CANCEL still goes up
		}, true},
		{"fail-over on timeout and on 503, then the last hop's answer", true, []int{3}, []step{
			{onFail(0, 0, 408), "next@0"},
			{onFail(0, 0, 408), ""}, // stale hop
			{onRes(0, 503), "next@0"},
			{onRes(0, 486), "relay486@-1"},
		}, true},
		{"no fail-over after the last hop: 503 becomes 500", true, []int{1}, []step{
			{onRes(0, 503), "relay500@-1"},
		}, true},
		{"transaction failure on the only hop", true, []int{1}, []step{
			{onFail(0, 0, 408), "abandon@0 relay408@-1"},
		}, true},
		{"Timer C cancels a ringing branch", true, []int{1}, []step{
			{onRes(0, 180), "timerC@0 relay180@0"},
			{func(rc *respContext) []action { return rc.onTimerC(0, 0) }, "cancel@0"},
			{func(rc *respContext) []action { return rc.onTimerC(0, 0) }, ""},
			{onRes(0, 487), "relay487@-1"},
		}, true},
		{"cancelled branch never answers", true, []int{1, 1}, []step{
			{onRes(0, 180), "timerC@0 relay180@0"},
			{onRes(1, 200), "relay200@1 cancel@0"},
			{func(rc *respContext) []action { return rc.onCancelTimeout(0, 0, resp(408)) }, "abandon@0"},
		}, true},
		{"non-INVITE: first 2xx only", false, []int{1, 1}, []step{
			{onRes(0, 200), "relay200@0"},
			{onRes(1, 200), ""},
		}, true},
		{"non-INVITE: not done before a final", false, []int{1}, []step{
			{onRes(0, 100), ""},
		}, false},
		{"INVITE not done while a branch waits to be cancelled", true, []int{1, 1}, []step{
			{onRes(0, 200), "relay200@0"},
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc := newRespContext(tc.invite, tc.hops)
			for i, s := range tc.steps {
				if got := acts(s.do(rc)); got != s.want {
					t.Fatalf("step %d: actions %q, want %q", i, got, s.want)
				}
			}
			if rc.done() != tc.done {
				t.Fatalf("done %v, want %v", rc.done(), tc.done)
			}
		})
	}
}

func TestFailoverTimer(t *testing.T) {
	rc := newRespContext(true, []int{2})
	if a := acts(rc.onFailoverTimer(0, 0, resp(408))); a != "next@0" {
		t.Fatalf("silent hop: %q", a)
	}
	rc = newRespContext(true, []int{2})
	rc.onResponse(0, resp(100))
	if a := acts(rc.onFailoverTimer(0, 0, resp(408))); a != "" {
		t.Fatalf("a hop that answered 100 is kept: %q", a)
	}
}

func TestAckGate(t *testing.T) {
	clk := newFakeClock()
	g := newAckGate(clk, 10*time.Second)
	key := "call\x00a\x00b"
	if g.wait(context.Background(), key, time.Second) {
		t.Fatal("waited for a dialog with no ACK pending")
	}
	g.expect(key)
	released := make(chan bool)
	go func() { released <- g.wait(context.Background(), key, time.Hour) }()
	// The waiter may or may not have armed its timer yet; the ACK
	// releases it either way.
	g.acked(key)
	if timedOut := <-released; timedOut {
		t.Fatal("ACK did not release the waiter")
	}
	if g.size() != 0 {
		t.Fatal("entry kept after ACK")
	}

	g.expect(key)
	done := make(chan bool)
	go func() { done <- g.wait(context.Background(), key, time.Second) }()
	waitTimers(t, clk, 1)
	clk.Advance(time.Second)
	if timedOut := <-done; !timedOut {
		t.Fatal("bound did not end the wait")
	}

	// Entries whose ACK never comes go after the TTL.
	clk.Advance(11 * time.Second)
	g.expect("other")
	if g.size() != 1 {
		t.Fatalf("size %d after TTL sweep, want 1", g.size())
	}

	a := parseReq(t, withToTag(reqText("BYE", "sip:bob@192.0.2.20"))...)
	res := sip.NewResponseFromRequest(a, 200, "OK", nil)
	from, to := res.From().Params.GetOr("tag", ""), res.To().Params.GetOr("tag", "")
	res.From().Params.Add("tag", to) // the other direction
	res.To().Params.Add("tag", from)
	if dialogKey(a) != dialogKey(res) || dialogKey(a) == "" {
		t.Fatal("dialog key depends on direction")
	}
}

// waitTimers blocks until clk has n pending timers (a goroutine is about
// to wait on one).
func waitTimers(t *testing.T, clk *fakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		clk.mu.Lock()
		k := 0
		for _, tm := range clk.timers {
			if !tm.stopped {
				k++
			}
		}
		clk.mu.Unlock()
		if k >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d timers pending, want %d", k, n)
		}
		time.Sleep(time.Millisecond)
	}
}
