package overload

import "time"

// bucket is a token bucket: tokens accrue at rate a second up to size,
// and a request takes some. It starts full. Not safe for concurrent use:
// the gate's mutex guards it.
type bucket struct {
	rate, size float64
	tokens     float64
	last       time.Time // of the last fill; zero: never
}

func newBucket(rate, size float64) bucket { return bucket{rate: rate, size: size, tokens: size} }

// fill adds the tokens accrued since the last fill.
func (b *bucket) fill(now time.Time) {
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.size, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

func (b *bucket) has(n float64) bool { return b.tokens >= n }

func (b *bucket) take(n float64) { b.tokens -= n }
