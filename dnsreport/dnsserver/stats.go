package dnsserver

import "sync/atomic"

// Stats counts requests since the handler was created.
type Stats struct {
	// Queries counts QUERY requests answered, transfers included.
	Queries uint64
	// Transfers counts AXFR requests served with data.
	Transfers uint64
	// UpdatesOK counts UPDATEs answered NOERROR (including no-op updates).
	UpdatesOK uint64
	// UpdatesRefused counts UPDATEs for zones not served (REFUSED).
	UpdatesRefused uint64
	// UpdatesNotAuth counts UPDATEs rejected NOTAUTH: unsigned, signed with
	// a bad or unknown key, out of time, or naming a non-apex zone.
	UpdatesNotAuth uint64
	// UpdatesFailed counts UPDATEs rejected with any other rcode: FORMERR,
	// NOTZONE and the prerequisite failures YXDOMAIN, YXRRSET, NXDOMAIN,
	// NXRRSET.
	UpdatesFailed uint64
	// BadTSIG counts requests of any opcode whose TSIG failed verification.
	BadTSIG uint64
}

// counters is the live, lock-free form of Stats.
type counters struct {
	queries, transfers                                    atomic.Uint64
	updatesOK, updatesRefused, updatesNotAuth, updatesBad atomic.Uint64
	badTSIG                                               atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		Queries:        c.queries.Load(),
		Transfers:      c.transfers.Load(),
		UpdatesOK:      c.updatesOK.Load(),
		UpdatesRefused: c.updatesRefused.Load(),
		UpdatesNotAuth: c.updatesNotAuth.Load(),
		UpdatesFailed:  c.updatesBad.Load(),
		BadTSIG:        c.badTSIG.Load(),
	}
}
