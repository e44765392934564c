package sippbench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLadderSearch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		l         Ladder
		threshold int // rates <= threshold pass
		best      int
		capped    bool
		tries     []int
	}{
		{"doubling then bisect", Ladder{100, 51200, 2, 3}, 1000, 1000,
			false, []int{100, 200, 400, 800, 1600, 1200, 1000, 1100}},
		{"capped", Ladder{200, 3200, 4, 2}, 1e6, 3200, true, []int{200, 800, 3200}},
		{"first step fails", Ladder{100, 1000, 2, 2}, 30, 25, false, []int{100, 50, 25}},
		{"no refine", Ladder{200, 3200, 4, 0}, 900, 800, false, []int{200, 800, 3200}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tries []int
			res := tc.l.Search(func(rate int) (bool, string) {
				tries = append(tries, rate)
				return rate <= tc.threshold, ""
			})
			if res.Best != tc.best || res.Capped != tc.capped || fmt.Sprint(tries) != fmt.Sprint(tc.tries) {
				t.Fatalf("best %d capped %v tries %v; want %d %v %v", res.Best, res.Capped, tries, tc.best, tc.capped, tc.tries)
			}
		})
	}
	if got := RoundRate(1234); got != 1200 {
		t.Fatalf("RoundRate(1234) = %d", got)
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b Result
		want string
	}{
		{Result{Best: 1000}, Result{Best: 800}, "1.25x"},
		{Result{Best: 1000, Capped: true}, Result{Best: 800}, ">= 1.25x"},
		{Result{Best: 800}, Result{Best: 1000, Capped: true}, "<= 0.80x"},
		{Result{Best: 800, Capped: true}, Result{Best: 1000, Capped: true}, "-"},
		{Result{Best: 800}, Result{}, "-"},
	} {
		if got := Ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("Ratio(%+v, %+v) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
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
	if got := ErrorKinds(p); !strings.HasPrefix(got, want) || !strings.Contains(got, "1x Dead call <id> (aborted") ||
		!strings.Contains(got, "1x Call-Id: <id>, receive timeout") {
		t.Fatalf("ErrorKinds = %q", got)
	}
}

func TestPercentileSlope(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	if p := Percentile(xs, 0.5); p != 3 {
		t.Errorf("p50 = %v", p)
	}
	if p := Percentile(xs, 0.99); p != 5 {
		t.Errorf("p99 = %v", p)
	}
	if s := Slope([]float64{0, 1, 2}, []float64{1, 3, 5}); s != 2 {
		t.Errorf("slope = %v", s)
	}
}
