// Package partition cuts a running dsn fleet in two and heals it, inside
// network namespaces it creates, and measures how the ring and the
// registrations come back (issue 7, "a partition run").
//
// Each dsn-node process runs in its own network namespace (ip netns) with
// one veth into a bridge namespace that holds two bridges; a cut moves one
// side's bridge ports to the second bridge, a heal moves them back. No
// firewall rules are used and nothing is created in the namespace the test
// runs in, so the host's interfaces and routes are never touched. The test
// reaches each node's admin API and SIP port from inside that node's own
// namespace (setns on a locked thread: Do, Net.DialContext), so it sees
// both sides of a cut.
//
// Run is synchronous and fails the test (fleet.TB) on what makes a run
// meaningless (a node that does not start, a side that does not re-form,
// a REGISTER refused); lost registrations and a ring that does not merge
// are measured and returned, for the caller to judge. It needs root (or
// CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
//
//	go test -count=1 -v ./bench/partition/             # CI: baseline + one 30 s half/half cut
//	bench/partition/run.sh                               # several cut/heal cycles, longer cuts
package partition
