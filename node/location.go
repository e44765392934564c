package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dsn-ims/dsn/dht"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// ringStore keeps registrar binding sets in the DHT: key = canonical AOR,
// value = registrar.MarshalBindings, record expiry = the set's
// RetainUntil, and conditional writes for the registrar's read-modify-write.
type ringStore struct {
	ring *dht.Node
	now  func() time.Time
}

var _ registrar.BindingStore = (*ringStore)(nil)

func (s *ringStore) Get(ctx context.Context, aor string) (registrar.BindingSet, uint64, error) {
	rec, err := s.ring.Get(ctx, aor)
	if errors.Is(err, dht.ErrNotFound) {
		return registrar.BindingSet{}, 0, nil
	}
	if err != nil {
		return registrar.BindingSet{}, 0, fmt.Errorf("node: location get %q: %w", aor, err)
	}
	set, err := registrar.UnmarshalBindings(rec.Value)
	if err != nil {
		return registrar.BindingSet{}, 0, fmt.Errorf("node: location get %q: %w", aor, err)
	}
	return set, rec.Version, nil
}

func (s *ringStore) Put(ctx context.Context, aor string, set registrar.BindingSet, ifVersion uint64) error {
	opt := dht.PutOptions{Conditional: true, IfVersion: ifVersion}
	var err error
	if !set.RetainUntil.After(s.now()) {
		_, err = s.ring.Delete(ctx, aor, opt)
	} else {
		var val []byte
		val, err = registrar.MarshalBindings(set)
		if err != nil {
			return fmt.Errorf("node: location put %q: %w", aor, err)
		}
		opt.Expires = set.RetainUntil.UnixNano()
		_, err = s.ring.Put(ctx, aor, val, opt)
	}
	if errors.Is(err, dht.ErrConflict) {
		return fmt.Errorf("node: location put %q: %w: %w", aor, registrar.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("node: location put %q: %w", aor, err)
	}
	return nil
}
