package registrar

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// QNone is the Binding.Q of a contact registered without a q parameter.
const QNone = -1

// qNoneRank is the preference an absent q sorts with: a UA that states no
// preference is not ranked below one that lowers its own (q < 1).
const qNoneRank = 1000

// Source is where a request came from: the transport it arrived on and the
// remote address of the packet or connection (not what Via claims).
type Source struct {
	// Transport is the upper-case SIP transport name: UDP, TCP, TLS, WS,
	// WSS or SCTP.
	Transport string
	// Addr is the remote IP and port; the zero value means unknown.
	Addr netip.AddrPort
}

// IsZero reports whether s carries no address.
func (s Source) IsZero() bool { return !s.Addr.IsValid() }

func (s Source) String() string {
	if s.IsZero() {
		return ""
	}
	return s.Transport + ":" + s.Addr.String()
}

// normalize returns s with an upper-case transport and a plain (unmapped,
// zone-free) IP, the form bindings store.
func (s Source) normalize() Source {
	if !s.Addr.IsValid() {
		return Source{}
	}
	ip := s.Addr.Addr().Unmap().WithZone("")
	return Source{
		Transport: strings.ToUpper(s.Transport),
		Addr:      netip.AddrPortFrom(ip, s.Addr.Port()),
	}
}

// Binding is one contact registered for an address-of-record.
type Binding struct {
	// Contact is the Contact URI as registered, without header parameters
	// (expires, q, +sip.instance and reg-id are fields of their own).
	Contact string
	// Q is the q-value in thousandths (0..1000), or QNone.
	Q int
	// Expires is when the binding stops being live.
	Expires time.Time
	// CallID and CSeq are those of the REGISTER that last created or
	// refreshed the binding (RFC 3261 section 10.3 step 7).
	CallID string
	CSeq   uint32
	// Path holds the Path header field values to reach the contact (RFC
	// 3327), top-most (nearest to the registrar) first, each "<uri>;params".
	Path []string
	// Received is where the REGISTER actually came from (RFC 3581): the
	// phone itself, or the last proxy if it came through one (then that
	// proxy is on Path). A request to a contact behind NAT goes there; see
	// NATTarget.
	Received Source
	// Instance is the +sip.instance value without its quotes (RFC 5626),
	// "" if none; RegID the reg-id, 0 if none.
	Instance string
	RegID    uint32
	// Registered is when the REGISTER that last created or refreshed the
	// binding was accepted.
	Registered time.Time
}

// Live reports whether b has not expired at now.
func (b *Binding) Live(now time.Time) bool { return b.Expires.After(now) }

// Remaining is the whole number of seconds b has left at now, rounded up so
// that a live binding never reports 0 (which would mean "removed").
func (b *Binding) Remaining(now time.Time) int64 {
	d := b.Expires.Sub(now)
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Clone returns a deep copy of b.
func (b *Binding) Clone() Binding {
	c := *b
	c.Path = slices.Clone(b.Path)
	return c
}

// QString renders Q as a SIP qvalue ("0.5", "1"), or "" for QNone.
func (b *Binding) QString() string {
	if b.Q == QNone {
		return ""
	}
	return formatQ(b.Q)
}

// NATTarget tells the proxy where to send a request for b when its Contact
// cannot be reached directly, and reports whether that is the case: if the
// Contact host is an IP literal and it or its port differs from the address
// the REGISTER came from, the UA is behind NAT (its Contact names a private
// address), and a ".invalid" host (RFC 7118 WebSocket clients) can only be
// reached over the connection it registered on. The request then goes to
// Received, over the same transport, so it reaches the flow the UA keeps
// open (RFC 3581). Other host names are resolved normally (RFC 3263).
// NATTarget is for the hop that delivers to the contact: while Path holds
// hops other than this node, the request goes to the Path first.
func (b *Binding) NATTarget() (Source, bool) {
	if b.Received.IsZero() {
		return Source{}, false
	}
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil || !isSIPScheme(u.Scheme) {
		return Source{}, false
	}
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		if strings.HasSuffix(normalizeHost(u.Host), ".invalid") {
			return b.Received, true
		}
		return Source{}, false
	}
	port := u.Port
	if port == 0 {
		port = int(sip.DefaultPort(b.Received.Transport))
	}
	if ip.Unmap() == b.Received.Addr.Addr() && port == int(b.Received.Addr.Port()) {
		return Source{}, false
	}
	return b.Received, true
}

// BindingSet is everything stored for one address-of-record.
type BindingSet struct {
	// Bindings in registration order. Expired entries may be present; the
	// registrar drops them on its next write.
	Bindings []Binding
	// RetainUntil is when the storage may drop the whole record, everywhere:
	// the latest binding expiry plus Config.RecordLinger. The zero time
	// means never.
	RetainUntil time.Time
}

// Live returns deep copies of the bindings of s that are live at now.
func (s *BindingSet) Live(now time.Time) []Binding {
	out := make([]Binding, 0, len(s.Bindings))
	for i := range s.Bindings {
		if s.Bindings[i].Live(now) {
			out = append(out, s.Bindings[i].Clone())
		}
	}
	return out
}

// sortForLookup orders bindings by q descending (an absent q ranks as 1.0),
// then most recently registered first.
func sortForLookup(bs []Binding) {
	rank := func(b *Binding) int {
		if b.Q == QNone {
			return qNoneRank
		}
		return b.Q
	}
	slices.SortStableFunc(bs, func(a, b Binding) int {
		if ra, rb := rank(&a), rank(&b); ra != rb {
			return rb - ra
		}
		return b.Registered.Compare(a.Registered)
	})
}

// parseQ parses an RFC 3261 qvalue: "0" ["." up to 3 digits] or "1" ["."
// up to 3 zeros]. It returns the value in thousandths.
func parseQ(s string) (int, bool) {
	// RFC 3261 section 25.1: qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
	intPart, frac, _ := strings.Cut(s, ".")
	if (intPart != "0" && intPart != "1") || len(frac) > 3 {
		return 0, false
	}
	v := 0
	for i := 0; i < 3; i++ {
		v *= 10
		if i < len(frac) {
			c := frac[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			v += int(c - '0')
		}
	}
	if intPart == "1" {
		if v != 0 {
			return 0, false
		}
		return 1000, true
	}
	return v, true
}

// formatQ renders thousandths as a qvalue with no trailing zeros.
func formatQ(q int) string {
	if q >= 1000 {
		return "1"
	}
	if q <= 0 {
		return "0"
	}
	s := strconv.Itoa(q + 1000)[1:] // three digits, zero padded
	return "0." + strings.TrimRight(s, "0")
}
