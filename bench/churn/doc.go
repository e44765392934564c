// Package churn is the "churn without loss" benchmark of issue 7: an
// 8-node dsn-node fleet on 127.0.0.x reporting to a real BIND9, SIPp phones
// registered for thousands of AORs, a steady SIPp call load, and every few
// seconds a node killed with SIGKILL or stopped with SIGTERM (sometimes two
// ring neighbours at once, never more than two down) and restarted under
// the same name and addresses.
//
// Run drives one such run and returns a Report: calls attempted and failed
// by reason, the time DNS (and the ring, and the replica counts) took to be
// consistent again after every kill and every restart, and a final check
// that every AOR resolves to a live home node and is held, with its
// binding, by exactly Replicas distinct live nodes: the home node and its
// replica nodes as /v1/lookup names them, each asked for its own copy with
// /v1/bindings?aor=...&local=1.
//
// Run takes a fleet.TB (a *testing.T) and must be called on the test's
// goroutine; it starts the kills and restarts on a goroutine of its own
// that uses no TB. The randomness (victims, signals, gaps, down times,
// targets) comes from Config.Seed. TestChurn in this package runs the short
// CI version; run.sh the full one (see README.md).
package churn
