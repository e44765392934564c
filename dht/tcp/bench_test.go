package tcp

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"testing"

	"github.com/dsn-ims/dsn/dht"
)

// Benchmarks over loopback with one multiplexed connection warmed up.
// BenchmarkRawTCPEcho is the floor: one plain TCP round trip of a payload
// the size of a FindNext response, no framing, crypto or handler.

func benchPair(b *testing.B) (*Transport, dht.Peer) {
	b.Helper()
	srv := newTransport(b, keyA, newFakeHandler(peerA), nil)
	cli := newTransport(b, keyA, nil, nil)
	to := dht.Peer{ID: peerA.ID, Addr: srv.Addr()}
	if err := cli.Ping(context.Background(), to); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	return cli, to
}

func runBench(b *testing.B, call func(*Transport, dht.Peer) error) {
	cli, to := benchPair(b)
	for b.Loop() {
		if err := call(cli, to); err != nil {
			b.Fatal(err)
		}
	}
}

func runBenchParallel(b *testing.B, call func(*Transport, dht.Peer) error) {
	cli, to := benchPair(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(cli, to); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func ping(cli *Transport, to dht.Peer) error { return cli.Ping(context.Background(), to) }

func findNext(cli *Transport, to dht.Peer) error {
	_, err := cli.FindNext(context.Background(), to, 0x8000000000000000, fixExclude)
	return err
}

func put(cli *Transport, to dht.Peer) error {
	_, err := cli.Put(context.Background(), to, fixPutReq)
	return err
}

func BenchmarkPing(b *testing.B)             { runBench(b, ping) }
func BenchmarkPingParallel(b *testing.B)     { runBenchParallel(b, ping) }
func BenchmarkFindNext(b *testing.B)         { runBench(b, findNext) }
func BenchmarkFindNextParallel(b *testing.B) { runBenchParallel(b, findNext) }
func BenchmarkPut(b *testing.B)              { runBench(b, put) }
func BenchmarkPutParallel(b *testing.B)      { runBenchParallel(b, put) }

func BenchmarkRawTCPEcho(b *testing.B) {
	resp := message{kind: kindResponse, id: 1, op: opFindNext, step: fixStep}
	size := len(appendMessage(nil, &resp))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, size)
		for {
			if _, err := io.ReadFull(c, buf); err != nil {
				return
			}
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.Close()
	<-done
}

// BenchmarkHandshake measures one authentication over an in-memory pipe:
// with equal primaries (one round), and mid-rotation, when the dialer
// asks for the listener's other proofs (two rounds, four keys tried).
func BenchmarkHandshake(b *testing.B) {
	for _, bc := range []struct {
		name     string
		cli, srv [][]byte
	}{
		{"same-primary", [][]byte{key1}, [][]byte{key1}},
		{"rotating", [][]byte{key2, key1}, [][]byte{key1, key2}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cr, sr := ringOf(b, bc.cli...), ringOf(b, bc.srv...)
			for b.Loop() {
				cc, sc := net.Pipe()
				done := make(chan error, 1)
				go func() {
					var prefix [1]byte
					_, err := io.ReadFull(sc, prefix[:])
					if err == nil {
						_, err = serverHandshake(sc, sr, rand.Reader)
					}
					done <- err
				}()
				_, err := clientHandshake(cc, cr, rand.Reader, prefixDHT)
				if serr := <-done; err != nil || serr != nil {
					b.Fatal(err, serr)
				}
				_ = cc.Close()
				_ = sc.Close()
			}
		})
	}
}
