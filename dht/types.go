package dht

import "fmt"

// Peer identifies a ring member: its ring ID, its stable name, the cluster
// address its Transport listens on, and an opaque Meta string the layer above
// uses (the node package stores the SIP advertise address there).
type Peer struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
	Addr string `json:"addr"`
	Meta string `json:"meta,omitempty"`
}

// IsZero reports whether p is the empty Peer (no node).
func (p Peer) IsZero() bool { return p.Addr == "" }

func (p Peer) String() string { return fmt.Sprintf("%s@%s(%s)", p.Name, p.Addr, p.ID) }

// Record is one stored value. Records are opaque to the ring except for the
// fields that order and age them. The ring position of a record is
// HashKey(Key); it is not carried on the wire.
type Record struct {
	Key   string `json:"key"`
	Value []byte `json:"value,omitempty"`
	// Version orders writes to the same key: the higher version wins
	// everywhere. The owner assigns versions (see Node.Put).
	Version uint64 `json:"version"`
	// Expires is a Unix time in nanoseconds after which the record is dropped
	// on every holder; 0 means it never expires.
	Expires int64 `json:"expires,omitempty"`
	// Deleted marks a tombstone: a delete that must win over older copies
	// until it expires itself.
	Deleted bool `json:"deleted,omitempty"`
}

// newer reports whether a should replace b. Versions decide; equal versions
// are broken deterministically (tombstone first, then the later expiry,
// then the byte-wise larger value) so every replica picks the same winner.
func newer(a, b *Record) bool {
	if a.Version != b.Version {
		return a.Version > b.Version
	}
	if a.Deleted != b.Deleted {
		return a.Deleted
	}
	if a.Expires != b.Expires {
		return a.Expires > b.Expires
	}
	return string(a.Value) > string(b.Value)
}

// Neighbors is what a node tells a peer about its place on the ring.
type Neighbors struct {
	Predecessor Peer   `json:"predecessor"` // zero if unknown
	Successors  []Peer `json:"successors"`
}

// Step is one answer of an iterative lookup. When Done is true, Next is the
// successor of the looked-up ID (its owner) and Successors is Next's
// successor list as far as the answering node knows it (Next excluded);
// otherwise Next is the closest preceding node the asked node knows, to ask
// next.
type Step struct {
	Done       bool   `json:"done"`
	Next       Peer   `json:"next"`
	Successors []Peer `json:"successors,omitempty"`
}

// LeaveNotice is sent by a node that leaves gracefully to its predecessor
// and successor so they can splice it out at once.
type LeaveNotice struct {
	Leaving     Peer   `json:"leaving"`
	Predecessor Peer   `json:"predecessor"`
	Successors  []Peer `json:"successors"`
}

// PutRequest asks the owner of Record.Key to store it.
type PutRequest struct {
	Record Record `json:"record"`
	// IfVersion makes the put conditional: it succeeds only if the current
	// version of the key (0 when absent or deleted) equals IfVersion.
	// Used for read-modify-write (for example a registrar updating an AOR).
	IfVersion uint64 `json:"if_version"`
	// Conditional enables IfVersion.
	Conditional bool `json:"conditional,omitempty"`
}

// PutResult reports where a put landed.
type PutResult struct {
	Version uint64 `json:"version"` // version assigned by the owner
	Copies  int    `json:"copies"`  // holders that acknowledged, owner included
}

// Digest summarises a holder's records on the arc (Lo, Hi], split into
// len(Buckets) equal sub-arcs, for anti-entropy between an owner and its
// replicas.
type Digest struct {
	Lo      ID       `json:"lo"`
	Hi      ID       `json:"hi"`
	Buckets []uint64 `json:"buckets"`
}

// DigestReply lists the buckets whose summary differs and carries the
// replier's records in those buckets, so the sender can merge what it lacks.
type DigestReply struct {
	Differ  []int    `json:"differ,omitempty"`
	Records []Record `json:"records,omitempty"`
	// Partial is set when the differing buckets hold too many records for
	// one reply; Records is then empty and the sender narrows the digest
	// to each differing bucket.
	Partial bool `json:"partial,omitempty"`
}
