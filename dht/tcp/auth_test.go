package tcp

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/dsn-ims/dsn/dht"
)

type handshakeResult struct {
	sess session
	err  error
}

// ringOf builds a keyring from keys, the first the primary.
func ringOf(t testing.TB, keys ...[]byte) *keyring {
	t.Helper()
	r, err := newKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// handshakePair runs both sides of the handshake over an in-memory pipe.
func handshakePair(t *testing.T, clientRing, serverRing *keyring) (client, server handshakeResult) {
	t.Helper()
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	done := make(chan handshakeResult, 1)
	go func() {
		var r handshakeResult
		var prefix [1]byte
		if _, r.err = io.ReadFull(sc, prefix[:]); r.err == nil {
			r.sess, r.err = serverHandshake(sc, serverRing, rand.Reader)
		}
		_ = sc.Close() // unblocks a client still waiting after a failure
		done <- r
	}()
	client.sess, client.err = clientHandshake(cc, clientRing, rand.Reader, prefixDHT)
	_ = cc.Close()
	return client, <-done
}

func TestHandshakeSameKey(t *testing.T) {
	c, s := handshakePair(t, ringOf(t, keyA), ringOf(t, keyA))
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake failed: client %v, server %v", c.err, s.err)
	}
	// Each direction's key opens what the other side sealed, and only that.
	for _, dir := range []struct {
		name       string
		seal, open session
	}{{"client to server", c.sess, s.sess}, {"server to client", s.sess, c.sess}} {
		wire := sealFrames(t, dir.seal, []byte("hello"), []byte("again"))
		o := opener{r: bytes.NewReader(wire), aead: dir.open.recv, max: 1024}
		for _, want := range []string{"hello", "again"} {
			got, err := o.next()
			if err != nil || string(got) != want {
				t.Fatalf("%s: got %q, %v; want %q", dir.name, got, err, want)
			}
		}
	}
}

func TestHandshakeWrongKey(t *testing.T) {
	c, s := handshakePair(t, ringOf(t, keyB), ringOf(t, keyA))
	if !errors.Is(c.err, dht.ErrUnauthenticated) {
		t.Errorf("client error = %v, want ErrUnauthenticated", c.err)
	}
	if !errors.Is(s.err, dht.ErrUnauthenticated) {
		t.Errorf("server error = %v, want ErrUnauthenticated", s.err)
	}
}

// serverOnPipe runs the server side of the handshake with keyA on one end
// of a pipe; it returns the other end and the handshake's outcome.
func serverOnPipe(t *testing.T) (net.Conn, <-chan error) {
	cc, sc := net.Pipe()
	t.Cleanup(func() { _ = cc.Close() })
	done := make(chan error, 1)
	go func() {
		_, err := serverHandshake(sc, ringOf(t, keyA), rand.Reader)
		_ = sc.Close()
		done <- err
	}()
	return cc, done
}

// A client that answers with a made-up proof is rejected, and told so.
func TestHandshakeForgedClientProof(t *testing.T) {
	cc, done := serverOnPipe(t)
	hello := append([]byte{protoVersion}, make([]byte, nonceLen)...)
	if _, err := cc.Write(hello); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 1+nonceLen+proofLen)
	if _, err := io.ReadFull(cc, reply); err != nil {
		t.Fatal(err)
	}
	forged := append([]byte{statusOK}, bytes.Repeat([]byte{1}, proofLen)...)
	if _, err := cc.Write(forged); err != nil {
		t.Fatal(err)
	}
	var status [1]byte
	if _, err := io.ReadFull(cc, status[:]); err != nil || status[0] != statusReject {
		t.Fatalf("status %v, %v; want reject", status[0], err)
	}
	if err := <-done; !errors.Is(err, dht.ErrUnauthenticated) {
		t.Fatalf("server error = %v, want ErrUnauthenticated", err)
	}
}

func TestHandshakeVersionMismatch(t *testing.T) {
	cc, done := serverOnPipe(t)
	go func() { _, _ = cc.Write(append([]byte{protoVersion + 1}, make([]byte, nonceLen)...)) }()
	var v [1]byte
	if _, err := io.ReadFull(cc, v[:]); err != nil || v[0] != protoVersion {
		t.Fatalf("server announced %d, %v; want version %d", v[0], err, protoVersion)
	}
	if err := <-done; err == nil || errors.Is(err, dht.ErrUnauthenticated) {
		t.Fatalf("server error = %v, want a version error", err)
	}
}

// sealFrames seals payloads as consecutive frames of s's sending side.
func sealFrames(t *testing.T, s session, payloads ...[]byte) []byte {
	t.Helper()
	sl := sealer{aead: s.send}
	var wire []byte
	for _, p := range payloads {
		frame := append(make([]byte, frameHeaderLen, frameHeaderLen+len(p)+tagLen), p...)
		out, err := sl.seal(frame)
		if err != nil {
			t.Fatal(err)
		}
		sl.commit()
		wire = append(wire, out...)
	}
	return wire
}

func TestFrameRejectsTamperingReplayAndReorder(t *testing.T) {
	c, s := handshakePair(t, ringOf(t, keyA), ringOf(t, keyA))
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: %v, %v", c.err, s.err)
	}
	one := sealFrames(t, c.sess, []byte("first"), []byte("second"))
	firstLen := frameHeaderLen + len("first") + tagLen
	first, second := one[:firstLen], one[firstLen:]
	flip := func(b []byte, i int) []byte {
		b = append([]byte(nil), b...)
		b[i] ^= 1
		return b
	}
	cases := map[string][]byte{
		"flipped ciphertext": flip(first, frameHeaderLen+1),
		"flipped tag":        flip(first, len(first)-1),
		"reordered":          second,
		"replayed":           append(append([]byte(nil), first...), first...),
		"short frame":        {0, 0, 0, 3, 1, 2, 3},
	}
	for name, wire := range cases {
		t.Run(name, func(t *testing.T) {
			o := opener{r: bytes.NewReader(wire), aead: s.sess.recv, max: 1024}
			var err error
			for err == nil {
				_, err = o.next()
			}
			if !errors.Is(err, errFrameAuth) {
				t.Fatalf("got %v, want errFrameAuth", err)
			}
		})
	}
}

// An oversized length prefix is refused from the header alone.
func TestFrameOversizedHeader(t *testing.T) {
	c, s := handshakePair(t, ringOf(t, keyA), ringOf(t, keyA))
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: %v, %v", c.err, s.err)
	}
	hdr := binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF)
	o := opener{r: bytes.NewReader(hdr), aead: s.sess.recv, max: 4 << 20}
	var err error
	if n := allocatedBytes(func() { _, err = o.next() }); n > 64<<10 {
		t.Errorf("rejecting a 4 GiB header allocated %d bytes", n)
	}
	if !errors.Is(err, errFrameTooLarge) {
		t.Fatalf("got %v, want errFrameTooLarge", err)
	}
}
