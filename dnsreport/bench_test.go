package dnsreport_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/miekg/dns"

	"github.com/dsn-ims/dsn/dnsreport"
)

// benchUpdate measures one signed UPDATE round trip (publish, then delete,
// alternating) against a server on loopback.
func benchUpdate(b *testing.B, srv serverUnderTest) {
	key := srv.Key()
	c := newClient(b, srv.Addr(), &key)
	r := rep("bench", 5060, "127.0.0.77")
	pub, _ := r.PublishChange()
	del, _ := r.DeleteChange()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		ch := pub
		if i%2 == 1 {
			ch = del
		}
		if err := c.Update(ctx, ch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdateBIND(b *testing.B)     { benchUpdate(b, startBIND(b)) }
func BenchmarkUpdateEmbedded(b *testing.B) { benchUpdate(b, startEmbedded(b)) }

func BenchmarkOrderSRV(b *testing.B) {
	var srvs []*dns.SRV
	for i := range 10 {
		srvs = append(srvs, &dns.SRV{Priority: uint16(i % 3), Weight: uint16(i * 10), Target: "t."})
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for b.Loop() {
		dnsreport.OrderSRV(srvs, rng)
	}
}

func BenchmarkChangeMsgAndPack(b *testing.B) {
	ch, _ := rep("n1", 5060, "127.0.0.21", "fd00::21").PublishChange()
	for b.Loop() {
		if _, err := ch.Msg().Pack(); err != nil {
			b.Fatal(err)
		}
	}
}
