package dnsreport

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// scriptedExchanger answers per server from a map; records the order.
type scriptedExchanger struct {
	mu      sync.Mutex
	answers map[string]error // server -> error (nil: NOERROR)
	order   []string
}

func (s *scriptedExchanger) Exchange(_ context.Context, m *dns.Msg, server string) (*dns.Msg, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.order = append(s.order, server)
	if err := s.answers[server]; err != nil {
		return nil, err
	}
	r := new(dns.Msg)
	r.SetReply(m)
	return r, nil
}

func testKey(t *testing.T) *Key {
	t.Helper()
	k, err := NewKey("dsn-test-key", "hmac-sha256", secret32)
	if err != nil {
		t.Fatal(err)
	}
	return &k
}

func testChange(t *testing.T) Change {
	t.Helper()
	ch, err := testRep("n1", 5060, "127.0.0.21").PublishChange()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

func TestClientTriesServersInOrder(t *testing.T) {
	cfg := DefaultConfig().Client
	cfg.Servers = []string{"127.0.0.1", "127.0.0.2:5353", "::1"}
	c, err := NewClient(cfg, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1:53", "127.0.0.2:5353", "[::1]:53"}; !slices.Equal(c.Servers(), want) {
		t.Fatalf("servers %v, want %v", c.Servers(), want)
	}
	ex := &scriptedExchanger{answers: map[string]error{
		"127.0.0.1:53":   &UpdateError{Server: "127.0.0.1:53", Rcode: NoReply, Err: context.DeadlineExceeded},
		"127.0.0.2:5353": &UpdateError{Server: "127.0.0.2:5353", Rcode: dns.RcodeNotAuth, TSIGError: dns.RcodeBadKey},
	}}
	c.ex = ex
	if err := c.Update(context.Background(), testChange(t)); err != nil {
		t.Fatalf("third server accepts, got %v", err)
	}
	if !slices.Equal(ex.order, c.Servers()) {
		t.Errorf("order %v", ex.order)
	}

	ex.answers["[::1]:53"] = &UpdateError{Server: "[::1]:53", Rcode: dns.RcodeRefused}
	err = c.Update(context.Background(), testChange(t))
	if !errors.Is(err, ErrNotAuth) || !errors.Is(err, ErrRefused) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("joined error %v does not match every server's kind", err)
	}
	ues := UpdateErrors(err)
	if len(ues) != 3 || ues[1].Zone != "dsn.test." || !strings.Contains(ues[1].Hint(), "key name") {
		t.Errorf("per-server errors %v", ues)
	}
}

func TestNewClientRefusesUnsignedByDefault(t *testing.T) {
	cfg := DefaultConfig().Client
	cfg.Servers = []string{"127.0.0.1"}
	if _, err := NewClient(cfg, nil); err == nil || !strings.Contains(err.Error(), "unsigned") {
		t.Errorf("NewClient without key: %v", err)
	}
	cfg.Insecure = true
	if _, err := NewClient(cfg, nil); err != nil {
		t.Errorf("explicitly insecure: %v", err)
	}
	cfg.Servers = nil
	if _, err := NewClient(cfg, testKey(t)); err == nil {
		t.Error("no servers accepted")
	}
	bad := Key{Name: "k.", Algorithm: "hmac-md5.", Secret: secret32}
	cfg.Servers = []string{"127.0.0.1"}
	if _, err := NewClient(cfg, &bad); err == nil {
		t.Error("md5 key accepted")
	}
}

func TestClientRejectsInvalidChangeBeforeSending(t *testing.T) {
	cfg := DefaultConfig().Client
	cfg.Servers = []string{"127.0.0.1"}
	c, err := NewClient(cfg, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	ex := &scriptedExchanger{}
	c.ex = ex
	if err := c.Update(context.Background(), Change{Zone: "dsn.test."}); err == nil {
		t.Error("empty change accepted")
	}
	if len(ex.order) != 0 {
		t.Error("invalid change was sent")
	}
}

// stubServer is a miekg server on loopback answering with handle.
func stubServer(t *testing.T, secret map[string]string, handle dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handle, TsigSecret: secret}, {Listener: l, Handler: handle, TsigSecret: secret}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		srv.MsgAcceptFunc = func(dns.Header) dns.MsgAcceptAction { return dns.MsgAccept } // UPDATE too
		go func() { _ = srv.ActivateAndServe() }()
		<-started
		t.Cleanup(func() { _ = srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

func TestNetExchangerRejectsUnsignedSuccess(t *testing.T) {
	addr := stubServer(t, nil, func(w dns.ResponseWriter, m *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(m) // NOERROR, no TSIG: a forged or misconfigured answer
		_ = w.WriteMsg(r)
	})
	cfg := DefaultConfig().Client
	cfg.Servers, cfg.Timeout = []string{addr}, 2*time.Second
	c, err := NewClient(cfg, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Update(context.Background(), testChange(t))
	if !errors.Is(err, ErrUnsignedReply) {
		t.Fatalf("unsigned NOERROR reply: err = %v, want ErrUnsignedReply", err)
	}
	if Outcome(err) != "unsigned_reply" || !strings.Contains(UpdateErrors(err)[0].Hint(), "without TSIG") {
		t.Errorf("outcome %s hint %q", Outcome(err), UpdateErrors(err)[0].Hint())
	}
}

func TestNetExchangerRejectsBadReplySignature(t *testing.T) {
	key := testKey(t)
	other := map[string]string{key.Name: "c2VjcmV0LW9mLWFub3RoZXIta2V5LTMyLWJ5dGVzLi4="}
	addr := stubServer(t, other, func(w dns.ResponseWriter, m *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(m)
		r.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix()) // signed with the wrong secret
		_ = w.WriteMsg(r)
	})
	ex := NewNetExchanger(2*time.Second, key)
	_, err := ex.Exchange(context.Background(), testChange(t).Msg(), addr)
	if !errors.Is(err, ErrBadReplySignature) {
		t.Fatalf("err = %v, want ErrBadReplySignature", err)
	}
}

func TestNetExchangerAcceptsSignedReplyAndFallsBackToTCP(t *testing.T) {
	key := testKey(t)
	var mu sync.Mutex
	var nets []string
	addr := stubServer(t, map[string]string{key.Name: key.Secret}, func(w dns.ResponseWriter, m *dns.Msg) {
		r := new(dns.Msg)
		r.SetReply(m)
		_, tcp := w.RemoteAddr().(*net.TCPAddr)
		mu.Lock()
		nets = append(nets, w.RemoteAddr().Network())
		mu.Unlock()
		if !tcp {
			r.Truncated = true
		} else {
			rr, _ := dns.NewRR("_sip._udp.dsn.test. 30 IN SRV 10 10 5060 n1.dsn.test.")
			r.Answer = append(r.Answer, rr)
		}
		if w.TsigStatus() == nil && m.IsTsig() != nil {
			r.SetTsig(key.Name, key.Algorithm, 300, time.Now().Unix())
		}
		_ = w.WriteMsg(r)
	})
	srvs, err := ReadSRV(context.Background(), NewNetExchanger(2*time.Second, key), addr, "_sip._udp.dsn.test.")
	if err != nil {
		t.Fatal(err)
	}
	if len(srvs) != 1 || srvs[0].Port != 5060 {
		t.Errorf("SRV %v", srvs)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(nets, []string{"udp", "tcp"}) {
		t.Errorf("transports used %v, want udp then tcp", nets)
	}
}

func TestNetExchangerTimeout(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // never answers
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ex := NewNetExchanger(50*time.Millisecond, testKey(t))
	_, err = ex.Exchange(context.Background(), testChange(t).Msg(), pc.LocalAddr().String())
	if !errors.Is(err, ErrTimeout) || Outcome(err) != "timeout" {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

func TestUpdateErrorText(t *testing.T) {
	e := &UpdateError{Server: "127.0.0.1:53", Zone: "dsn.test.", Rcode: dns.RcodeNotAuth, TSIGError: dns.RcodeBadSig}
	if got := e.Error(); got != "dnsreport: server 127.0.0.1:53 zone dsn.test.: NOTAUTH (TSIG BADSIG) (unsigned reply)" {
		t.Errorf("Error() = %q", got)
	}
	if !errors.Is(e, ErrNotAuth) || errors.Is(e, ErrRefused) {
		t.Error("Is mismatch")
	}
}
