package registrar

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestLookupOrderAndStates(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.RecordLinger = time.Hour
	e := newEnv(t, cfg, nil)

	if _, err := e.reg.Lookup(ctx, "sip:alice@dsn.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("never registered: %v, want ErrNotFound", err)
	}
	if _, err := e.reg.Lookup(ctx, "tel:+123"); !errors.Is(err, ErrInvalidAOR) {
		t.Fatalf("tel URI: %v, want ErrInvalidAOR", err)
	}

	e.mustOK(t, msg{callID: "a", contacts: []string{"<sip:a@192.0.2.1>;q=0.5"}})
	e.clock.Advance(time.Second)
	e.mustOK(t, msg{callID: "b", contacts: []string{"<sip:b@192.0.2.2>"}}) // no q: ranks as 1.0
	e.clock.Advance(time.Second)
	e.mustOK(t, msg{callID: "c", contacts: []string{"<sip:c@192.0.2.3>;q=0.5"}})
	e.clock.Advance(time.Second)
	e.mustOK(t, msg{callID: "d", contacts: []string{"<sip:d@192.0.2.4>;q=0.9;expires=60"}})

	bs, err := e.reg.Lookup(ctx, "sips:alice@DSN.test;transport=tls")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, b := range bs {
		order = append(order, b.Contact)
	}
	want := []string{"sip:b@192.0.2.2", "sip:d@192.0.2.4", "sip:c@192.0.2.3", "sip:a@192.0.2.1"}
	if len(order) != len(want) {
		t.Fatalf("order %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v (q desc, then newest)", order, want)
		}
	}

	// The caller owns the result.
	bs[0].Path = append(bs[0].Path, "<sip:x>")
	if again, _ := e.reg.Lookup(ctx, "sip:alice@dsn.test"); len(again[0].Path) != 0 {
		t.Fatal("Lookup result aliases stored state")
	}

	// Expiry of one binding hides it.
	e.clock.Advance(61 * time.Second)
	if bs, _ := e.reg.Lookup(ctx, "sip:alice@dsn.test"); len(bs) != 3 {
		t.Fatalf("after d expired: %d bindings", len(bs))
	}

	// Unregister all: the record lingers empty (480), then goes (404).
	e.mustOK(t, msg{callID: "z", contacts: []string{"*"}, headers: []string{"Expires: 0"}})
	if _, err := e.reg.Lookup(ctx, "sip:alice@dsn.test"); !errors.Is(err, ErrNoBindings) {
		t.Fatalf("after unregister: %v, want ErrNoBindings", err)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.reg.Lookup(ctx, "sip:alice@dsn.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after RecordLinger: %v, want ErrNotFound", err)
	}
}

// TestLookupAfterNaturalExpiry: bindings that time out (no unregister)
// also leave the record for RecordLinger past the last expiry.
func TestLookupAfterNaturalExpiry(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig()
	cfg.RecordLinger = 10 * time.Minute
	e := newEnv(t, cfg, nil)
	e.mustOK(t, msg{contacts: []string{contactA + ";expires=120"}})
	e.clock.Advance(121 * time.Second)
	if _, err := e.reg.Lookup(ctx, "sip:alice@dsn.test"); !errors.Is(err, ErrNoBindings) {
		t.Fatalf("expired: %v, want ErrNoBindings", err)
	}
	e.clock.Advance(10 * time.Minute)
	if _, err := e.reg.Lookup(ctx, "sip:alice@dsn.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("past linger: %v, want ErrNotFound", err)
	}
}

// TestNoLingerDeletesRecord: RecordLinger 0 deletes with the last binding.
func TestNoLingerDeletesRecord(t *testing.T) {
	cfg := testConfig()
	cfg.RecordLinger = 0
	e := newEnv(t, cfg, nil)
	e.mustOK(t, msg{contacts: []string{contactA}})
	e.mustOK(t, msg{cseq: 2, contacts: []string{contactA + ";expires=0"}})
	if e.store.Len() != 0 {
		t.Fatalf("record kept: %d", e.store.Len())
	}
	if _, err := e.reg.Lookup(context.Background(), "sip:alice@dsn.test"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("%v, want ErrNotFound", err)
	}
}
