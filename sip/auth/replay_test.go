package auth

import (
	"encoding/binary"
	"testing"
	"time"
)

func key(issued time.Time, r byte) nonceKey {
	var k nonceKey
	binary.BigEndian.PutUint64(k[:8], uint64(issued.UnixNano()))
	k[15] = r
	return k
}

func TestReplayTracker(t *testing.T) {
	const life = time.Minute
	tr := newReplayTracker(3)
	now := t0
	k1 := key(t0, 1)
	use := func(k nonceKey, nc uint32) bool { return tr.use(k, nc, k.issued().Add(life), now) }

	for _, step := range []struct {
		k    nonceKey
		nc   uint32
		want bool
	}{
		{k1, 1, true},
		{k1, 1, false}, // same nc
		{k1, 3, true},  // gaps allowed
		{k1, 2, false}, // going back
		{k1, 4, true},
	} {
		if got := use(step.k, step.nc); got != step.want {
			t.Fatalf("use(nc=%d) = %v, want %v", step.nc, got, step.want)
		}
	}
	// No qop: nc 0, good once.
	k0 := key(t0, 0)
	if !use(k0, 0) || use(k0, 0) {
		t.Fatal("no-qop nonce not single-use")
	}
	if tr.len() != 2 {
		t.Fatalf("len %d", tr.len())
	}

	// Fill beyond the bound: the earliest-issued entry (k0) goes, and it and
	// every older untracked nonce are refused from then on.
	k2, k3 := key(t0.Add(time.Second), 0), key(t0.Add(2*time.Second), 0)
	if !use(k2, 1) || !use(k3, 1) {
		t.Fatal("fresh nonces refused")
	}
	if tr.len() != 3 {
		t.Fatalf("len %d, want bound 3", tr.len())
	}
	if use(k0, 0) {
		t.Fatal("evicted no-qop nonce usable again")
	}
	older := key(t0.Add(-time.Second), 9)
	if use(older, 1) {
		t.Fatal("never-seen nonce older than the low-water mark accepted")
	}
	if !use(k1, 5) {
		t.Fatal("tracked nonce above the mark refused")
	}

	// After expiry entries leave without raising the mark.
	now = t0.Add(life + 3*time.Second)
	k4 := key(now, 0)
	if !use(k4, 1) || tr.len() != 1 {
		t.Fatalf("after expiry: len %d", tr.len())
	}
}

// TestReplayTrackerNewestEvicted: a first use of a nonce older than every
// tracked one, into a full tracker, is accepted once and then refused.
func TestReplayTrackerNewestEvicted(t *testing.T) {
	tr := newReplayTracker(1)
	exp := t0.Add(time.Hour)
	late, early := key(t0.Add(time.Second), 0), key(t0, 0)
	if !tr.use(late, 1, exp, t0) || !tr.use(early, 1, exp, t0) {
		t.Fatal("first uses refused")
	}
	if tr.use(early, 2, exp, t0) {
		t.Fatal("evicted nonce accepted again")
	}
	if !tr.use(late, 2, exp, t0) {
		t.Fatal("tracked nonce refused")
	}
}
