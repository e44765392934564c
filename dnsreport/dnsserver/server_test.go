package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"
)

func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// client returns a miekg client for net; with key it signs and verifies.
func client(network string, key *Key) *dns.Client {
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	if key != nil {
		c.TsigSecret = map[string]string{dns.CanonicalName(key.Name): key.Secret}
	}
	return c
}

func signedUpdate(t testing.TB, key Key, zone string, rrs ...string) *dns.Msg {
	m := new(dns.Msg).SetUpdate(zone)
	m.Insert(mustRRs(t, rrs...))
	alg, _ := canonicalAlgorithm(key.Algorithm)
	m.SetTsig(dns.CanonicalName(key.Name), alg, 300, time.Now().Unix())
	return m
}

func TestServerUpdateThenQuery(t *testing.T) {
	s := startServer(t, testConfig())
	host, _, err := net.SplitHostPort(s.Addr())
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("Addr() = %q", s.Addr())
	}
	for i, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			name := fmt.Sprintf("rep%d.dsn.example.com.", i)
			m := signedUpdate(t, keySHA256, zoneName, name+" 30 IN A 192.0.2.77")
			r, _, err := client(network, &keySHA256).Exchange(m, s.Addr())
			if err != nil {
				t.Fatalf("signed update: %v", err)
			}
			if r.Rcode != dns.RcodeSuccess {
				t.Fatalf("signed update: %s", rcodeName(r.Rcode))
			}
			if r.IsTsig() == nil {
				t.Fatal("reply to a signed update is not signed")
			}

			q := query(name, dns.TypeA)
			r, _, err = client(network, nil).Exchange(q, s.Addr())
			if err != nil || r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
				t.Fatalf("query after update: %v %v", r, err)
			}
			if a := r.Answer[0].(*dns.A); a.A.String() != "192.0.2.77" {
				t.Errorf("answer %v", a)
			}

			// A signed query gets a reply that verifies on the client.
			q = query(name, dns.TypeA)
			q.SetTsig(keySHA256.Name, dns.HmacSHA256, 300, time.Now().Unix())
			r, _, err = client(network, &keySHA256).Exchange(q, s.Addr())
			if err != nil || r.IsTsig() == nil || len(r.Answer) != 1 {
				t.Errorf("signed query: err %v, tsig %v", err, r.IsTsig())
			}
		})
	}
	if st := s.Stats(); st.UpdatesOK != 2 || st.Queries != 4 {
		t.Errorf("stats %+v, want 2 updates and 4 queries", st)
	}
}

func TestServerRejectsUnsignedAndBadUpdates(t *testing.T) {
	s := startServer(t, testConfig())
	wrong := keySHA256
	wrong.Secret = secret("guessed")
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			m := new(dns.Msg).SetUpdate(zoneName)
			m.Insert(mustRRs(t, "evil.dsn.example.com. 30 IN A 203.0.113.1"))
			r, _, err := client(network, nil).Exchange(m, s.Addr())
			if err != nil || r.Rcode != dns.RcodeNotAuth || r.IsTsig() != nil {
				t.Errorf("unsigned update: rcode %v err %v", r, err)
			}

			m = signedUpdate(t, wrong, zoneName, "evil.dsn.example.com. 30 IN A 203.0.113.1")
			r, _, err = client(network, &wrong).Exchange(m, s.Addr())
			if r == nil || r.Rcode != dns.RcodeNotAuth || r.IsTsig() == nil || r.IsTsig().Error != dns.RcodeBadSig {
				t.Errorf("wrongly signed update: reply %v", r)
			}
			if err == nil {
				t.Error("the client accepted an unsigned BADSIG reply")
			}

			m = signedUpdate(t, keySHA256, "example.org.", "www.example.org. 30 IN A 203.0.113.1")
			r, _, err = client(network, &keySHA256).Exchange(m, s.Addr())
			if err != nil || r.Rcode != dns.RcodeRefused || r.IsTsig() == nil {
				t.Errorf("update of a zone not served: %v %v", r, err)
			}
		})
	}
	if got := s.Handler().Store().Lookup("evil.dsn.example.com.", dns.TypeA); len(got) != 0 {
		t.Errorf("rejected update applied: %v", got)
	}
	if st := s.Stats(); st.UpdatesNotAuth != 4 || st.UpdatesRefused != 2 || st.BadTSIG != 2 || st.UpdatesOK != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestServerLargeSignedUpdateOverUDP(t *testing.T) {
	s := startServer(t, testConfig())
	var rrs []string
	for i := range 30 {
		rrs = append(rrs, fmt.Sprintf("bulk.dsn.example.com. 30 IN TXT \"entry %02d padded to make the update larger than 512 bytes\"", i))
	}
	m := signedUpdate(t, keySHA256, zoneName, rrs...)
	if wire, _ := m.Pack(); len(wire) < 1500 {
		t.Fatalf("update only %d bytes", len(wire))
	}
	r, _, err := client("udp", &keySHA256).Exchange(m, s.Addr())
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("large update: %v %v", r, err)
	}
	if got := s.Handler().Store().Lookup("bulk.dsn.example.com.", dns.TypeTXT); len(got) != 30 {
		t.Errorf("%d TXT records stored, want 30", len(got))
	}
}

func TestServerAXFR(t *testing.T) {
	s := startServer(t, testConfig())

	tr := &dns.Transfer{TsigSecret: map[string]string{keySHA256.Name: keySHA256.Secret}}
	q := query(zoneName, dns.TypeAXFR)
	q.SetTsig(keySHA256.Name, dns.HmacSHA256, 300, time.Now().Unix())
	env, err := tr.In(q, s.Addr())
	if err != nil {
		t.Fatalf("Transfer.In: %v", err)
	}
	n := 0
	for e := range env {
		if e.Error != nil {
			t.Fatalf("envelope: %v", e.Error)
		}
		n += len(e.RR)
	}
	want, _ := s.Handler().Store().Records(zoneName)
	if n != len(want)+1 {
		t.Errorf("%d records transferred, want %d", n, len(want)+1)
	}

	// Unsigned: REFUSED.
	env, err = new(dns.Transfer).In(query(zoneName, dns.TypeAXFR), s.Addr())
	if err != nil {
		t.Fatalf("Transfer.In: %v", err)
	}
	e := <-env
	if e.Error == nil || len(e.RR) != 0 {
		t.Errorf("unsigned AXFR answered: %v", e)
	}
	for range env {
	}
	if st := s.Stats(); st.Transfers != 1 {
		t.Errorf("stats %+v, want one transfer", st)
	}
}

func TestServerConcurrentClients(t *testing.T) {
	s := startServer(t, testConfig())
	const workers, perWorker = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		updates := make([]*dns.Msg, perWorker) // built here: t.Fatal is for this goroutine only
		for i := range updates {
			updates[i] = signedUpdate(t, keySHA256, zoneName, fmt.Sprintf("w%d-%d.dsn.example.com. 30 IN A 192.0.2.1", w, i))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			upd, qry := client("tcp", &keySHA256), client("udp", nil)
			for i, m := range updates {
				name := fmt.Sprintf("w%d-%d.dsn.example.com.", w, i)
				if r, _, err := upd.Exchange(m, s.Addr()); err != nil || r.Rcode != dns.RcodeSuccess {
					errs <- fmt.Errorf("update %s: %v %v", name, r, err)
					continue
				}
				if r, _, err := qry.Exchange(query(name, dns.TypeA), s.Addr()); err != nil || len(r.Answer) != 1 {
					errs <- fmt.Errorf("query %s: %v %v", name, r, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	serial, _ := s.Handler().Store().Serial(zoneName)
	if serial != 10+workers*perWorker {
		t.Errorf("serial %d, want %d (one increment per update)", serial, 10+workers*perWorker)
	}
}

func TestServerStartAndClose(t *testing.T) {
	s := startServer(t, DefaultConfig())
	// The same port is taken for both protocols.
	if c, err := net.Dial("tcp", s.Addr()); err != nil {
		t.Errorf("TCP on %s: %v", s.Addr(), err)
	} else {
		c.Close()
	}
	r, _, err := client("udp", nil).Exchange(query("anything.example.", dns.TypeA), s.Addr())
	if err != nil || r.Rcode != dns.RcodeRefused {
		t.Errorf("empty server: %v %v", r, err)
	}

	// The port is busy now.
	cfg := DefaultConfig()
	cfg.Addr = s.Addr()
	if _, err := Start(cfg, nil); err == nil {
		t.Error("second server on a busy port started")
	}
	// Invalid configuration is reported before listening.
	cfg.Addr = "nonsense"
	if _, err := Start(cfg, nil); err == nil {
		t.Error("invalid config started")
	}

	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
	if _, _, err := (&dns.Client{Net: "tcp", Timeout: time.Second}).Exchange(query("x.", dns.TypeA), s.Addr()); err == nil {
		t.Error("closed server still answers over TCP")
	}
}
