package tcp

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dsn-ims/dsn/dht"
)

// Every RPC carries all its fields both ways over a real connection.
func TestAllRPCsRoundTrip(t *testing.T) {
	h := newFakeHandler(peerA)
	srv := newTransport(t, keyA, h, nil)
	cli := newTransport(t, keyA, nil, nil)
	to := dht.Peer{ID: peerA.ID, Name: peerA.Name, Addr: srv.Addr()}
	ctx := ctxTimeout(t, 5*time.Second)

	check := func(name string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", name, got, want)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(cli.Ping(ctx, to))

	nb, err := cli.GetNeighbors(ctx, to)
	must(err)
	check("GetNeighbors result", nb, fixNeighbors)

	must(cli.Notify(ctx, to, peerC))
	check("Notify argument", h.arg("notify"), peerC)

	step, err := cli.FindNext(ctx, to, 0x8000000000000000, fixExclude)
	must(err)
	check("FindNext result", step, fixStep)
	check("FindNext arguments", h.arg("find-next"), findNextArgs{0x8000000000000000, fixExclude})

	must(cli.Leave(ctx, to, fixNotice))
	check("Leave argument", h.arg("leave"), fixNotice)

	res, err := cli.Put(ctx, to, fixPutReq)
	must(err)
	check("Put result", res, fixPutResult)
	check("Put argument", h.arg("put"), fixPutReq)

	rec, found, err := cli.Get(ctx, to, recB.Key)
	must(err)
	check("Get result", rec, recA)
	check("Get found", found, true)
	check("Get argument", h.arg("get"), recB.Key)

	must(cli.Store(ctx, to, []dht.Record{recA, recB}))
	check("Store argument", h.arg("store"), []dht.Record{recA, recB})

	reply, err := cli.Sync(ctx, to, fixDigest)
	must(err)
	check("Sync result", reply, fixReply)
	check("Sync argument", h.arg("sync"), fixDigest)

	if got := cli.Stats().Dials; got != 1 {
		t.Errorf("%d dials for sequential calls, want 1", got)
	}
}

func TestRemoteErrorsSurvive(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		sentinel error // nil: generic
	}{
		{"not owner", fmt.Errorf("key moved: %w", dht.ErrNotOwner), dht.ErrNotOwner},
		{"conflict", dht.ErrConflict, dht.ErrConflict},
		{"not found", fmt.Errorf("x: %w", dht.ErrNotFound), dht.ErrNotFound},
		{"stopped", dht.ErrStopped, dht.ErrStopped},
		{"generic", errors.New("store: disk on fire"), nil},
		{"unreachable stays remote", fmt.Errorf("forwarding: %w", dht.ErrUnreachable), nil},
	}
	cli := newTransport(t, keyA, nil, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler(peerA)
			h.err = tc.err
			srv := newTransport(t, keyA, h, nil)
			_, err := cli.Put(ctxTimeout(t, 5*time.Second), peerAt(srv), fixPutReq)
			var re *RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("got %v (%T), want a *RemoteError", err, err)
			}
			if re.Msg != tc.err.Error() || re.Op != "put" || re.Addr != srv.Addr() {
				t.Errorf("RemoteError %+v does not carry the remote message %q", re, tc.err)
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.sentinel)
			}
			for _, s := range []error{dht.ErrNotOwner, dht.ErrConflict, dht.ErrNotFound, dht.ErrStopped, dht.ErrUnreachable} {
				if s != tc.sentinel && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
		})
	}
}

func TestNotServingAnswersStopped(t *testing.T) {
	srv := newTransport(t, keyA, nil, nil)
	cli := newTransport(t, keyA, nil, nil)
	ctx := ctxTimeout(t, 5*time.Second)
	if err := cli.Ping(ctx, peerAt(srv)); !errors.Is(err, dht.ErrStopped) {
		t.Fatalf("before Serve: %v, want ErrStopped", err)
	}
	srv.Serve(newFakeHandler(peerA))
	if err := cli.Ping(ctx, peerAt(srv)); err != nil {
		t.Fatalf("after Serve: %v", err)
	}
	srv.Serve(nil)
	if err := cli.Ping(ctx, peerAt(srv)); !errors.Is(err, dht.ErrStopped) {
		t.Fatalf("after Serve(nil): %v, want ErrStopped", err)
	}
}

func TestHandlerPanicIsRemoteError(t *testing.T) {
	h := newFakeHandler(peerA)
	h.hook = func(context.Context, string, any) error { panic("boom") }
	srv := newTransport(t, keyA, h, nil)
	cli := newTransport(t, keyA, nil, nil)
	var re *RemoteError
	if err := cli.Notify(ctxTimeout(t, 5*time.Second), peerAt(srv), peerB); !errors.As(err, &re) {
		t.Fatalf("got %v, want a RemoteError", err)
	}
}

// The caller's deadline ends the call while the handler blocks, and the
// handler's context ends too (the deadline travels with the request).
func TestDeadlineWhenHandlerBlocks(t *testing.T) {
	handlerDone := make(chan error, 1)
	h := newFakeHandler(peerA)
	h.hook = func(ctx context.Context, method string, _ any) error {
		<-ctx.Done()
		handlerDone <- ctx.Err()
		return ctx.Err()
	}
	srv := newTransport(t, keyA, h, nil)
	cli := newTransport(t, keyA, nil, nil)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, _, err := cli.Get(ctx, peerAt(srv), "k")
	if !errors.Is(err, dht.ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want ErrUnreachable and DeadlineExceeded", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Fatalf("call returned after %v, deadline was 200ms", elapsed)
	}
	select {
	case err := <-handlerDone:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("handler context ended with %v, want DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("handler context never ended")
	}
}

// A slow call does not hold up other calls to the same peer.
func TestSlowCallDoesNotBlockOthers(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := newFakeHandler(peerA)
	h.hook = func(ctx context.Context, method string, arg any) error {
		if method == "get" && arg == "slow" {
			close(entered)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return nil
	}
	srv := newTransport(t, keyA, h, func(c *Config) { c.ConnsPerPeer = 1 })
	cli := newTransport(t, keyA, nil, func(c *Config) { c.ConnsPerPeer = 1 })
	to := peerAt(srv)
	slowErr := make(chan error, 1)
	go func() {
		_, _, err := cli.Get(ctxTimeout(t, 10*time.Second), to, "slow")
		slowErr <- err
	}()
	<-entered
	for i := range 20 {
		if _, _, err := cli.Get(ctxTimeout(t, 2*time.Second), to, "fast"); err != nil {
			t.Fatalf("fast call %d behind a slow one: %v", i, err)
		}
	}
	close(release)
	if err := <-slowErr; err != nil {
		t.Fatalf("slow call: %v", err)
	}
	if d := cli.Stats().Dials; d != 1 {
		t.Fatalf("%d dials, want every call on one multiplexed connection", d)
	}
}

func TestWrongKeyCannotCall(t *testing.T) {
	h := newFakeHandler(peerA)
	srv := newTransport(t, keyA, h, nil)
	intruder := newTransport(t, keyB, nil, nil)
	err := intruder.Ping(ctxTimeout(t, 5*time.Second), peerAt(srv))
	if !errors.Is(err, dht.ErrUnauthenticated) || !errors.Is(err, dht.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnauthenticated (and ErrUnreachable)", err)
	}
	waitFor(t, "server to count the rejected handshake", func() bool { return srv.Stats().HandshakesRejected == 1 })
	if n := h.callCount(); n != 0 {
		t.Fatalf("handler ran %d times for an unauthenticated caller", n)
	}
	if s := srv.Stats(); s.Accepted != 0 {
		t.Fatalf("server accepted %d connections from the intruder", s.Accepted)
	}
}

func TestWrongKeyCannotAnswer(t *testing.T) {
	impostor := newFakeHandler(dht.Peer{ID: 666, Name: "impostor"})
	fake := newTransport(t, keyB, impostor, nil)
	cli := newTransport(t, keyA, nil, nil)
	_, _, err := cli.Get(ctxTimeout(t, 5*time.Second), peerAt(fake), "k")
	if !errors.Is(err, dht.ErrUnauthenticated) {
		t.Fatalf("got %v, want ErrUnauthenticated", err)
	}
	if s := cli.Stats(); s.HandshakesRejected != 1 {
		t.Fatalf("client counted %d rejected handshakes, want 1", s.HandshakesRejected)
	}
	if n := impostor.callCount(); n != 0 {
		t.Fatalf("impostor handler ran %d times", n)
	}
}

// dialRaw opens a DHT connection by hand and authenticates with key, for
// tests that must send what a Transport never would.
func dialRaw(t *testing.T, addr string, key []byte) (net.Conn, session) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	sess, err := clientHandshake(nc, ringOf(t, key), rand.Reader, prefixDHT)
	if err != nil {
		t.Fatal(err)
	}
	return nc, sess
}

// expectClosed waits for the server to close nc.
func expectClosed(t *testing.T, nc net.Conn) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	// A server closing with our bytes unread sends a reset, not a FIN.
	if n, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("server did not close the connection: read %d bytes, %v", n, err)
	}
}

// A frame header announcing 4 GiB closes the connection without the
// server allocating for it.
func TestOversizedFrameRejected(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	nc, _ := dialRaw(t, srv.Addr(), keyA)
	var err error
	n := allocatedBytes(func() {
		_, err = nc.Write(binary.BigEndian.AppendUint32(nil, 0xFFFFFFFF))
		expectClosed(t, nc)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n > 16<<20 {
		t.Errorf("server allocated %d bytes for a rejected frame", n)
	}
	if got := srv.Stats().BadFrames; got != 1 {
		t.Errorf("BadFrames = %d, want 1", got)
	}
}

// Garbage that does not authenticate closes the connection.
func TestForgedFrameRejected(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	nc, _ := dialRaw(t, srv.Addr(), keyA)
	frame := binary.BigEndian.AppendUint32(nil, 40)
	frame = append(frame, make([]byte, 40)...)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
	if got := srv.Stats().BadFrames; got != 1 {
		t.Errorf("BadFrames = %d, want 1", got)
	}
}

// A well-formed, authenticated frame with an op the server does not know
// is answered with an error, and the connection stays up.
func TestUnknownOpAnswered(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	nc, sess := dialRaw(t, srv.Addr(), keyA)
	sl := sealer{aead: sess.send}
	o := opener{r: nc, aead: sess.recv, max: 1 << 20}
	for id := uint64(1); id <= 2; id++ {
		frame := append(make([]byte, frameHeaderLen), kindRequest, byte(id), 99, 0)
		out, err := sl.seal(frame)
		if err != nil {
			t.Fatal(err)
		}
		sl.commit()
		if _, err := nc.Write(out); err != nil {
			t.Fatal(err)
		}
		pt, err := o.next()
		if err != nil {
			t.Fatal(err)
		}
		// The reply names the op this client does not know either, so
		// only its header decodes; the error text is in the payload.
		m, _ := decodeMessage(pt)
		if m.kind != kindResponse || m.id != id || !strings.Contains(string(pt), "unknown op") {
			t.Fatalf("response %q (id %d); want an unknown-op error for id %d", pt, m.id, id)
		}
	}
}

func TestOversizedMessages(t *testing.T) {
	const max = 4 << 10
	big := dht.Record{Key: "big", Value: make([]byte, max)}
	srv := newTransport(t, keyA, bigSync{newFakeHandler(peerA), big}, func(c *Config) { c.MaxMessageSize = max })
	cli := newTransport(t, keyA, nil, func(c *Config) { c.MaxMessageSize = max })
	ctx := ctxTimeout(t, 5*time.Second)
	to := peerAt(srv)

	if err := cli.Store(ctx, to, []dht.Record{big}); !errors.Is(err, ErrMessageTooLarge) || errors.Is(err, dht.ErrUnreachable) {
		t.Fatalf("oversized request: %v, want ErrMessageTooLarge only", err)
	}
	var re *RemoteError
	if _, err := cli.Sync(ctx, to, fixDigest); !errors.As(err, &re) || !strings.Contains(re.Msg, "too large") {
		t.Fatalf("oversized response: %v, want a remote too-large error", err)
	}
	if err := cli.Ping(ctx, to); err != nil {
		t.Fatalf("connection unusable after oversized messages: %v", err)
	}
	if d := cli.Stats().Dials; d != 1 {
		t.Fatalf("%d dials, want the connection to survive", d)
	}
}

// bigSync answers Sync with a record too large for the wire.
type bigSync struct {
	*fakeHandler
	rec dht.Record
}

func (b bigSync) HandleSync(context.Context, dht.Digest) (dht.DigestReply, error) {
	return dht.DigestReply{Records: []dht.Record{b.rec}}, nil
}

func TestManyConcurrentCalls(t *testing.T) {
	const callers, calls = 64, 40
	srv := newTransport(t, keyA, newFakeHandler(peerA), func(c *Config) { c.MaxInflight = 4 })
	cli := newTransport(t, keyA, nil, nil)
	to := peerAt(srv)
	ctx := ctxTimeout(t, 30*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range calls {
				var err error
				switch (g + i) % 3 {
				case 0:
					var s dht.Step
					if s, err = cli.FindNext(ctx, to, dht.ID(i), fixExclude); err == nil && !reflect.DeepEqual(s, fixStep) {
						err = fmt.Errorf("wrong step %+v", s)
					}
				case 1:
					var r dht.PutResult
					if r, err = cli.Put(ctx, to, fixPutReq); err == nil && r != fixPutResult {
						err = fmt.Errorf("wrong put result %+v", r)
					}
				default:
					err = cli.Ping(ctx, to)
				}
				if err != nil {
					errs <- fmt.Errorf("caller %d call %d: %w", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if d := cli.Stats().Dials; d > uint64(LocalConfig().ConnsPerPeer) {
		t.Errorf("%d dials, want at most ConnsPerPeer=%d", d, LocalConfig().ConnsPerPeer)
	}
}

func TestPeerRestartRedials(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	cli := newTransport(t, keyA, nil, nil)
	addr := srv.Addr()
	to := dht.Peer{Addr: addr}
	ctx := ctxTimeout(t, 10*time.Second)
	if err := cli.Ping(ctx, to); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cli.Ping(ctx, to); !errors.Is(err, dht.ErrUnreachable) {
		t.Fatalf("peer down: %v, want ErrUnreachable", err)
	}
	newTransport(t, keyA, newFakeHandler(peerA), func(c *Config) { c.BindAddr = addr })
	if err := cli.Ping(ctx, to); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if s := cli.Stats(); s.Dials < 2 {
		t.Fatalf("stats %+v: want a second dial after the restart", s)
	}
}

func TestPingDetectsDifferentNode(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	cli := newTransport(t, keyA, nil, nil)
	ctx := ctxTimeout(t, 5*time.Second)
	if err := cli.Ping(ctx, dht.Peer{ID: peerA.ID, Addr: srv.Addr()}); err != nil {
		t.Fatalf("right node: %v", err)
	}
	if err := cli.Ping(ctx, dht.Peer{ID: peerB.ID, Addr: srv.Addr()}); !errors.Is(err, dht.ErrUnreachable) {
		t.Fatalf("other node answering: %v, want ErrUnreachable", err)
	}
}

func TestUnreachablePeer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	cli := newTransport(t, keyA, nil, nil)
	if err := cli.Ping(ctxTimeout(t, 5*time.Second), dht.Peer{Addr: addr}); !errors.Is(err, dht.ErrUnreachable) {
		t.Fatalf("got %v, want ErrUnreachable", err)
	}
	if err := cli.Ping(ctxTimeout(t, 5*time.Second), dht.Peer{Name: "no-addr"}); !errors.Is(err, dht.ErrUnreachable) {
		t.Fatalf("peer without address: %v, want ErrUnreachable", err)
	}
}

func TestIdleConnectionClosed(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	cli := newTransport(t, keyA, nil, func(c *Config) {
		c.IdleTimeout = 200 * time.Millisecond
		c.HandshakeTimeout = 200 * time.Millisecond
	})
	ctx := ctxTimeout(t, 5*time.Second)
	if err := cli.Ping(ctx, peerAt(srv)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle connection to close", func() bool {
		cli.mu.Lock()
		defer cli.mu.Unlock()
		return len(cli.peers) == 0
	})
	if err := cli.Ping(ctx, peerAt(srv)); err != nil {
		t.Fatal(err)
	}
	if d := cli.Stats().Dials; d != 2 {
		t.Fatalf("%d dials, want a new one after the idle close", d)
	}
}

func TestUnknownPrefixClosed(t *testing.T) {
	srv := newTransport(t, keyA, newFakeHandler(peerA), nil)
	nc, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	expectClosed(t, nc)
	waitFor(t, "BadPrefix to count", func() bool { return srv.Stats().BadPrefix == 1 })
}

// Close returns every goroutine the transports started, also with calls
// and handlers in flight, and calls after Close fail with ErrStopped.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	entered := make(chan struct{}, 1)
	h := newFakeHandler(peerA)
	h.hook = func(ctx context.Context, method string, _ any) error {
		if method == "get" {
			entered <- struct{}{}
			<-ctx.Done()
		}
		return nil
	}
	cfg := LocalConfig()
	srv, err := New(cfg, [][]byte{keyA}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.Serve(h)
	cli, err := New(cfg, [][]byte{keyA}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for range 10 {
		if err := cli.Ping(ctx, peerAt(srv)); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() {
		_, _, err := cli.Get(ctx, peerAt(srv), "blocks")
		blocked <- err
	}()
	<-entered
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cli.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; err == nil {
		t.Fatal("call in flight across Close succeeded")
	}
	if err := cli.Ping(ctx, peerAt(srv)); !errors.Is(err, dht.ErrStopped) {
		t.Fatalf("call after Close: %v, want ErrStopped", err)
	}
	if err := cli.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	waitFor(t, "goroutines to return", func() bool { return runtime.NumGoroutine() <= before })
}

func TestNewValidates(t *testing.T) {
	if _, err := New(LocalConfig(), [][]byte{[]byte("short")}, nil); err == nil {
		t.Error("accepted a 5-byte key")
	}
	bad := LocalConfig()
	bad.MaxMessageSize = 10
	bad.AdvertiseAddr = "node.example.com:7946"
	bad.DialTimeout = 0
	err := bad.Validate()
	for _, want := range []string{"MaxMessageSize", "AdvertiseAddr", "DialTimeout"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig invalid: %v", err)
	}
}

func TestAdvertiseAddr(t *testing.T) {
	tr := newTransport(t, keyA, nil, func(c *Config) { c.AdvertiseAddr = "192.0.2.7:0" })
	_, port, _ := net.SplitHostPort(tr.tcp.Addr().String())
	if want := net.JoinHostPort("192.0.2.7", port); tr.Addr() != want {
		t.Fatalf("Addr() = %s, want %s", tr.Addr(), want)
	}
	ip, p, err := tr.Memberlist().FinalAdvertiseAddr("", 7946)
	if err != nil || ip.String() != "192.0.2.7" || fmt.Sprint(p) != port {
		t.Fatalf("FinalAdvertiseAddr = %v, %d, %v", ip, p, err)
	}
}
