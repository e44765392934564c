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
