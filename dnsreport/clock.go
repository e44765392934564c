package dnsreport

import "time"

// Clock is the Reporter's source of time, injected so tests can drive it.
type Clock interface {
	Now() time.Time
	// After delivers once, d from now.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
