package tcp

import (
	"errors"
	"fmt"

	"github.com/dsn-ims/dsn/dht"
)

// errCode is the outcome byte of a response. Values are part of the
// protocol: never renumber, only append.
type errCode byte

const (
	codeOK       errCode = iota
	codeError            // any other error; text carries its message
	codeNotOwner         // dht.ErrNotOwner
	codeConflict         // dht.ErrConflict
	codeNotFound         // dht.ErrNotFound
	codeStopped          // dht.ErrStopped
	codeEnd              // first unused value
)

// maxErrorText bounds the remote error message put on the wire.
const maxErrorText = 1024

// sentinel returns the dht sentinel a code stands for, or nil.
func (c errCode) sentinel() error {
	switch c {
	case codeNotOwner:
		return dht.ErrNotOwner
	case codeConflict:
		return dht.ErrConflict
	case codeNotFound:
		return dht.ErrNotFound
	case codeStopped:
		return dht.ErrStopped
	}
	return nil
}

// codeOf classifies a handler error for the wire.
func codeOf(err error) errCode {
	for c := codeNotOwner; c < codeEnd; c++ {
		if errors.Is(err, c.sentinel()) {
			return c
		}
	}
	return codeError
}

// errorText is the message sent for err, cut to maxErrorText bytes.
func errorText(err error) string {
	s := err.Error()
	if len(s) > maxErrorText {
		s = s[:maxErrorText]
	}
	return s
}

// RemoteError is an error the peer's handler returned. Unwrap yields the
// dht sentinel it stands for (dht.ErrNotOwner, dht.ErrConflict,
// dht.ErrNotFound, dht.ErrStopped), or nil for any other error, so
// errors.Is works across the wire.
type RemoteError struct {
	Op   string // RPC name, e.g. "put"
	Addr string // peer address
	Msg  string // the remote error's message, at most 1 KiB

	sentinel error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("dht/tcp: %s %s: remote: %s", e.Op, e.Addr, e.Msg)
}

// Unwrap returns the dht sentinel the remote error carried, or nil.
func (e *RemoteError) Unwrap() error { return e.sentinel }

func remoteError(o op, addr string, m *message) error {
	return &RemoteError{Op: o.String(), Addr: addr, Msg: m.text, sentinel: m.code.sentinel()}
}

// ErrMessageTooLarge: a request was larger than Config.MaxMessageSize and
// was not sent (split it, for example a Store batch). A response that was
// too large comes back as a *RemoteError saying so.
var ErrMessageTooLarge = errors.New("dht/tcp: message too large")

// Transport-internal causes, always wrapped before they reach a caller.
var (
	errClosed     = fmt.Errorf("dht/tcp: transport closed: %w", dht.ErrStopped)
	errConnLost   = errors.New("dht/tcp: connection lost")
	errIdleClosed = errors.New("dht/tcp: idle connection closed")
	errKeyRetired = errors.New("dht/tcp: connection closed after a cluster key change")
)
