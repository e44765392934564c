package registrar

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestMemStoreConditionalPut(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := NewMemStore(clock.Now)
	set := BindingSet{Bindings: []Binding{typicalBinding()}, RetainUntil: t0.Add(2 * time.Hour)}

	if _, v, err := s.Get(ctx, "sip:a@d"); err != nil || v != 0 {
		t.Fatalf("absent: version %d err %v, want 0 nil", v, err)
	}
	if err := s.Put(ctx, "sip:a@d", set, 7); !errors.Is(err, ErrConflict) {
		t.Fatalf("put on absent with ifVersion 7: %v, want ErrConflict", err)
	}
	if err := s.Put(ctx, "sip:a@d", set, 0); err != nil {
		t.Fatalf("create: %v", err)
	}
	got, v1, err := s.Get(ctx, "sip:a@d")
	if err != nil || v1 == 0 || !setsEqual(got, set) {
		t.Fatalf("get after create: %+v v%d %v", got, v1, err)
	}
	if err := s.Put(ctx, "sip:a@d", set, 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	if err := s.Put(ctx, "sip:a@d", set, v1); err != nil {
		t.Fatalf("update: %v", err)
	}
	if err := s.Put(ctx, "sip:a@d", set, v1); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale update: %v, want ErrConflict", err)
	}

	// Writing a set whose RetainUntil has passed deletes; a later create
	// gets a version never seen before, so a writer holding v1 cannot
	// succeed by accident (no ABA).
	_, v2, _ := s.Get(ctx, "sip:a@d")
	if err := s.Put(ctx, "sip:a@d", BindingSet{RetainUntil: clock.Now()}, v2); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if s.Len() != 0 {
		t.Fatalf("Len after delete = %d", s.Len())
	}
	if err := s.Put(ctx, "sip:a@d", set, 0); err != nil {
		t.Fatalf("recreate: %v", err)
	}
	if _, v3, _ := s.Get(ctx, "sip:a@d"); v3 == v1 || v3 == v2 {
		t.Fatalf("version reused: %d after %d, %d", v3, v1, v2)
	}
}

func TestMemStoreExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := NewMemStore(clock.Now)
	for _, aor := range []string{"sip:a@d", "sip:b@d"} {
		if err := s.Put(ctx, aor, BindingSet{RetainUntil: t0.Add(time.Minute)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "sip:forever@d", BindingSet{}, 0); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, v, _ := s.Get(ctx, "sip:a@d"); v != 0 {
		t.Fatalf("expired record still readable (version %d)", v)
	}
	if n := s.Sweep(); n != 1 {
		t.Fatalf("Sweep dropped %d, want 1 (sip:b@d)", n)
	}
	if _, v, _ := s.Get(ctx, "sip:forever@d"); v == 0 || s.Len() != 1 {
		t.Fatalf("record without expiry dropped (len %d)", s.Len())
	}
}

func TestMemStoreHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := NewMemStore(nil)
	if _, _, err := s.Get(ctx, "sip:a@d"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get: %v", err)
	}
	if err := s.Put(ctx, "sip:a@d", BindingSet{}, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put: %v", err)
	}
}
