package node

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/dsn-ims/dsn/sip/overload"
	"github.com/dsn-ims/dsn/sip/registrar"
)

// udpRegistrar answers REGISTER over UDP statelessly, below sipgo
// (overload.Stateless): each request is queued for a pool of worker
// goroutines, parsed and handed to the registrar, and the response goes
// straight to the socket. No server transaction is opened, so a REGISTER
// costs no place in the overload gate's transaction window and nothing
// after its answer; a retransmission is handled again, and the registrar
// answers it with the bindings held (same Call-ID and CSeq: see
// registrar's contract). REGISTER over TCP still goes through sipgo.
type udpRegistrar struct {
	reg      *registrar.Registrar
	parser   *sip.Parser
	timeout  time.Duration
	inflight *atomic.Int64 // the overload guard's count of REGISTERs being handled
	served   func()        // counts a REGISTER handled
	slog     *slog.Logger  // sipgo's logger (SIPLog): counts what cannot be parsed
	ctx      context.Context
	jobs     chan regJob
	bufs     sync.Pool
}

type regJob struct {
	data  []byte
	from  netip.AddrPort
	reply func([]byte)
}

// registerWorkers is the size of the pool. A REGISTER blocks its worker
// on the ring (the home node and its replicas may be remote: ~200 µs a
// write), so the pool is larger than the CPUs; workers that live on keep
// their grown stacks (a goroutine per REGISTER spent 7% of the CPU
// growing new ones). Beyond what they take the queue (Serve's bound)
// waits.
const registerWorkers = 64

var _ overload.Stateless = (*udpRegistrar)(nil)

// startUDPRegistrar starts the worker pool, which stops with ctx; wg
// tracks the workers. At most queue REGISTERs wait or are handled at
// once (Serve refuses more).
func startUDPRegistrar(ctx context.Context, wg *sync.WaitGroup, u *udpRegistrar, queue int) *udpRegistrar {
	u.ctx, u.jobs = ctx, make(chan regJob, queue)
	wg.Add(registerWorkers)
	for range registerWorkers {
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-u.jobs:
					u.handle(j.data, j.from, j.reply)
					u.inflight.Add(-1)
				}
			}
		}()
	}
	return u
}

func (u *udpRegistrar) Takes(method string) bool { return method == "REGISTER" }

// Serve copies msg and queues it; false when the queue is full.
func (u *udpRegistrar) Serve(msg []byte, from netip.AddrPort, reply func([]byte)) bool {
	if u.ctx.Err() != nil {
		return false
	}
	u.inflight.Add(1)
	select {
	case u.jobs <- regJob{data: bytes.Clone(msg), from: from, reply: reply}:
		return true
	default:
		u.inflight.Add(-1)
		return false
	}
}

func (u *udpRegistrar) handle(data []byte, from netip.AddrPort, reply func([]byte)) {
	m, err := u.parser.ParseSIP(data)
	if err != nil {
		// As sipgo does with what it cannot parse: drop it, counted and
		// rate-limited by SIPLog.
		u.slog.Error(sipgoParseFailed, "data", string(data), "error", err, "src", from.String())
		return
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return // the gate's head parser saw a request; sipgo's cannot disagree
	}
	req.SetTransport("UDP")
	req.SetSource(from.String())
	u.served()
	ctx, cancel := context.WithTimeout(u.ctx, u.timeout)
	res := u.reg.Handle(ctx, req, registrar.Source{Transport: "UDP", Addr: from})
	cancel()
	bp, _ := u.bufs.Get().(*bytes.Buffer)
	if bp == nil {
		bp = new(bytes.Buffer)
	}
	bp.Reset()
	res.StringWrite(bp)
	reply(bp.Bytes())
	u.bufs.Put(bp)
}
