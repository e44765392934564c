package overload

import (
	"hash/maphash"
	"net"
	"runtime"
	"sync"
)

// PacketConns wraps the UDP socket for Config.UDPReaders readers of the
// SIP stack (0: GOMAXPROCS; one: the PacketConn wrapper itself). sipgo parses every datagram on
// the goroutine that reads it, one per socket: under load that one
// goroutine, not the CPUs, set a node's rate (the socket's buffer
// overflowed with a core to spare). Here one goroutine reads the socket
// and applies the gate (as PacketConn does), then hands each admitted
// datagram to one of n lanes by the hash of its Call-ID; the stack reads
// each lane on a goroutine of its own (ServeUDP once per lane) and parses
// there. The messages of one dialog or transaction stay in one lane, in
// arrival order: a call's 180 is never parsed after its 200 (the order
// the proxy's response tap relies on), while different calls are parsed
// in parallel. Keep-alives go to the first lane.
//
// Every lane writes to the socket directly. Closing any lane closes the
// socket and stops the reader; then every lane's reads fail with the
// socket's error (net.ErrClosed). Close a lane, not pc: the reader may
// be waiting for a lane whose stack reader is gone.
func (g *Gate) PacketConns(pc net.PacketConn, st Stateless) []net.PacketConn {
	src := g.PacketConn(pc, st).(*packetConn)
	n := g.cfg.UDPReaders
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	if n < 2 {
		return []net.PacketConn{src}
	}
	f := &fanout{src: src, seed: maphash.MakeSeed(), done: make(chan struct{}), closing: make(chan struct{})}
	out := make([]net.PacketConn, n)
	for i := range out {
		l := &lane{PacketConn: src, f: f, q: make(chan queued, laneQueue)}
		f.lanes = append(f.lanes, l)
		out[i] = l
	}
	go f.run()
	return out
}

// laneQueue is how many datagrams a lane holds before the reader waits
// for it (the socket's buffer then takes the backlog).
const laneQueue = 1024

type fanout struct {
	src   *packetConn
	seed  maphash.Seed // keys the lane hash; a peer cannot aim at one lane
	lanes []*lane
	done  chan struct{} // closed when the reader stopped; err is then set
	err   error
	bufs  sync.Pool

	closing   chan struct{} // closed by the first Close of a lane
	closeOnce sync.Once
}

type queued struct {
	b    *[]byte
	addr net.Addr
}

type lane struct {
	net.PacketConn // the gate's wrapper: writes, addresses, deadlines
	f              *fanout
	q              chan queued
}

// run reads the socket until it fails, dealing datagrams to the lanes.
func (f *fanout) run() {
	buf := make([]byte, 1<<16)
	for {
		n, addr, callID, err := f.src.next(buf)
		if err != nil {
			f.err = err
			close(f.done)
			return
		}
		l := f.lanes[0]
		if callID != nil {
			l = f.lanes[maphash.Bytes(f.seed, callID)%uint64(len(f.lanes))]
		}
		bp, _ := f.bufs.Get().(*[]byte)
		if bp == nil {
			bp = new([]byte)
		}
		*bp = append((*bp)[:0], buf[:n]...)
		select {
		case l.q <- queued{b: bp, addr: addr}:
		case <-f.closing:
			// A lane's reader may be gone: do not wait for it. The
			// socket is closed, so the next read fails.
		}
	}
}

// Close closes the socket, which stops the reader, and lets it go on if
// it waits for a lane.
func (l *lane) Close() error {
	l.f.closeOnce.Do(func() { close(l.f.closing) })
	return l.PacketConn.Close()
}

// ReadFrom returns the lane's next datagram; once the reader has stopped
// and the lane is drained, its error.
func (l *lane) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		var d queued
		select {
		case d = <-l.q:
		default:
			select {
			case d = <-l.q:
			case <-l.f.done:
				return 0, nil, l.f.err
			}
		}
		if len(*d.b) >= len(b) {
			// Would fill the caller's buffer: as PacketConn would have.
			l.f.src.g.metrics.Dropped("udp", DropOversized)
			l.f.bufs.Put(d.b)
			continue
		}
		n := copy(b, *d.b)
		l.f.bufs.Put(d.b)
		return n, d.addr, nil
	}
}
