// Package sippbench drives SIPp against SIP servers for the benchmarks under
// bench/ (bench/calls, bench/kamailio): batches of calls and REGISTERs run
// by real SIPp processes and judged pass or fail, rate searches over such
// batches, and readings of the servers under load (CPU time, goroutines,
// live heap) through the System interface, which dsn-node fleets (Nodes)
// and other servers (bench/kamailio's Kamailio) implement.
//
// It takes a fleet.TB (satisfied by *testing.T) instead of importing
// package testing. Everything here blocks until its processes are done;
// a Proc's methods are safe to call from the goroutine that started it
// while its own goroutine waits for the exit. Nothing is shared between
// calls: no package-level state.
package sippbench
