package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// portAttempts bounds the search for a port free for both UDP and TCP.
const portAttempts = 20

// Server serves a Handler over UDP and TCP on one address.
type Server struct {
	h    *Handler
	addr string
	udp  *dns.Server
	tcp  *dns.Server
	log  *zap.Logger

	wg        sync.WaitGroup // the two serving goroutines
	closeOnce sync.Once
}

// Start loads cfg (see New), listens on cfg.Addr over UDP and TCP and
// returns once both listeners are serving. With port 0 one free port is
// chosen for both. logger may be nil.
func Start(cfg Config, logger *zap.Logger) (*Server, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	h, err := New(cfg, logger, nil)
	if err != nil {
		return nil, err
	}
	pc, l, err := listen(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dnsserver: listen %s: %w", cfg.Addr, err)
	}
	s := &Server{h: h, addr: l.Addr().String(), log: logger}
	s.udp = s.newDNSServer(false)
	s.udp.PacketConn = pc
	s.tcp = s.newDNSServer(true)
	s.tcp.Listener = l

	started := make(chan struct{}, 2)
	failed := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		srv.NotifyStartedFunc = func() { started <- struct{}{} }
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				logger.Error("dnsserver: listener stopped", zap.Error(err))
				failed <- err
			}
		}()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-failed:
			pc.Close()
			l.Close()
			_ = s.Close()
			return nil, fmt.Errorf("dnsserver: serve %s: %w", s.addr, err)
		}
	}
	logger.Info("dnsserver: serving", zap.String("addr", s.addr), zap.Strings("zones", h.store.Origins()))
	return s, nil
}

func (s *Server) newDNSServer(tcp bool) *dns.Server {
	return &dns.Server{
		Handler:      dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) { s.serve(w, m, tcp) }),
		TsigProvider: s.h.keys,
		// miekg's default refuses UPDATE; we accept every request and let
		// the handler judge it.
		MsgAcceptFunc: acceptRequests,
		// The default read buffer is 512 bytes, too small for signed UPDATEs.
		UDPSize: dns.MaxMsgSize,
	}
}

// acceptRequests accepts every request and ignores responses.
func acceptRequests(dh dns.Header) dns.MsgAcceptAction {
	const qr = 1 << 15
	if dh.Bits&qr != 0 {
		return dns.MsgIgnore
	}
	return dns.MsgAccept
}

// serve is the driver: the handler decides, this writes. miekg verifies the
// request TSIG before calling it and only records the outcome in
// TsigStatus, which the handler must see.
func (s *Server) serve(w dns.ResponseWriter, m *dns.Msg, tcp bool) {
	replies := s.h.Handle(Request{Msg: m, TSIGStatus: w.TsigStatus(), TCP: tcp, Remote: w.RemoteAddr()})
	for i, r := range replies {
		if err := w.WriteMsg(r); err != nil {
			s.log.Warn("dnsserver: write reply", zap.Error(err), zap.Stringer("remote", w.RemoteAddr()))
			return
		}
		if i == 0 {
			w.TsigTimersOnly(true) // later AXFR envelopes: RFC 8945 section 5.3.1
		}
	}
}

// Addr returns the "host:port" served, for UDP and TCP alike.
func (s *Server) Addr() string { return s.addr }

// Handler returns the core, e.g. to inspect its Store.
func (s *Server) Handler() *Handler { return s.h }

// Stats returns a snapshot of the request counters.
func (s *Server) Stats() Stats { return s.h.Stats() }

// Close stops both listeners and waits for in-flight requests. Later calls
// return ErrClosed.
func (s *Server) Close() error {
	err := ErrClosed
	s.closeOnce.Do(func() {
		err = errors.Join(shutdown(s.udp), shutdown(s.tcp))
		s.wg.Wait()
	})
	return err
}

func shutdown(srv *dns.Server) error {
	if err := srv.Shutdown(); err != nil && err.Error() != "dns: server not started" {
		return fmt.Errorf("dnsserver: shutdown: %w", err)
	}
	return nil
}

// listen opens UDP and TCP on addr; with port 0 it finds a port free for
// both.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	if port != "0" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, err
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			pc.Close()
			return nil, nil, err
		}
		return pc, l, nil
	}
	var lastErr error
	for range portAttempts {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, err
		}
		p := pc.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		lastErr = err
	}
	return nil, nil, fmt.Errorf("no port free for both UDP and TCP after %d attempts: %w", portAttempts, lastErr)
}
