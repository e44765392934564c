package tcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/dsn-ims/dsn/dht"
)

// sampleMessages returns one request and one response of every op with
// every payload field set, plus error responses; the seed corpus of
// FuzzDecode is built from them.
func sampleMessages() []message {
	req := func(o op) message { return message{kind: kindRequest, id: 7, op: o, timeoutMs: 1500} }
	resp := func(o op) message { return message{kind: kindResponse, id: 1 << 40, op: o} }
	var ms []message
	add := func(m message, set func(*message)) {
		if set != nil {
			set(&m)
		}
		ms = append(ms, m)
	}
	add(req(opPing), nil)
	add(resp(opPing), func(m *message) { m.peer = peerA })
	add(req(opGetNeighbors), nil)
	add(resp(opGetNeighbors), func(m *message) { m.neighbors = fixNeighbors })
	add(req(opNotify), func(m *message) { m.peer = peerC })
	add(resp(opNotify), nil)
	add(req(opFindNext), func(m *message) { m.target = 0x8000000000000000; m.exclude = fixExclude })
	add(resp(opFindNext), func(m *message) { m.step = fixStep })
	add(req(opLeave), func(m *message) { m.notice = fixNotice })
	add(resp(opLeave), nil)
	add(req(opPut), func(m *message) { m.put = fixPutReq })
	add(resp(opPut), func(m *message) { m.putResult = fixPutResult })
	add(req(opGet), func(m *message) { m.key = recA.Key })
	add(resp(opGet), func(m *message) { m.record = recB; m.found = true })
	add(req(opStore), func(m *message) { m.records = []dht.Record{recA, recB} })
	add(resp(opStore), nil)
	add(req(opSync), func(m *message) { m.digest = fixDigest })
	add(resp(opSync), func(m *message) { m.reply = fixReply })
	add(resp(opPut), func(m *message) { m.code = codeConflict; m.text = "dht: version conflict" })
	add(resp(opGet), func(m *message) { m.code = codeError; m.text = "disk on fire" })
	return ms
}

func TestMessageRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		name := m.op.String() + "-request"
		if m.kind == kindResponse {
			name = fmt.Sprintf("%s-response-code%d", m.op, m.code)
		}
		t.Run(name, func(t *testing.T) {
			b := appendMessage(nil, &m)
			got, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip changed the message:\n got %+v\nwant %+v", got, m)
			}
			if again := appendMessage(nil, &got); !bytes.Equal(again, b) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, b)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := appendMessage(nil, &message{kind: kindRequest, id: 1, op: opGet, key: "k"})
	cases := map[string][]byte{
		"empty":            {},
		"unknown kind":     {9, 1, byte(opPing), 0},
		"unknown op":       {kindRequest, 1, 200, 0},
		"op zero":          {kindRequest, 1, 0, 0},
		"non-minimal id":   {kindRequest, 0x81, 0x00, byte(opPing), 0},
		"overlong varint":  append([]byte{kindRequest}, bytes.Repeat([]byte{0xff}, 11)...),
		"trailing byte":    append(append([]byte(nil), good...), 0),
		"truncated":        good[:len(good)-1],
		"bad bool":         {kindResponse, 1, byte(opGet), 0, 0, 0, 0, 0, 0, 2},
		"unknown code":     {kindResponse, 1, byte(opPing), byte(codeEnd), 0},
		"string too long":  {kindRequest, 1, byte(opGet), 0, 0x05, 'a'},
		"count too large":  {kindRequest, 1, byte(opStore), 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad record flags": {kindRequest, 1, byte(opStore), 0, 1, 0, 0, 0, 0, 0x02},
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := decodeMessage(b); !errors.Is(err, errMalformed) {
				t.Fatalf("decode(%x) = %v, want errMalformed", b, err)
			}
		})
	}
}

// A count that claims billions of elements must fail before allocating.
func TestDecodeHugeCountDoesNotAllocate(t *testing.T) {
	b := []byte{kindRequest, 1, byte(opFindNext), 0}
	b = binary.BigEndian.AppendUint64(b, 1)
	b = binary.AppendUvarint(b, 1<<40) // exclude count
	if n := allocatedBytes(func() {
		if _, err := decodeMessage(b); err == nil {
			t.Fatal("decoded an impossible count")
		}
	}); n > 4<<10 {
		t.Fatalf("rejecting the count allocated %d bytes, want a few hundred", n)
	}
}

// allocatedBytes reports the bytes f allocated (plus noise from other
// goroutines, which these tests keep small).
func allocatedBytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// A request whose op is unknown still yields its kind and ID, so the
// server can answer it with an error instead of dropping the connection.
func TestDecodeUnknownOpKeepsID(t *testing.T) {
	m, err := decodeMessage([]byte{kindRequest, 42, 99, 0})
	if err == nil || m.kind != kindRequest || m.id != 42 {
		t.Fatalf("got %+v, %v; want kind and id with an error", m, err)
	}
}

// The wire encodes every field of the dht types by hand, so a field added
// to one of them must be added here too: this test names the type to
// update in wire.go.
func TestWireCoversAllFields(t *testing.T) {
	for _, tc := range []struct {
		v      any
		fields int
	}{
		{dht.Peer{}, 4},
		{dht.Record{}, 5},
		{dht.Neighbors{}, 2},
		{dht.Step{}, 3},
		{dht.LeaveNotice{}, 3},
		{dht.PutRequest{}, 3},
		{dht.PutResult{}, 2},
		{dht.Digest{}, 3},
		{dht.DigestReply{}, 3},
	} {
		if n := reflect.TypeOf(tc.v).NumField(); n != tc.fields {
			t.Errorf("%T has %d fields, the wire encodes %d: update wire.go", tc.v, n, tc.fields)
		}
	}
}
