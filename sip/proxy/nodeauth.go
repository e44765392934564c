package proxy

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// NodeAuthHeader is the header with which a DSN node marks a request it
// forwards to another DSN node: "t=<unix seconds>;mac=<base64url>". The
// receiving node admits a request with a valid marker as coming from the
// DSN (no call policy, no relay rule) and removes the header before the
// request goes on; a node never sends it outside the DSN.
const NodeAuthHeader = "DSN-Node-Auth"

// Marker errors (verify); a request whose marker fails is treated as
// coming from an untrusted source.
var (
	errMarkerMalformed = errors.New("proxy: DSN-Node-Auth malformed")
	errMarkerExpired   = errors.New("proxy: DSN-Node-Auth outside its validity window")
	errMarkerMAC       = errors.New("proxy: DSN-Node-Auth does not verify with any cluster key")
)

const (
	nodeAuthInfo   = "dsn sip node-auth v1"
	nodeAuthMACLen = 16 // bytes of HMAC-SHA-256 kept
	rrTokenInfo    = "dsn sip record-route v1"
	rrTokenMACLen  = 12 // bytes of HMAC-SHA-256 kept in a Record-Route token
)

// rrTokenParam is the URI parameter of this node's Record-Route entry
// (after lr) that proves the node record-routed the dialog:
// base64url(HMAC-SHA-256(key, "rr" | Call-ID)[:12]), the key derived by
// HKDF-SHA-256 from the cluster key under its own label. An in-dialog
// request whose Route entry naming the node lacks a valid token is
// treated as a request leaving the DSN (the relay rule).
const rrTokenParam = "dsnrr"

// NodeAuth makes and checks the DSN-Node-Auth marker: an HMAC-SHA-256,
// keyed with a key derived by HKDF-SHA-256 from the cluster key, over the
// request fields that decide where it goes and which transaction it is -
// method, Request-URI, Call-ID, CSeq, From tag, the top Via branch (the
// sending node's), every Route value - and the time it was made. A node
// signs with the primary key and accepts any key of the keyring, so the
// marker follows a cluster key rotation (SetKeys). Only a process that
// holds a cluster key can make one; it is good for one request, for a
// short window (Config.NodeAuthWindow), and a captured one cannot be
// moved onto another request or target. Safe for concurrent use.
//
// The same keyring also makes and checks the Record-Route token
// (rrTokenParam), with a key derived under a separate label.
type NodeAuth struct {
	keys atomic.Pointer[nodeKeys]
}

// nodeKeys are the keys derived from one keyring, primary first; they
// are replaced together.
type nodeKeys struct {
	marker [][]byte // DSN-Node-Auth
	rr     [][]byte // Record-Route token
}

// NewNodeAuth derives the marker keys from the cluster keys (primary
// first, 16 to 64 bytes each).
func NewNodeAuth(clusterKeys [][]byte) (*NodeAuth, error) {
	a := &NodeAuth{}
	if err := a.SetKeys(clusterKeys); err != nil {
		return nil, err
	}
	return a, nil
}

// SetKeys replaces the keyring (a step of a cluster key rotation): new
// markers are made with keys[0]; markers made with any of keys are
// accepted. A bad keyring is refused and changes nothing.
func (a *NodeAuth) SetKeys(clusterKeys [][]byte) error {
	if len(clusterKeys) == 0 {
		return fmt.Errorf("%w: no cluster key for DSN-Node-Auth", ErrInvalidConfig)
	}
	derived := &nodeKeys{marker: make([][]byte, 0, len(clusterKeys)), rr: make([][]byte, 0, len(clusterKeys))}
	for i, k := range clusterKeys {
		if len(k) < 16 || len(k) > 64 {
			return fmt.Errorf("%w: cluster key %d has %d bytes, want 16..64", ErrInvalidConfig, i, len(k))
		}
		d, err := hkdf.Key(sha256.New, k, nil, nodeAuthInfo, sha256.Size)
		if err != nil {
			return fmt.Errorf("proxy: deriving the DSN-Node-Auth key: %w", err)
		}
		r, err := hkdf.Key(sha256.New, k, nil, rrTokenInfo, sha256.Size)
		if err != nil {
			return fmt.Errorf("proxy: deriving the Record-Route token key: %w", err)
		}
		derived.marker = append(derived.marker, d)
		derived.rr = append(derived.rr, r)
	}
	a.keys.Store(derived)
	return nil
}

// sign puts a marker made at now into req, replacing any there. req
// must be complete: its top Via is this node's, with the branch set.
func (a *NodeAuth) sign(req *sip.Request, now time.Time) {
	for req.RemoveHeader(NodeAuthHeader) {
	}
	keys := a.keys.Load().marker
	ts := now.Unix()
	mac := markerMAC(keys[0], req, ts)
	req.AppendHeader(sip.NewHeader(NodeAuthHeader, "t="+strconv.FormatInt(ts, 10)+";mac="+base64.RawURLEncoding.EncodeToString(mac)))
}

// verify checks the marker of req at now: exactly one header, made
// within window of now (either way: clocks differ), and a MAC that one of
// the keys made over req as it is.
func (a *NodeAuth) verify(req *sip.Request, now time.Time, window time.Duration) error {
	hs := req.GetHeaders(NodeAuthHeader)
	if len(hs) != 1 {
		return fmt.Errorf("%w: %d headers", errMarkerMalformed, len(hs))
	}
	ts, mac, err := parseMarker(hs[0].Value())
	if err != nil {
		return err
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return fmt.Errorf("%w: made %v ago, window %v", errMarkerExpired, d.Round(time.Second), window)
	}
	for _, k := range a.keys.Load().marker {
		if hmac.Equal(mac, markerMAC(k, req, ts)) {
			return nil
		}
	}
	return errMarkerMAC
}

// parseMarker reads "t=<unix seconds>;mac=<base64url>".
func parseMarker(v string) (ts int64, mac []byte, err error) {
	if len(v) > 128 {
		return 0, nil, fmt.Errorf("%w: %d bytes", errMarkerMalformed, len(v))
	}
	var tsText, macText string
	for _, f := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch strings.TrimSpace(k) {
		case "t":
			tsText = strings.TrimSpace(val)
		case "mac":
			macText = strings.TrimSpace(val)
		}
	}
	ts, err = strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: bad t", errMarkerMalformed)
	}
	mac, err = base64.RawURLEncoding.DecodeString(macText)
	if err != nil || len(mac) != nodeAuthMACLen {
		return 0, nil, fmt.Errorf("%w: bad mac", errMarkerMalformed)
	}
	return ts, mac, nil
}

// markerMAC is the truncated HMAC of the signed fields of req at ts. The
// fields are written as sipgo serialises them, so the sender's copy and
// the receiver's parse of it give the same bytes; each ends with a 0 byte.
func markerMAC(key []byte, req *sip.Request, ts int64) []byte {
	m := hmac.New(sha256.New, key)
	w := func(s string) {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	w(nodeAuthInfo)
	w(strconv.FormatInt(ts, 10))
	w(strings.ToUpper(string(req.Method))) // sipgo upper-cases it on receipt
	w(req.Recipient.String())
	if c := req.CallID(); c != nil {
		w(c.Value())
	}
	if c := req.CSeq(); c != nil {
		w(strconv.FormatUint(uint64(c.SeqNo), 10) + " " + string(c.MethodName))
	}
	if f := req.From(); f != nil {
		w(f.Params.GetOr("tag", ""))
	}
	if v := req.Via(); v != nil {
		w(v.Params.GetOr("branch", ""))
	}
	for _, h := range req.GetHeaders("Route") {
		w(h.Value())
	}
	return m.Sum(nil)[:nodeAuthMACLen]
}

// rrToken is the Record-Route token of a dialog with this Call-ID, made
// with the primary key.
func (a *NodeAuth) rrToken(callID string) string {
	return base64.RawURLEncoding.EncodeToString(rrMAC(a.keys.Load().rr[0], callID))
}

// verifyRRToken reports whether token is the Record-Route token of the
// Call-ID under any key of the keyring (constant-time compare).
func (a *NodeAuth) verifyRRToken(token, callID string) bool {
	if len(token) != base64.RawURLEncoding.EncodedLen(rrTokenMACLen) {
		return false
	}
	mac, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(mac) != rrTokenMACLen {
		return false
	}
	ok := false
	for _, k := range a.keys.Load().rr {
		if hmac.Equal(mac, rrMAC(k, callID)) {
			ok = true
		}
	}
	return ok
}

// rrMAC is the truncated HMAC of "rr", a 0 byte and the Call-ID.
func rrMAC(key []byte, callID string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("rr"))
	m.Write([]byte{0})
	m.Write([]byte(callID))
	return m.Sum(nil)[:rrTokenMACLen]
}
