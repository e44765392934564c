package registrar

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/emiago/sipgo/siptest"
)

// TestServeSIPRecorder drives the adapter through sipgo's in-memory server
// transaction.
func TestServeSIPRecorder(t *testing.T) {
	e := newEnv(t, testConfig(), nil)
	req := msg{contacts: []string{contactA}}.request(t)
	req.SetTransport("UDP")
	req.SetSource("198.51.100.7:5099")
	tx := siptest.NewServerTxRecorder(req)
	e.reg.ServeSIP(req, tx)
	res := tx.Result()
	if len(res) != 1 || res[0].StatusCode != 200 {
		t.Fatalf("responses %v", res)
	}
	b := e.lookup(t, "sip:alice@dsn.test")[0]
	if want := (Source{Transport: "UDP", Addr: netip.MustParseAddrPort("198.51.100.7:5099")}); b.Received != want {
		t.Fatalf("Received = %v, want %v", b.Received, want)
	}
}

// TestSocketRegisterUDP: a real sipgo UA registers over UDP on loopback
// with a sipgo server running the adapter, then unregisters.
func TestSocketRegisterUDP(t *testing.T) {
	e := newEnv(t, testConfig(), nil)

	srvUA, err := sipgo.NewUA(sipgo.WithUserAgent("dsn-registrar-test"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(srvUA)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(e.reg.ServeSIP)
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0") // bound: ready before serving
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeUDP(conn) }()
	t.Cleanup(func() {
		_ = srvUA.Close()
		_ = conn.Close()
		if err := <-served; err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("ServeUDP: %v", err)
		}
	})
	srvAddr := conn.LocalAddr().String()

	cliUA, err := sipgo.NewUA(sipgo.WithUserAgent("alice"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cliUA.Close() })
	client, err := sipgo.NewClient(cliUA, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}

	send := func(contact string, expires string) *sip.Response {
		t.Helper()
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "dsn.test"})
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "dsn.test"}})
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "dsn.test"}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		req.AppendHeader(from)
		req.AppendHeader(sip.NewHeader("Contact", contact))
		req.AppendHeader(sip.NewHeader("Expires", expires))
		req.SetTransport("UDP")
		req.SetDestination(srvAddr)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := client.Do(ctx, req, sipgo.ClientRequestRegisterBuild)
		if err != nil {
			t.Fatalf("REGISTER over UDP: %v", err)
		}
		return res
	}

	res := send("<sip:alice@192.168.1.20:5060>", "600")
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	if got := contactsOf(res); got["sip:alice@192.168.1.20:5060"].GetOr("expires", "") != "600" {
		t.Fatalf("contacts in 200: %v", got)
	}
	if res.GetHeader("Date") == nil {
		t.Fatal("no Date header")
	}
	b := e.lookup(t, "sip:alice@dsn.test")[0]
	if b.Received.Transport != "UDP" || b.Received.Addr.Addr() != netip.MustParseAddr("127.0.0.1") || b.Received.Addr.Port() == 0 {
		t.Fatalf("Received = %v, want the client's UDP socket", b.Received)
	}
	if _, nat := b.NATTarget(); !nat {
		t.Fatal("private Contact behind 127.0.0.1 not reported as NAT")
	}

	res = send("*", "0")
	if res.StatusCode != 200 || len(contactsOf(res)) != 0 {
		t.Fatalf("unregister: %d, contacts %v", res.StatusCode, contactsOf(res))
	}
	if _, err := e.reg.Lookup(context.Background(), "sip:alice@dsn.test"); !errors.Is(err, ErrNoBindings) {
		t.Fatalf("after unregister: %v", err)
	}
}
