// Command dsn-demo runs the product's main job end to end in one process,
// on loopback, with nothing to install:
//
//  1. the embedded DNS server (dnsreport/dnsserver) with a generated TSIG
//     key and the zones of the DSN domain (dsn.demo) and e164.arpa.;
//  2. a fleet of dsn nodes (node.New, each on its own 127.0.0.x address)
//     joined into one Chord ring, reporting to that DNS server; the demo
//     waits until the ring is consistent and the representatives are
//     published, agreed on by every node and watched;
//  3. an ENUM prefix (+1555 -> sip:+1555...@dsn.demo) provisioned by a
//     TSIG-signed UPDATE;
//  4. SIP phones (sipgo user agents on 127.0.0.1) that register through a
//     random node, answer INVITE with 180/200 and BYE with 200, and keep
//     an OPTIONS keepalive to the node they registered through (their
//     edge): when it stops answering they register through another node;
//  5. calls placed the way an IMS CSCF places them: ENUM for the callee
//     number, RFC 3263 for the DSN domain (SRV _sip._udp -> A), INVITE to
//     the representative found (the next SRV target when the first sends
//     nothing back), which routes it over the ring to the callee's home
//     node and on to the phone; then ACK and BYE;
//  6. a representative crash (node.Close: no leave, no DNS withdrawal):
//     the demo measures how long DNS keeps the dead node's address and
//     when the replacement is published, while calls continue; every
//     failed call is classified by its cause;
//  7. a summary table, and a graceful shutdown of everything, after which
//     DNS must hold no representative.
//
// It exits 0 when every step worked and every failed call is explained by
// the crash (sent to the dead node, or to a subscriber the dead node served,
// before the fleet had recovered); 1 otherwise; 2 on bad flags.
//
// The command is a driver: it owns goroutines, sockets and timers and is not
// meant to be imported. run is its testable entry point.
package main
