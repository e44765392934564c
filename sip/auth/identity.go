package auth

import (
	"fmt"
	"net/netip"
	"strings"
)

// Identity is who Authenticate found a request to come from; its String
// is the identity the registrar passes back to Authorize. Exactly one of
// the two forms is set.
type Identity struct {
	// User and Realm: Digest credentials checked against the Store.
	// String "digest:alice@dsn.example.com".
	User, Realm string
	// Peer: the source address is in the Trusted set; no Digest was asked.
	// String "trusted:10.0.0.5".
	Peer netip.Addr
}

// Trusted reports whether the identity is a trusted peer.
func (id Identity) Trusted() bool { return id.Peer.IsValid() }

func (id Identity) String() string {
	if id.Trusted() {
		return "trusted:" + id.Peer.String()
	}
	return "digest:" + id.User + "@" + id.Realm
}

// ParseIdentity parses the String form. Realms never contain '@', so the
// last '@' separates user and realm.
func ParseIdentity(s string) (Identity, error) {
	if rest, ok := strings.CutPrefix(s, "trusted:"); ok {
		a, err := netip.ParseAddr(rest)
		if err != nil {
			return Identity{}, fmt.Errorf("auth: identity %q: %w", s, err)
		}
		return Identity{Peer: a}, nil
	}
	if rest, ok := strings.CutPrefix(s, "digest:"); ok {
		if at := strings.LastIndexByte(rest, '@'); at > 0 && at < len(rest)-1 {
			return Identity{User: rest[:at], Realm: rest[at+1:]}, nil
		}
	}
	return Identity{}, fmt.Errorf("auth: identity %q: want digest:user@realm or trusted:addr", s)
}
