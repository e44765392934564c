// Package kamailio benchmarks dsn-node side by side with Kamailio (issue
// 7): the same SIPp scenarios, on the same machine, in the same run, so
// that the ratios are fair on a shared, noisy machine.
//
//	bench/kamailio/run.sh        # the full run (installs Kamailio if missing)
//	go test ./bench/kamailio/    # the short CI version
//
// The package itself (Server) runs a Kamailio 5.x process with
// kamailio.cfg (in-memory registrar and stateful, record-routing proxy)
// and reads its CPU time and memory from /proc and its shared-memory use
// over its ctl socket (kamcmd), as a sippbench.System. The benchmark is
// kamailio_test.go; README.md has the figures of a full run.
//
// A Server belongs to the goroutine that started it; Stop is safe to call
// more than once.
package kamailio
