package overload

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// sipgoServer is a sipgo server on loopback behind the gate: every
// request its handlers see is counted by method; they answer 200.
type sipgoServer struct {
	udp, tcp string
	load     atomic.Int64 // InFlight reported to the gate
	seen     map[sip.RequestMethod]*atomic.Int64
	metrics  *countMetrics
}

func startSipgo(t *testing.T) *sipgoServer {
	t.Helper()
	s := &sipgoServer{seen: map[sip.RequestMethod]*atomic.Int64{}, metrics: newCountMetrics()}
	cfg := DefaultConfig()
	cfg.MaxInflight = 10
	g, err := New(cfg, Deps{Load: func() Load { return Load{InFlight: int(s.load.Load())} }, Metrics: s.metrics})
	if err != nil {
		t.Fatal(err)
	}
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.OPTIONS} {
		n := &atomic.Int64{}
		s.seen[m] = n
		srv.OnRequest(m, func(req *sip.Request, tx sip.ServerTransaction) {
			n.Add(1)
			if req.Method != sip.ACK {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
			}
		})
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.udp, s.tcp = udp.LocalAddr().String(), tcp.Addr().String()
	go srv.ServeUDP(g.PacketConn(udp, nil))
	go srv.ServeTCP(g.Listener(tcp))
	t.Cleanup(func() { udp.Close(); tcp.Close(); ua.Close() })
	return s
}

func (s *sipgoServer) count(m sip.RequestMethod) int64 { return s.seen[m].Load() }

// request builds a request of method m with branch b; tag is the To tag
// ("" for none); transport UDP or TCP.
func request(m, b, tag, transport string) []byte {
	to := "<sip:bob@127.0.0.1>"
	if tag != "" {
		to += ";tag=" + tag
	}
	return msg("",
		m+" sip:bob@127.0.0.1 SIP/2.0",
		"Via: SIP/2.0/"+transport+" 127.0.0.1:5999;branch="+b+";rport",
		"Max-Forwards: 70",
		"From: <sip:alice@127.0.0.1>;tag=a1",
		"To: "+to,
		"Call-ID: "+b,
		"CSeq: 1 "+m)
}

// udpExchange sends b from c and returns the first response (nil after d).
func udpExchange(t *testing.T, c net.PacketConn, to string, b []byte, d time.Duration) *sip.Response {
	t.Helper()
	addr, _ := net.ResolveUDPAddr("udp", to)
	if _, err := c.WriteTo(b, addr); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return nil
		}
		if m, err := sip.ParseMessage(buf[:n]); err == nil {
			if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
				return res
			}
		}
	}
}

// TestWithSipgo runs the wrappers under a real sipgo server over loopback
// UDP and TCP: the stack sees admitted requests only; shed ones are
// answered 503 and their ACK absorbed; in-dialog requests pass while
// shedding; oversized input is dropped and the server answers afterwards.
func TestWithSipgo(t *testing.T) {
	s := startSipgo(t)
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("udp", func(t *testing.T) {
		if res := udpExchange(t, c, s.udp, request("INVITE", "z9hG4bKu1", "", "UDP"), 5*time.Second); res == nil || res.StatusCode != 200 {
			t.Fatalf("admitted INVITE: %v", res)
		}
		s.load.Store(10)
		defer s.load.Store(0)
		res := udpExchange(t, c, s.udp, request("INVITE", "z9hG4bKu2", "", "UDP"), 5*time.Second)
		if res == nil || res.StatusCode != 503 {
			t.Fatalf("shed INVITE: %v", res)
		}
		tag, _ := res.To().Params.Get("tag")
		addr, _ := net.ResolveUDPAddr("udp", s.udp)
		c.WriteTo(request("ACK", "z9hG4bKu2", tag, "UDP"), addr)
		if res := udpExchange(t, c, s.udp, request("BYE", "z9hG4bKu3", "b2", "UDP"), 5*time.Second); res == nil || res.StatusCode != 200 {
			t.Fatalf("in-dialog BYE while shedding: %v", res)
		}
		if s.count(sip.INVITE) != 1 || s.count(sip.BYE) != 1 || s.count(sip.ACK) != 0 {
			t.Fatalf("stack saw INVITE %d BYE %d ACK %d", s.count(sip.INVITE), s.count(sip.BYE), s.count(sip.ACK))
		}
		if s.metrics.rej("INVITE/inflight") != 1 {
			t.Fatal("shed INVITE not counted")
		}
	})

	t.Run("udp oversized", func(t *testing.T) {
		big := request("OPTIONS", "z9hG4bKbig", "", "UDP")
		big = append(big[:len(big)-4], []byte("\r\nX-Pad: "+strings.Repeat("p", 65000-len(big))+"\r\n\r\n")...)
		addr, _ := net.ResolveUDPAddr("udp", s.udp)
		if _, err := c.WriteTo(big, addr); err != nil {
			t.Fatal(err)
		}
		if res := udpExchange(t, c, s.udp, request("OPTIONS", "z9hG4bKafter", "", "UDP"), 5*time.Second); res == nil || res.StatusCode != 200 {
			t.Fatalf("OPTIONS after a 65 kB datagram: %v", res)
		}
		if s.metrics.drop("udp/oversized") != 1 || s.count(sip.OPTIONS) != 1 {
			t.Fatalf("oversized drops %d, OPTIONS seen %d", s.metrics.drop("udp/oversized"), s.count(sip.OPTIONS))
		}
	})

	t.Run("tcp", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(conn)
		s.load.Store(10)
		defer s.load.Store(0)
		before := s.count(sip.INVITE)
		conn.Write(request("INVITE", "z9hG4bKt1", "", "TCP"))
		res := parseResponse(t, readResponse(t, r))
		if res.StatusCode != 503 {
			t.Fatalf("shed INVITE over TCP: %d", res.StatusCode)
		}
		conn.Write(request("BYE", "z9hG4bKt2", "b2", "TCP"))
		if res := parseResponse(t, readResponse(t, r)); res.StatusCode != 200 {
			t.Fatalf("BYE over TCP: %d", res.StatusCode)
		}
		if s.count(sip.INVITE) != before {
			t.Fatal("shed INVITE reached the stack")
		}
	})

	t.Run("tcp huge Content-Length", func(t *testing.T) {
		conn, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		req := bytes.Replace(request("INVITE", "z9hG4bKhuge", "", "TCP"), []byte("Content-Length: 0"), []byte("Content-Length: 2000000000"), 1)
		conn.Write(req)
		r := bufio.NewReader(conn)
		if res := parseResponse(t, readResponse(t, r)); res.StatusCode != 513 {
			t.Fatalf("status %d", res.StatusCode)
		}
		if _, err := r.ReadByte(); err == nil {
			t.Fatal("connection still open")
		}
		again, err := net.Dial("tcp", s.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		again.SetDeadline(time.Now().Add(10 * time.Second))
		again.Write(request("OPTIONS", "z9hG4bKok", "", "TCP"))
		if res := parseResponse(t, readResponse(t, bufio.NewReader(again))); res.StatusCode != 200 {
			t.Fatalf("OPTIONS on a new connection: %d", res.StatusCode)
		}
	})
}
