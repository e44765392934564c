package dnsreport

import (
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Sentinel errors callers branch on with errors.Is. An *UpdateError matches
// the sentinel of its kind.
var (
	// ErrNotAuth: the server answered NOTAUTH: it does not accept the TSIG
	// key (unknown name, wrong secret, clock skew) or is not authoritative.
	ErrNotAuth = errors.New("dnsreport: NOTAUTH")
	// ErrRefused: the server answered REFUSED: the zone's update policy
	// does not allow this key (or unsigned updates) to make the change.
	ErrRefused = errors.New("dnsreport: REFUSED")
	// ErrServFail: the server answered SERVFAIL.
	ErrServFail = errors.New("dnsreport: SERVFAIL")
	// ErrTimeout: no answer in time, or the server could not be reached.
	ErrTimeout = errors.New("dnsreport: no answer from DNS server")
	// ErrRcode: the server answered with another error rcode.
	ErrRcode = errors.New("dnsreport: DNS error rcode")
	// ErrUnsignedReply: the server answered NOERROR without a TSIG record,
	// so the answer cannot be trusted.
	ErrUnsignedReply = errors.New("dnsreport: reply is not TSIG-signed")
	// ErrBadReplySignature: the reply's TSIG did not verify (wrong key,
	// tampering, clock skew) or carried a TSIG error.
	ErrBadReplySignature = errors.New("dnsreport: reply TSIG does not verify")
	// ErrBadReply: the reply could not be parsed or does not answer the
	// request.
	ErrBadReply = errors.New("dnsreport: malformed reply")
	// ErrNotFound: a look-up found no usable record (NXDOMAIN, no data, no
	// matching NAPTR).
	ErrNotFound = errors.New("dnsreport: not found")
	// ErrCanceled: a Flush waited for a change that was cancelled.
	ErrCanceled = errors.New("dnsreport: change cancelled")
	// ErrClosed: the Reporter was closed.
	ErrClosed = errors.New("dnsreport: reporter closed")
)

// NoReply is the Rcode of an UpdateError when no usable reply arrived.
const NoReply = -1

// UpdateError is the failure of one UPDATE (or query) sent to one server.
// Rcode is the reply's rcode, or NoReply when there was no reply (Err then
// says why). TSIGError is the error field of the reply's TSIG record
// (dns.RcodeBadSig, dns.RcodeBadKey, dns.RcodeBadTime), 0 if none.
type UpdateError struct {
	Server    string
	Zone      string
	Rcode     int
	TSIGError uint16
	// Signed tells whether the reply carried a TSIG that verified. An
	// unsigned error reply may be forged; it is reported, never trusted as
	// success.
	Signed bool
	Err    error
}

func (e *UpdateError) kind() error {
	switch {
	case e.Rcode == dns.RcodeNotAuth:
		return ErrNotAuth
	case e.Rcode == dns.RcodeRefused:
		return ErrRefused
	case e.Rcode == dns.RcodeServerFailure:
		return ErrServFail
	case e.Rcode == NoReply && (errors.Is(e.Err, ErrUnsignedReply) || errors.Is(e.Err, ErrBadReplySignature) || errors.Is(e.Err, ErrBadReply)):
		return nil // matched through Unwrap
	case e.Rcode == NoReply:
		return ErrTimeout
	case e.Rcode != dns.RcodeSuccess:
		return ErrRcode
	}
	return nil
}

// Is makes errors.Is(err, ErrNotAuth) and friends work.
func (e *UpdateError) Is(target error) bool {
	k := e.kind()
	return k != nil && k == target
}

func (e *UpdateError) Unwrap() error { return e.Err }

// RcodeString is the rcode's mnemonic ("NOTAUTH"), or "no-reply".
func (e *UpdateError) RcodeString() string {
	if e.Rcode == NoReply {
		return "no-reply"
	}
	if s, ok := dns.RcodeToString[e.Rcode]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", e.Rcode)
}

// Hint says what an operator should check to fix the failure.
func (e *UpdateError) Hint() string {
	switch {
	case e.TSIGError == dns.RcodeBadKey:
		return "the server does not know this TSIG key name: check the key name and that the key is configured on the server"
	case e.TSIGError == dns.RcodeBadSig:
		return "the TSIG signature was rejected: check that the key secret and algorithm match the server's key"
	case e.TSIGError == dns.RcodeBadTime:
		return "the TSIG time was rejected: check the clocks of this host and the DNS server (NTP)"
	case e.Rcode == dns.RcodeNotAuth:
		return "check the TSIG key name/secret and that the server is primary for the zone with an update-policy for this key"
	case e.Rcode == dns.RcodeRefused:
		return "check the zone's update-policy/allow-update grants this TSIG key the names and types being changed"
	case e.Rcode == dns.RcodeServerFailure:
		return "the server failed to apply the update: check the DNS server's log (journal, zone loaded?)"
	case e.Rcode == dns.RcodeNotZone:
		return "a record is outside the zone: check -dns-zone against -domain"
	case errors.Is(e.Err, ErrUnsignedReply):
		return "the server answered without TSIG: check the server's key configuration or for a middlebox rewriting DNS"
	case errors.Is(e.Err, ErrBadReplySignature):
		return "the reply's TSIG did not verify: check the key secret and the clocks, or for tampering"
	case errors.Is(e.Err, ErrBadReply):
		return "the reply was malformed: check that the address is a DNS server"
	case e.Rcode == NoReply:
		return "check that the DNS server address and port are right and that the server is running and reachable"
	}
	return "check the DNS server's log"
}

func (e *UpdateError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "dnsreport: server %s", e.Server)
	if e.Zone != "" {
		fmt.Fprintf(&b, " zone %s", e.Zone)
	}
	if e.Rcode != NoReply {
		fmt.Fprintf(&b, ": %s", e.RcodeString())
		if e.TSIGError != 0 {
			fmt.Fprintf(&b, " (TSIG %s)", dns.RcodeToString[int(e.TSIGError)])
		}
		if !e.Signed {
			b.WriteString(" (unsigned reply)")
		}
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// UpdateErrors returns the per-server failures inside err (which may be an
// *UpdateError or an errors.Join of them), for logging each one.
func UpdateErrors(err error) []*UpdateError {
	var out []*UpdateError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if ue, ok := err.(*UpdateError); ok {
			out = append(out, ue)
			return
		}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		walk(errors.Unwrap(err))
	}
	walk(err)
	return out
}
