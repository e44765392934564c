package overload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
)

// drain reads every lane on a goroutine of its own, as sipgo's readers
// do, until its read fails, and returns what each lane got and the errors.
func drain(lanes []net.PacketConn, bufSize int) ([][][]byte, []error) {
	got := make([][][]byte, len(lanes))
	errs := make([]error, len(lanes))
	var wg sync.WaitGroup
	for i, l := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, bufSize)
			for {
				n, _, err := l.ReadFrom(buf)
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], bytes.Clone(buf[:n]))
			}
		}()
	}
	wg.Wait()
	return got, errs
}

// Each call's messages reach one lane, in the order they came; the gate
// still answers for what it rejects; when the socket fails every lane
// fails with its error.
func TestLanesKeepACallInOrderInOneLane(t *testing.T) {
	g, fl, _, m := testGate(t, func(c *Config) { c.UDPReaders = 3 })
	mem := &memPacketConn{}
	var want [][]byte
	for seq := 1; seq <= 40; seq++ {
		for c := range 8 {
			b := msg("", "MESSAGE sip:bob@dsn.test SIP/2.0",
				fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.9:5070;branch=z9hG4bK%d-%d", c, seq),
				"From: <sip:alice@dsn.test>;tag=a1", "To: <sip:bob@dsn.test>;tag=b1",
				fmt.Sprintf("Call-ID: lane-call-%d", c), fmt.Sprintf("CSeq: %d MESSAGE", seq))
			mem.in = append(mem.in, datagram{b, phone})
			want = append(want, b)
		}
	}
	mem.in = append(mem.in, datagram{[]byte("\r\n\r\n"), phone})
	fl.l = Load{InFlight: 10} // new out-of-dialog requests are shed
	mem.in = append(mem.in, datagram{invite("z9hG4bKshed"), phone})
	got, errs := drain(g.PacketConns(mem, nil), 32768)

	seen := map[string][]int{} // Call-ID -> lanes it was seen in
	var all int
	for i, lane := range got {
		last := map[string]int{}
		for _, b := range lane {
			all++
			h, err := ParseHead(b)
			if err != nil {
				if string(b) != "\r\n\r\n" || i != 0 {
					t.Fatalf("lane %d got %q", i, b)
				}
				continue
			}
			id := string(h.CallID)
			var seq int
			fmt.Sscanf(string(h.CSeq), "%d", &seq)
			if seq <= last[id] {
				t.Fatalf("lane %d: %s CSeq %d after %d", i, id, seq, last[id])
			}
			last[id] = seq
			if l := seen[id]; len(l) == 0 || l[len(l)-1] != i {
				seen[id] = append(seen[id], i)
			}
		}
	}
	if all != len(want)+1 {
		t.Fatalf("%d datagrams through the lanes, want %d", all, len(want)+1)
	}
	for id, ls := range seen {
		if len(ls) != 1 {
			t.Fatalf("%s went to lanes %v", id, ls)
		}
	}
	for i, err := range errs {
		if !errors.Is(err, io.EOF) {
			t.Fatalf("lane %d ended with %v, want the socket's EOF", i, err)
		}
	}
	if len(mem.out) != 1 || m.rej("INVITE/inflight") != 1 {
		t.Fatalf("the gate sent %d responses, rejected %d", len(mem.out), m.rej("INVITE/inflight"))
	}
}

// A datagram bigger than the stack's buffer is dropped and counted; a
// lane closed while the reader waits for a full lane lets it finish.
func TestLanesOversizedAndClose(t *testing.T) {
	g, _, _, m := testGate(t, func(c *Config) { c.UDPReaders = 2 })
	mem := &memPacketConn{}
	for range 2*laneQueue + 10 {
		mem.in = append(mem.in, datagram{inDialog("BYE", "z9hG4bKsame"), phone})
	}
	lanes := g.PacketConns(mem, nil)
	if err := lanes[1].Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := drain(lanes, 100) // every message is longer than 100 bytes
	if len(got[0])+len(got[1]) != 0 || m.drop("udp/oversized") == 0 {
		t.Fatalf("delivered %d, dropped %d", len(got[0])+len(got[1]), m.drop("udp/oversized"))
	}
}

func TestOneLaneIsThePacketConn(t *testing.T) {
	g, _, _, _ := testGate(t, func(c *Config) { c.UDPReaders = 1 })
	ls := g.PacketConns(&memPacketConn{}, nil)
	if _, ok := ls[0].(*packetConn); len(ls) != 1 || !ok {
		t.Fatalf("%T", ls[0])
	}
}
