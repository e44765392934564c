package node

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// sipgo's log message for input it could not parse and drops (its UDP,
// TCP and WS transports).
const sipgoParseFailed = "failed to parse"

// SIPLog is the slog.Handler sipgo logs through. sipgo logs every message
// it cannot parse at ERROR with the whole message: a peer could flood the
// log with it, and write into it what it likes. SIPLog counts those
// (dsn_sip_unparsable_dropped_total) and logs them at debug without the
// message, and at warn at most once per interval with how many were
// dropped since. Every other record goes to the node's logger without
// message bytes (the "data" attribute) and with long values cut; sipgo's
// debug records are dropped, its info records logged at debug, and its
// warnings and errors rate-limited per message text, as a peer can cause
// them too. Safe for concurrent use.
//
// cmd/ installs it as sipgo's default logger too (sip.SetDefaultLogger),
// which parts of sipgo created outside the user agent options (the TCP
// transport with the dial guard) log through.
type SIPLog struct {
	core  *sipLogCore
	attrs []zap.Field
	group string
}

type sipLogCore struct {
	log      *zap.Logger
	now      func() time.Time
	interval time.Duration
	dropped  atomic.Uint64
	counter  prometheus.CounterFunc

	mu      sync.Mutex
	windows map[string]*logWindow // by message text
}

type logWindow struct {
	last       time.Time
	suppressed int
}

// maxLogValue bounds a string attribute sipgo logs (an error text may
// quote message bytes).
const maxLogValue = 200

// NewSIPLog returns a handler that logs to log (named "sipgo"), warning
// at most once per interval per kind of message. A nil now means
// time.Now.
func NewSIPLog(log *zap.Logger, interval time.Duration, now func() time.Time) *SIPLog {
	if log == nil {
		log = zap.NewNop()
	}
	if now == nil {
		now = time.Now
	}
	c := &sipLogCore{log: log.Named("sipgo"), now: now, interval: interval, windows: map[string]*logWindow{}}
	c.counter = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "dsn_sip_unparsable_dropped_total",
		Help: "SIP input dropped because it could not be parsed (a UDP datagram; over TCP the stream, whose connection is then closed).",
	}, func() float64 { return float64(c.dropped.Load()) })
	return &SIPLog{core: c}
}

// Collector is the counter of dropped unparsable messages.
func (h *SIPLog) Collector() prometheus.Collector { return h.core.counter }

// Dropped is the number of unparsable messages dropped so far.
func (h *SIPLog) Dropped() uint64 { return h.core.dropped.Load() }

// Enabled implements slog.Handler: sipgo's debug records are not wanted.
func (h *SIPLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

// WithAttrs implements slog.Handler.
func (h *SIPLog) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]zap.Field(nil), h.attrs...), fields(h.group, as)...)
	return &c
}

// WithGroup implements slog.Handler.
func (h *SIPLog) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// Handle implements slog.Handler.
func (h *SIPLog) Handle(_ context.Context, r slog.Record) error {
	var as []slog.Attr
	size := -1
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "data" {
			size = len(a.Value.String())
			return true
		}
		as = append(as, a)
		return true
	})
	fs := append(append([]zap.Field(nil), h.attrs...), fields(h.group, as)...)
	if size >= 0 {
		fs = append(fs, zap.Int("bytes", size))
	}
	c := h.core
	if r.Message == sipgoParseFailed {
		c.dropped.Add(1)
		c.log.Debug("unparsable SIP input dropped", fs...)
		if n, ok := c.allow(r.Message); ok {
			c.log.Warn("unparsable SIP input dropped (counted in dsn_sip_unparsable_dropped_total; each one at debug level)",
				append(fs, zap.Int("suppressed_since_last", n))...)
		}
		return nil
	}
	if r.Level < slog.LevelWarn {
		c.log.Debug(r.Message, fs...)
		return nil
	}
	n, ok := c.allow(r.Message)
	if !ok {
		return nil
	}
	if n > 0 {
		fs = append(fs, zap.Int("suppressed_since_last", n))
	}
	lvl := zapcore.WarnLevel
	if r.Level >= slog.LevelError {
		lvl = zapcore.ErrorLevel
	}
	c.log.Log(lvl, r.Message, fs...)
	return nil
}

// allow reports whether a record with this message may be logged now,
// and how many were suppressed since the last one. The messages are
// sipgo's constant texts, so the map stays small.
func (c *sipLogCore) allow(msg string) (suppressed int, ok bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.windows[msg]
	if w == nil {
		if len(c.windows) >= 256 {
			return 0, false
		}
		w = &logWindow{}
		c.windows[msg] = w
	} else if now.Sub(w.last) < c.interval {
		w.suppressed++
		return 0, false
	}
	n := w.suppressed
	w.last, w.suppressed = now, 0
	return n, true
}

// fields converts slog attributes, cutting long values.
func fields(group string, as []slog.Attr) []zap.Field {
	out := make([]zap.Field, 0, len(as))
	for _, a := range as {
		key := a.Key
		if group != "" {
			key = group + "." + key
		}
		v := a.Value.Resolve()
		switch v.Kind() {
		case slog.KindGroup:
			out = append(out, fields(key, v.Group())...)
		case slog.KindInt64:
			out = append(out, zap.Int64(key, v.Int64()))
		case slog.KindBool:
			out = append(out, zap.Bool(key, v.Bool()))
		case slog.KindDuration:
			out = append(out, zap.Duration(key, v.Duration()))
		default:
			s := v.String()
			if len(s) > maxLogValue {
				s = fmt.Sprintf("%s... (%d bytes)", s[:maxLogValue], len(s))
			}
			out = append(out, zap.String(key, s))
		}
	}
	return out
}
