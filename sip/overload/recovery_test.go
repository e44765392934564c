package overload

import (
	"fmt"
	"testing"
	"time"
)

func TestRecovery(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReleaseAfter = 10 * time.Second
	r := NewRecovery(cfg)
	t0 := time.Unix(1000, 0)
	if r.Due(time.Time{}, t0, 0) {
		t.Fatal("due without any shedding")
	}
	// Ticks every second for 3 minutes after the last shed request; the
	// window stays full.
	var at []time.Duration
	for s := time.Duration(0); s <= 3*time.Minute; s += time.Second {
		if r.Due(t0, t0.Add(s), cfg.MaxTransactions) {
			at = append(at, s)
		}
	}
	want := []time.Duration{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120}
	if len(at) != len(want) {
		t.Fatalf("released at %v, want every 10 s up to 2 min", at)
	}
	for i := range want {
		if at[i] != want[i]*time.Second {
			t.Fatalf("released at %v", at)
		}
	}
	// A new overload starts the rounds again.
	t1 := t0.Add(10 * time.Minute)
	if r.Due(t1, t1.Add(9*time.Second), 0) || !r.Due(t1, t1.Add(10*time.Second), 0) {
		t.Fatal("a second overload is not released")
	}
	cfg.ReleaseAfter = 0
	if NewRecovery(cfg).Due(t0, t0.Add(time.Minute), 0) {
		t.Fatal("due with ReleaseAfter 0")
	}
}

// TestRecoveryWhenWindowDrains: one more release as soon as the window has
// drained after an overload, once per overload.
func TestRecoveryWhenWindowDrains(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReleaseAfter, cfg.MaxTransactions = 10*time.Second, 6400
	r := NewRecovery(cfg)
	t0 := time.Unix(1000, 0)
	window := func(s int) int {
		if s < 33 {
			return 6000 // the overload's calls, 32 s
		}
		return 64 // probes
	}
	var at []int
	for s := 0; s <= 60; s++ {
		if r.Due(t0, t0.Add(time.Duration(s)*time.Second), window(s)) {
			at = append(at, s)
		}
	}
	if want := []int{10, 20, 30, 33, 43, 53}; fmt.Sprint(at) != fmt.Sprint(want) {
		t.Fatalf("released at %v s, want %v", at, want)
	}
	if r.Due(t0, t0.Add(5*time.Second), 0) {
		t.Fatal("due while the overload may go on (5 s after the last shed)")
	}
}

func TestRecoveryCollectsForStaleHeap(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxHeap = 100
	r := NewRecovery(cfg)
	t0 := time.Unix(1000, 0)
	if r.CollectDue(99, t0) {
		t.Fatal("due below the limit")
	}
	if !r.CollectDue(100, t0) || r.CollectDue(150, t0.Add(999*time.Millisecond)) || !r.CollectDue(150, t0.Add(time.Second)) {
		t.Fatal("not due once per second at the limit")
	}
	cfg.MaxHeap = 0
	if NewRecovery(cfg).CollectDue(1<<40, t0) {
		t.Fatal("due with MaxHeap 0")
	}
}

// TestRecoveryAfterBurst: a burst admitted without shedding is released
// once, when the window has drained after it; small loads never are.
func TestRecoveryAfterBurst(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ReleaseAfter, cfg.MaxTransactions = 10*time.Second, 6400
	r := NewRecovery(cfg)
	t0 := time.Unix(1000, 0)
	windows := []int{0, 50, 300, 50, 0, 0, 399, 0, 0} // below a 16th (400): no release
	windows = append(windows, 400, 3000, 3000, 2000, 500, 100, 99, 99, 0, 0, 800, 50, 20)
	var at []int
	for s, w := range windows {
		if r.Due(time.Time{}, t0.Add(time.Duration(s)*time.Second), w) {
			at = append(at, s)
		}
	}
	if fmt.Sprint(at) != "[14 20]" {
		t.Fatalf("released at %v, want [14 20]: when the burst drained to 100 (a 64th), and after the second burst", at)
	}
	cfg.ReleaseAfter = 0
	r = NewRecovery(cfg)
	if r.Due(time.Time{}, t0, 6400) || r.Due(time.Time{}, t0.Add(time.Second), 0) {
		t.Fatal("due with ReleaseAfter 0")
	}
}
