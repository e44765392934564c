package registrar

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"
)

// BenchmarkHandleRegister: refresh REGISTERs (new CSeq each time) for
// 1000 AORs against a MemStore, as Handle sees them after parsing.
func BenchmarkHandleRegister(b *testing.B) {
	const users = 1000
	clock := newFakeClock()
	reg, err := New(testConfig(), NewMemStore(clock.Now), clock.Now, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*sip.Request, users)
	for i := range reqs {
		reqs[i] = msg{
			to:       fmt.Sprintf("<sip:user%d@dsn.test>", i),
			callID:   fmt.Sprintf("call-%d", i),
			contacts: []string{fmt.Sprintf("<sip:user%d@192.168.%d.%d:5060;transport=udp>;expires=3600", i, i/250, i%250)},
		}.request(b)
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := reqs[i%users]
		req.CSeq().SeqNo++
		if res := reg.Handle(ctx, req, phoneSrc); res.StatusCode != 200 {
			b.Fatalf("got %d %s", res.StatusCode, res.Reason)
		}
		i++
	}
}

// BenchmarkMarshalBindings encodes a typical one-binding set and reports
// its size per binding.
func BenchmarkMarshalBindings(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("bindings=%d", n), func(b *testing.B) {
			set := BindingSet{RetainUntil: t0.Add(25 * time.Hour)}
			for i := 0; i < n; i++ {
				set.Bindings = append(set.Bindings, typicalBinding())
			}
			var size int
			b.ReportAllocs()
			for b.Loop() {
				data, err := MarshalBindings(set)
				if err != nil {
					b.Fatal(err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size)/float64(n), "bytes/binding")
		})
	}
}

func BenchmarkUnmarshalBindings(b *testing.B) {
	data, err := MarshalBindings(BindingSet{Bindings: []Binding{typicalBinding()}, RetainUntil: t0.Add(25 * time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := UnmarshalBindings(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMemStoreFootprint registers 100,000 AORs with one typical
// binding each through Handle and reports the live heap per contact of
// the MemStore holding them (map, key and encoded value). The DHT keeps
// the same encoded value, times its replica count, plus its own record
// overhead.
func BenchmarkMemStoreFootprint(b *testing.B) {
	const contacts = 100_000
	for b.Loop() {
		clock := newFakeClock()
		store := NewMemStore(clock.Now)
		reg, err := New(testConfig(), store, clock.Now, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		before := liveHeap()
		req := msg{contacts: []string{"<sip:x@192.168.1.20:5060;transport=udp>"}, callID: "3c26700b-0e6a-4b0d-9c4a-5a3f2fb3e1a7"}.request(b)
		to := req.To()
		ctx := context.Background()
		for i := 0; i < contacts; i++ {
			to.Address.User = fmt.Sprintf("user%07d", i)
			if res := reg.Handle(ctx, req, phoneSrc); res.StatusCode != 200 {
				b.Fatalf("got %d", res.StatusCode)
			}
		}
		after := liveHeap()
		if store.Len() != contacts {
			b.Fatalf("%d records", store.Len())
		}
		b.ReportMetric(float64(after-before)/contacts, "heapB/contact")
		runtime.KeepAlive(store)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
