package tcp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/dsn-ims/dsn/dht"
)

var (
	key1 = bytes.Repeat([]byte{0x11}, 32)
	key2 = bytes.Repeat([]byte{0x22}, 16)
	key3 = bytes.Repeat([]byte{0x33}, 24)
)

func TestValidateKeys(t *testing.T) {
	long := make([][]byte, MaxKeys+1)
	for i := range long {
		long[i] = bytes.Repeat([]byte{byte(i)}, 16)
	}
	for name, c := range map[string]struct {
		keys [][]byte
		want string // "" = valid
	}{
		"one":          {[][]byte{key1}, ""},
		"three sizes":  {[][]byte{key1, key2, key3}, ""},
		"max":          {long[:MaxKeys], ""},
		"none":         {nil, "no cluster key"},
		"too many":     {long, "at most 8"},
		"short":        {[][]byte{key1, []byte("short")}, "cluster key 1 must be 16, 24 or 32 bytes, got 5"},
		"duplicate":    {[][]byte{key1, key2, bytes.Clone(key1)}, "cluster key 2 repeats key 0"},
		"empty second": {[][]byte{key1, {}}, "cluster key 1 must be"},
	} {
		err := ValidateKeys(c.keys)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: got %v, want %q", name, err, c.want)
		}
	}
}

// A KeyID is stable, distinct per key, and not the key.
func TestKeyID(t *testing.T) {
	if KeyID(key1) != KeyID(bytes.Clone(key1)) {
		t.Error("KeyID not stable")
	}
	if KeyID(key1) == KeyID(key2) {
		t.Error("two keys share a KeyID")
	}
	if id := KeyID(key1); len(id) != 8 || strings.Contains(id, "1111") {
		t.Errorf("KeyID %q: want 8 hex digits unrelated to the key", id)
	}
}

// The keyring copies the caller's keys.
func TestKeyringCopies(t *testing.T) {
	k := bytes.Clone(key1)
	r := ringOf(t, k)
	k[0] ^= 0xFF
	if !bytes.Equal(r.keys[0], key1) {
		t.Fatal("keyring shares the caller's slice")
	}
}

// Every pair of the keyrings a rotation goes through connects when it
// shares a key, with the first key of the client's ring that the server
// holds, and is refused by both sides when it shares none.
func TestHandshakeKeyMatrix(t *testing.T) {
	rings := map[string][][]byte{
		"[K1]":    {key1},
		"[K1 K2]": {key1, key2},
		"[K2 K1]": {key2, key1},
		"[K2]":    {key2},
		"[K3]":    {key3},
	}
	for cname, ckeys := range rings {
		for sname, skeys := range rings {
			t.Run(cname+" dials "+sname, func(t *testing.T) {
				cr, sr := ringOf(t, ckeys...), ringOf(t, skeys...)
				want := -1 // index in the client's ring of the key to use
				for i, k := range ckeys {
					if sr.index(k) >= 0 {
						want = i
						break
					}
				}
				c, s := handshakePair(t, cr, sr)
				if want < 0 {
					if !errors.Is(c.err, dht.ErrUnauthenticated) || !errors.Is(s.err, dht.ErrUnauthenticated) {
						t.Fatalf("no shared key, yet client %v, server %v", c.err, s.err)
					}
					return
				}
				if c.err != nil || s.err != nil {
					t.Fatalf("shared key, yet client %v, server %v", c.err, s.err)
				}
				if c.sess.keyIndex != want || !bytes.Equal(c.sess.key, ckeys[want]) {
					t.Errorf("client used its key %d, want %d", c.sess.keyIndex, want)
				}
				if !bytes.Equal(s.sess.key, ckeys[want]) || s.sess.keyIndex != sr.index(ckeys[want]) {
					t.Errorf("server used its key %d, not the client's", s.sess.keyIndex)
				}
				wire := sealFrames(t, c.sess, []byte("ping"))
				o := opener{r: bytes.NewReader(wire), aead: s.sess.recv, max: 1024}
				if got, err := o.next(); err != nil || string(got) != "ping" {
					t.Fatalf("session keys differ: %q, %v", got, err)
				}
			})
		}
	}
}

// countingRW counts the bytes written through it.
type countingRW struct {
	io.ReadWriter
	n int
}

func (c *countingRW) Write(p []byte) (int, error) {
	n, err := c.ReadWriter.Write(p)
	c.n += n
	return n, err
}

// When the client's primary is the server's, the handshake is the one
// round of protocol version 1, byte for byte the same lengths: a node
// with one key still talks to one built before keyrings.
func TestHandshakeSameLengthsAsSingleKey(t *testing.T) {
	for name, rings := range map[string][2]*keyring{
		"one key each":   {ringOf(t, key1), ringOf(t, key1)},
		"same primaries": {ringOf(t, key1, key2), ringOf(t, key1, key3)},
	} {
		cc, sc := net.Pipe()
		cw, sw := &countingRW{ReadWriter: cc}, &countingRW{ReadWriter: sc}
		done := make(chan error, 1)
		go func() {
			var prefix [1]byte
			_, err := io.ReadFull(sc, prefix[:])
			if err == nil {
				_, err = serverHandshake(sw, rings[1], rand.Reader)
			}
			done <- err
		}()
		_, cerr := clientHandshake(cw, rings[0], rand.Reader, prefixDHT)
		if err := <-done; cerr != nil || err != nil {
			t.Fatalf("%s: %v, %v", name, cerr, err)
		}
		_ = cc.Close()
		// prefix, version, nonce; status, proof.
		if want := 1 + 1 + nonceLen + 1 + proofLen; cw.n != want {
			t.Errorf("%s: client wrote %d bytes, want %d", name, cw.n, want)
		}
		// version, nonce, proof; status.
		if want := 1 + nonceLen + proofLen + 1; sw.n != want {
			t.Errorf("%s: server wrote %d bytes, want %d", name, sw.n, want)
		}
	}
}

// A client that asks twice for the server's other proofs is cut off
// with a protocol error.
func TestHandshakeMoreTwice(t *testing.T) {
	cc, done := serverOnPipe(t)
	if _, err := cc.Write(append([]byte{protoVersion}, make([]byte, nonceLen)...)); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 1+nonceLen+proofLen)
	if _, err := io.ReadFull(cc, reply); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = cc.Write([]byte{statusMore}) }()
	var n [1]byte
	if _, err := io.ReadFull(cc, n[:]); err != nil || n[0] != 0 {
		t.Fatalf("server with one key announced %d more proofs, %v", n[0], err)
	}
	go func() { _, _ = cc.Write([]byte{statusMore}) }()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "asked twice") {
		t.Fatalf("server error = %v, want a protocol error", err)
	}
}

// A server that announces more proofs than a keyring can hold is cut
// off before the client reads them.
func TestHandshakeTooManyProofs(t *testing.T) {
	cc, sc := net.Pipe()
	defer cc.Close()
	go func() {
		defer sc.Close()
		hello := make([]byte, 2+nonceLen)
		if _, err := io.ReadFull(sc, hello); err != nil {
			return
		}
		_, _ = sc.Write(append([]byte{protoVersion}, make([]byte, nonceLen+proofLen)...))
		var status [1]byte
		if _, err := io.ReadFull(sc, status[:]); err != nil || status[0] != statusMore {
			return
		}
		_, _ = sc.Write([]byte{MaxKeys})
	}()
	_, err := clientHandshake(cc, ringOf(t, key1), rand.Reader, prefixDHT)
	if err == nil || !strings.Contains(err.Error(), "more key proofs") {
		t.Fatalf("client error = %v, want a protocol error", err)
	}
}
