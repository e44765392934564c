package tcp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the message decoder: it must never
// panic, and whatever it accepts must re-encode to exactly the same bytes
// (the decoder accepts canonical encodings only). The seed corpus is in
// testdata/fuzz/FuzzDecode (regenerate with DHT_TCP_WRITE_CORPUS=1
// go test -run TestWriteFuzzCorpus ./dht/tcp/).
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		f.Add(appendMessage(nil, &m))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			return
		}
		if again := appendMessage(nil, &m); !bytes.Equal(again, data) {
			t.Fatalf("decode/encode changed the bytes:\n in  %x\n out %x\n msg %+v", data, again, m)
		}
	})
}

// TestWriteFuzzCorpus writes the seed corpus files; it only runs when
// DHT_TCP_WRITE_CORPUS is set.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("DHT_TCP_WRITE_CORPUS") == "" {
		t.Skip("set DHT_TCP_WRITE_CORPUS=1 to rewrite testdata/fuzz/FuzzDecode")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, m := range sampleMessages() {
		b := appendMessage(nil, &m)
		name := fmt.Sprintf("seed-%02d-%s-kind%d", i, m.op, m.kind)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// scripted is one side of a handshake: it reads the peer's bytes from in
// and discards what it writes.
type scripted struct{ in *bytes.Reader }

func (s scripted) Read(p []byte) (int, error)  { return s.in.Read(p) }
func (s scripted) Write(p []byte) (int, error) { return len(p), nil }

// FuzzHandshake plays arbitrary bytes as the peer against both roles of
// the handshake with a two-key ring: neither may panic, and neither may
// accept a peer that holds no key.
func FuzzHandshake(f *testing.F) {
	ring, err := newKeyring([][]byte{keyA, keyB})
	if err != nil {
		f.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{7}, 4*nonceLen)
	f.Add(append([]byte{protoVersion}, make([]byte, nonceLen)...))
	f.Add(append(append([]byte{protoVersion}, make([]byte, nonceLen)...), statusMore, statusMore))
	f.Add(append(append([]byte{protoVersion}, make([]byte, nonceLen+proofLen)...), 1, 9, 9))
	f.Add(append(append([]byte{protoVersion}, make([]byte, nonceLen+proofLen)...), MaxKeys))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := serverHandshake(scripted{bytes.NewReader(data)}, ring, bytes.NewReader(nonce)); err == nil {
			t.Fatalf("server accepted a client without the key: %x", data)
		}
		if _, err := clientHandshake(scripted{bytes.NewReader(data)}, ring, bytes.NewReader(nonce), prefixDHT); err == nil {
			t.Fatalf("client accepted a server without the key: %x", data)
		}
	})
}
