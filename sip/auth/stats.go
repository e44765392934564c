package auth

// Stats are counters since New, for metrics.
type Stats struct {
	Challenged uint64 // 401 without stale: no credentials, or wrong ones
	Failed     uint64 // of Challenged: credentials present but wrong
	Stale      uint64 // 401 with stale=true: right password, nonce expired, foreign or replayed
	Replayed   uint64 // of Stale: nonce count not higher than one already used
	Accepted   uint64 // Digest verified
	Trusted    uint64 // accepted without Digest from a trusted source
	Malformed  uint64 // 400: unparsable credentials or digest-uri mismatch
	Nonces     int    // nonces currently tracked against replay
}

// Stats returns the counters.
func (d *Digest) Stats() Stats {
	return Stats{
		Challenged: d.stats.challenged.Load(),
		Failed:     d.stats.failed.Load(),
		Stale:      d.stats.stale.Load(),
		Replayed:   d.stats.replayed.Load(),
		Accepted:   d.stats.accepted.Load(),
		Trusted:    d.stats.trusted.Load(),
		Malformed:  d.stats.malformed.Load(),
		Nonces:     d.replay.len(),
	}
}
