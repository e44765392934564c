// Command dsnctl is the operator CLI of a DSN fleet.
//
// It talks to one node's admin HTTP API (status, ring, lookup, bindings,
// reps), compares what DNS publishes with the live representatives
// (dns-check) and provisions ENUM NAPTR records with TSIG-signed RFC 2136
// UPDATEs (enum add | add-prefix | del | del-prefix).
//
// Output is an aligned table for people and, with -o json, a JSON document
// with stable keys for scripts. Exit status: 0 success; 1 the command ran
// and found a problem (stale or missing DNS entries, an inconsistent ring,
// no registration, an UPDATE the server refused); 2 usage errors and
// servers that cannot be reached.
//
// The entry point for tests is run(args, stdout, stderr); each command is
// a small function that returns a result value rendered as table or JSON.
// Nothing here is shared mutable state: every invocation builds its own
// clients.
package main
