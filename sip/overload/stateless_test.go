package overload

import (
	"bytes"
	"net/netip"
	"testing"
)

// fakeStateless takes REGISTER; it keeps what it was given and answers
// (through the reply func) when told to.
type fakeStateless struct {
	full    bool // Serve refuses
	got     [][]byte
	from    []netip.AddrPort
	replies []func([]byte)
}

func (f *fakeStateless) Takes(m string) bool { return m == "REGISTER" }

func (f *fakeStateless) Serve(msg []byte, from netip.AddrPort, reply func([]byte)) bool {
	if f.full {
		return false
	}
	f.got = append(f.got, bytes.Clone(msg))
	f.from = append(f.from, from)
	f.replies = append(f.replies, reply)
	return true
}

func register(branch, via string) []byte {
	return msg("",
		"REGISTER sip:dsn.test SIP/2.0",
		"Via: SIP/2.0/UDP "+via+";branch="+branch,
		"From: <sip:alice@dsn.test>;tag=r1",
		"To: <sip:alice@dsn.test>",
		"Call-ID: reg-"+branch,
		"CSeq: 1 REGISTER",
		"Contact: <sip:alice@192.0.2.7:40000>")
}

func TestStatelessRequestsBypassTheStackAndTheWindow(t *testing.T) {
	g, _, _, m := testGate(t, nil)
	st := &fakeStateless{}
	mem := &memPacketConn{}
	pc := g.PacketConn(mem, st)
	reg := register("z9hG4bKr1", "192.0.2.7:40000;rport")
	regNoRport := register("z9hG4bKr2", "192.0.2.7:5099")
	inv := invite("z9hG4bKi")
	mem.in = []datagram{{reg, phone}, {inv, phone}, {regNoRport, phone}}
	got := readAll(t, pc, 32768)
	if len(got) != 1 || !bytes.Equal(got[0], inv) {
		t.Fatalf("stack saw %q, want only the INVITE", got)
	}
	if len(st.got) != 2 || !bytes.Equal(st.got[0], reg) || !bytes.Equal(st.got[1], regNoRport) {
		t.Fatalf("stateless got %q", st.got)
	}
	if st.from[0].String() != phone.String() {
		t.Fatalf("source %v", st.from[0])
	}
	if s := g.Stats(); s.Transactions != 1 || s.Admitted != 3 {
		t.Fatalf("window %d (want the INVITE only), admitted %d", s.Transactions, s.Admitted)
	}
	// Replies go where RFC 3261 18.2.2 / RFC 3581 say: the source with
	// rport, the source address and the sent-by port without.
	st.replies[0]([]byte("SIP/2.0 200 OK\r\n\r\n"))
	st.replies[1]([]byte("SIP/2.0 200 OK\r\n\r\n"))
	if len(mem.out) != 2 || mem.out[0].addr.String() != phone.String() || mem.out[1].addr.String() != "192.0.2.7:5099" {
		t.Fatalf("replies sent %v", mem.out)
	}
	if m.rej("REGISTER/inflight") != 0 {
		t.Fatal("rejected")
	}
}

func TestStatelessRefusalsAre503AndRemembered(t *testing.T) {
	g, fl, _, m := testGate(t, nil)
	st := &fakeStateless{full: true}
	mem := &memPacketConn{}
	pc := g.PacketConn(mem, st)
	reg := register("z9hG4bKfull", "192.0.2.7:40000;rport")
	mem.in = []datagram{{reg, phone}}
	readAll(t, pc, 32768)
	if len(mem.out) != 1 || parseResponse(t, mem.out[0].b).StatusCode != 503 || m.rej("REGISTER/inflight") != 1 {
		t.Fatalf("handler full: sent %d, rejections %d", len(mem.out), m.rej("REGISTER/inflight"))
	}
	// Its retransmission is refused again even though the handler has room.
	st.full = false
	mem.in = []datagram{{reg, phone}}
	readAll(t, pc, 32768)
	if len(st.got) != 0 || len(mem.out) != 2 || m.rej("REGISTER/repeat") != 1 {
		t.Fatalf("retransmission: served %d, sent %d, repeat %d", len(st.got), len(mem.out), m.rej("REGISTER/repeat"))
	}
	// At a load limit a new REGISTER is answered 503 before the handler.
	fl.l = Load{InFlight: 10}
	mem.in = []datagram{{register("z9hG4bKbusy", "192.0.2.7:40000;rport"), phone}}
	readAll(t, pc, 32768)
	if len(st.got) != 0 || len(mem.out) != 3 || m.rej("REGISTER/inflight") != 2 {
		t.Fatalf("overloaded: served %d, sent %d", len(st.got), len(mem.out))
	}
	// Under the limit again, a new one is served.
	fl.l = Load{}
	mem.in = []datagram{{register("z9hG4bKok", "192.0.2.7:40000;rport"), phone}}
	readAll(t, pc, 32768)
	if len(st.got) != 1 {
		t.Fatalf("served %d", len(st.got))
	}
}

func TestReplyAddr(t *testing.T) {
	src := netip.MustParseAddrPort("198.51.100.4:40001")
	for via, want := range map[string]string{
		"192.0.2.7:5099;rport":  "198.51.100.4:40001",
		"192.0.2.7:5099":        "198.51.100.4:5099",
		"192.0.2.7":             "198.51.100.4:5060",
		"[2001:db8::1]:5070":    "198.51.100.4:5070",
		"192.0.2.7;rport=40001": "198.51.100.4:40001",
	} {
		b := register("z9hG4bKa", via)
		h := head(t, b)
		if got := ReplyAddr(b, &h, src).String(); got != want {
			t.Errorf("Via %s: %s, want %s", via, got, want)
		}
	}
	b := register("z9hG4bKa", "192.0.2.7")
	h := head(t, b)
	if ReplyAddr(b, &h, netip.AddrPort{}).IsValid() {
		t.Error("an invalid source gives an address")
	}
}
