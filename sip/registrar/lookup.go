package registrar

import (
	"context"
	"fmt"
)

// Lookup returns the live bindings of aor (any sip/sips URI text; it is
// canonicalised with CanonicalAOR) for the proxy, best first: q descending
// (an absent q ranks as 1.0), then most recently registered first. The
// slice and its bindings are the caller's.
//
// The error tells the proxy what to answer: ErrNotFound (404) when there is
// no record, i.e. the AOR never registered or its last binding ended more
// than Config.RecordLinger ago; ErrNoBindings (480) when the record exists
// but holds no live binding; ErrInvalidAOR for a URI that is no AOR; any
// other error is the store's (500/503). Lookup blocks on one store read.
func (r *Registrar) Lookup(ctx context.Context, aor string) ([]Binding, error) {
	key, err := CanonicalAOR(aor)
	if err != nil {
		return nil, err
	}
	set, version, err := r.store.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("registrar: lookup %s: %w", key, err)
	}
	if version == 0 {
		return nil, fmt.Errorf("registrar: lookup %s: %w", key, ErrNotFound)
	}
	live := set.Live(r.clock())
	if len(live) == 0 {
		return nil, fmt.Errorf("registrar: lookup %s: %w", key, ErrNoBindings)
	}
	sortForLookup(live)
	return live, nil
}
