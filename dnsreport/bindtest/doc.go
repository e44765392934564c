// Package bindtest runs a real BIND9 named for integration tests.
//
// Start(Config) makes a temporary directory with a generated named.conf (listening
// only on 127.0.0.1 at a free port, no recursion, no rndc control channel),
// a TSIG key written by tsig-keygen, and the given zones as primaries that
// the key may update (update-policy grant <key> zonesub ANY) and transfer.
// Journals live in the same directory. Start returns once named answers SOA
// for every zone (polled with a deadline; on failure the error carries the
// tail of named's log). Stop and Start restart the same server on the same
// port with its data, for "DNS goes away and comes back" tests; Close stops
// it and removes the directory.
//
// Tests that need named follow the team rule: skip when the binary is
// missing and the CI environment variable is unset, fail when CI is set
// (Availability, Require).
//
// A Server's methods are safe for concurrent use; Start and Stop block
// until named is up or gone. The package keeps no global state and does
// not import testing (Require takes the small TB interface).
package bindtest
