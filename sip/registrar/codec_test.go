package registrar

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// typicalBinding is what a NATed desk phone registers.
func typicalBinding() Binding {
	return Binding{
		Contact:    "sip:alice@192.168.1.20:5060;transport=udp",
		Q:          QNone,
		Expires:    t0.Add(time.Hour),
		CallID:     "3c26700b-0e6a-4b0d-9c4a-5a3f2fb3e1a7",
		CSeq:       1042,
		Received:   Source{Transport: "UDP", Addr: netip.MustParseAddrPort("203.0.113.5:40001")},
		Registered: t0,
	}
}

// fullBinding sets every optional field.
func fullBinding() Binding {
	b := typicalBinding()
	b.Q = 500
	b.Path = []string{"<sip:10.0.0.1:5060;lr>", "<sip:edge.dsn.test;lr;ob>"}
	b.Received = Source{Transport: "TLS", Addr: netip.MustParseAddrPort("[2001:db8::7]:5061")}
	b.Instance = "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"
	b.RegID = 2
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	other := typicalBinding()
	other.Received = Source{Transport: "QUIC", Addr: netip.MustParseAddrPort("[::ffff:198.51.100.1]:7")}
	other.Q = 0
	noSource := typicalBinding()
	noSource.Received = Source{}
	sets := map[string]BindingSet{
		"empty":        {},
		"empty linger": {RetainUntil: t0.Add(24 * time.Hour)},
		"typical":      {Bindings: []Binding{typicalBinding()}, RetainUntil: t0.Add(25 * time.Hour)},
		"full":         {Bindings: []Binding{fullBinding(), other, noSource}, RetainUntil: t0.Add(25 * time.Hour)},
	}
	for name, s := range sets {
		t.Run(name, func(t *testing.T) { roundTrip(t, s) })
	}
}

// TestCodecMillisecondPrecision: times keep milliseconds, lose the rest.
func TestCodecMillisecondPrecision(t *testing.T) {
	b := typicalBinding()
	b.Registered = t0.Add(1234567 * time.Nanosecond)
	data, err := MarshalBindings(BindingSet{Bindings: []Binding{b}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := UnmarshalBindings(data)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(time.Millisecond); !got.Bindings[0].Registered.Equal(want) {
		t.Fatalf("Registered = %v, want %v", got.Bindings[0].Registered, want)
	}
}

func TestMarshalRejectsOutOfBounds(t *testing.T) {
	mod := map[string]func(*Binding){
		"empty contact":    func(b *Binding) { b.Contact = "" },
		"long contact":     func(b *Binding) { b.Contact = "sip:" + strings.Repeat("a", MaxURILen) },
		"long call-id":     func(b *Binding) { b.CallID = strings.Repeat("c", MaxCallIDLen+1) },
		"q above 1":        func(b *Binding) { b.Q = 1001 },
		"q negative":       func(b *Binding) { b.Q = -2 },
		"too many paths":   func(b *Binding) { b.Path = make([]string, MaxPathLen+1) },
		"empty path":       func(b *Binding) { b.Path = []string{""} },
		"long instance":    func(b *Binding) { b.Instance = strings.Repeat("i", MaxInstanceLen+1) },
		"long transport":   func(b *Binding) { b.Received.Transport = strings.Repeat("T", 17) },
		"time before 1970": func(b *Binding) { b.Expires = time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, f := range mod {
		t.Run(name, func(t *testing.T) {
			b := typicalBinding()
			f(&b)
			if _, err := MarshalBindings(BindingSet{Bindings: []Binding{b}}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := MarshalBindings(BindingSet{Bindings: make([]Binding, MaxBindings+1)}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too many bindings: err = %v", err)
	}
}

func TestUnmarshalRejectsGarbage(t *testing.T) {
	good, err := MarshalBindings(BindingSet{Bindings: []Binding{fullBinding()}, RetainUntil: t0})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"nil":              nil,
		"unknown version":  {2, 0, 0},
		"huge count":       {1, 0, 0xff, 0xff, 0x03},
		"trailing":         append(bytes.Clone(good), 0),
		"unknown flag":     {1, 0, 1, 0x80},
		"bad varint":       {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"time overflow":    {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0},
		"string past end":  {1, 0, 1, 0, 0x10, 'a'},
		"too large":        make([]byte, MaxEncodedLen+1),
		"zero-length path": {1, 0, 1, byte(flagPath), 1, 'x', 0, 0, 0, 0, 0},
	}
	for i := 1; i < len(good); i++ {
		cases["truncated at "+strconv.Itoa(i)] = good[:i]
	}
	for name, data := range cases {
		if _, err := UnmarshalBindings(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestEncodedSize pins the footprint the 1 KB/contact target depends on.
func TestEncodedSize(t *testing.T) {
	data, err := MarshalBindings(BindingSet{Bindings: []Binding{typicalBinding()}, RetainUntil: t0.Add(25 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 128 {
		t.Fatalf("typical one-binding set encodes to %d bytes, want <= 128", len(data))
	}
	t.Logf("typical one-binding set: %d bytes", len(data))
}

// roundTrip encodes and decodes s and fails unless the result equals s.
func roundTrip(t testing.TB, s BindingSet) {
	t.Helper()
	data, err := MarshalBindings(s)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := UnmarshalBindings(data)
	if err != nil {
		t.Fatalf("Unmarshal of Marshal output: %v", err)
	}
	if !setsEqual(got, s) {
		t.Fatalf("round trip changed the set:\n got %+v\nwant %+v", got, s)
	}
}

// setsEqual compares sets field by field, times by instant and nil slices
// as empty.
func setsEqual(a, b BindingSet) bool {
	if !a.RetainUntil.Equal(b.RetainUntil) || len(a.Bindings) != len(b.Bindings) {
		return false
	}
	for i := range a.Bindings {
		x, y := a.Bindings[i], b.Bindings[i]
		if !x.Expires.Equal(y.Expires) || !x.Registered.Equal(y.Registered) || len(x.Path) != len(y.Path) {
			return false
		}
		if len(x.Path) > 0 && !reflect.DeepEqual(x.Path, y.Path) {
			return false
		}
		x.Expires, y.Expires, x.Registered, y.Registered, x.Path, y.Path = time.Time{}, time.Time{}, time.Time{}, time.Time{}, nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}
