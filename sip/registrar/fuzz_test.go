package registrar

import (
	"testing"
	"time"
)

// FuzzUnmarshalBindings: no input panics; whatever decodes re-encodes and
// decodes to the same set. Seeds: f.Add below and testdata/fuzz.
func FuzzUnmarshalBindings(f *testing.F) {
	for _, s := range []BindingSet{
		{},
		{Bindings: []Binding{typicalBinding()}, RetainUntil: t0.Add(25 * time.Hour)},
		{Bindings: []Binding{fullBinding(), typicalBinding()}},
	} {
		data, err := MarshalBindings(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 1, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := UnmarshalBindings(data)
		if err != nil {
			return
		}
		roundTrip(t, s)
	})
}
