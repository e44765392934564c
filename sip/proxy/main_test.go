package proxy

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestMain shortens sipgo's transaction timers, which are package-level
// globals in sipgo: T1 50 ms makes Timers B, F, H, J, L and M 3.2 s, so
// the goroutine-baseline test sees transactions end within seconds. Only
// here and in cmd/ may they be set.
func TestMain(m *testing.M) {
	sip.SetTimers(50*time.Millisecond, 400*time.Millisecond, 500*time.Millisecond)
	sip.Timer_D = time.Second
	sip.SetDefaultLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	os.Exit(m.Run())
}
