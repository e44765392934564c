// Package reps makes a few service nodes the DSN's representatives in DNS
// (MISSION.md, "Representative SNs" and "Churn handling"): it elects them,
// registers a chosen node in DNS and withdraws one that stops being chosen,
// watches each representative from its ring neighbours and deletes its
// records as soon as it dies, and reconciles DNS with the live ring.
//
// # Election
//
// The representatives are the owners of K fixed ring points
// (SlotPoints: evenly spaced from HashKey(SlotSeed)), made distinct slot by
// slot by taking the next successor when an owner was already chosen.
// Every node computes the set itself with K ring look-ups per election
// (Elect), so the nodes agree without voting or gossip: the set is a
// function of the ring, and every node converges on the same ring. No
// extra protocol means nothing to keep consistent and nothing to attack
// beyond the ring itself. While the ring settles after churn, two nodes may
// briefly disagree; the cost is a record published or withdrawn one
// election late. A node that is chosen publishes its records; one that is
// no longer chosen (a new node took its slot) withdraws its own.
// The load is K look-ups per node per ElectInterval (the last hop of each
// is the node before the slot point) plus one GetNeighbors call to the
// node's predecessor, which tells a node whose backup it is.
//
// # Records
//
// What a representative publishes is INTERFACE.md's record set
// (dnsreport.Representative: L.Z. A/AAAA, _sip._udp/_sip._tcp SRV, D.
// A/AAAA), built from the node's name (dnsreport.NodeLabel) and the SIP
// address in dht.Peer.Meta ("ip:port", ParseSIPAddr). Changes go through the
// Publisher (dnsreport.Reporter): the node's own records under key "self"
// with Refresh, deletions of another node under "node/<label>". A deletion
// removes exactly that node's records, never an RRset, and keeps a domain
// address that another current representative publishes too.
//
// # Failure handling
//
// A representative's predecessor, successor and backup (its second
// successor, the next holder of its replicas) each watch it: Probe asks it
// for its neighbours (dht GetNeighbors) every ProbeInterval, which is both
// the liveness probe and how a watcher keeps learning whether it is still
// one. After SuspectAfter consecutive misses — and never sooner than
// MinSilence after its last answer — each watcher submits the deletion on
// its own, at once; deletions are idempotent, and three independent
// senders survive a run of consecutive failures. A watcher first checks
// that it still reaches some other member: one that lost its own network
// withholds the deletion instead of removing everyone it watches. The ring's own
// EventNeighborFailed (OnRingEvent) makes a watcher probe at once and then
// every RetryInterval, but only this node's own misses count, because the
// ring also removes a neighbour after a single failed call. The node that
// owns the slot next registers itself at its next election, which the
// failure triggers. Leave deletes the node's own records and waits for DNS
// to confirm before the node leaves the ring (SIGTERM).
//
// Reconcile is the backstop: every representative periodically reads the
// published records (DNSReader: AXFR with TSIG where the server allows it,
// else queries) and deletes the entries of nodes that are neither live
// members nor answering, so a stale record cannot outlive the loss of all
// three watchers or a DNS outage (the Reporter retries until DNS is back).
// It also re-publishes the node's own records if they went missing — the
// way a representative wrongly deleted (a long stall, a partition) comes
// back without waiting for the Reporter's refresh.
//
// # Concurrency
//
// Manager's methods are synchronous and safe for concurrent use; no lock
// is held during an RPC or a DNS read. Elect blocks for its look-ups (at
// most LookupTimeout), Probe for its probes (all in parallel, each at most
// ProbeTimeout), Reconcile for the DNS read and its pings, Leave until DNS
// confirms the deletion or ctx ends. OnRingEvent never blocks. Run is the
// only place that starts goroutines or waits on the clock; tests call
// Elect, Probe and Reconcile in a fixed order instead.
package reps
