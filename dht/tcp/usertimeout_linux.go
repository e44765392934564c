package tcp

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setUserTimeout sets TCP_USER_TIMEOUT on the socket (Config.UserTimeout);
// d <= 0 leaves the system default.
func setUserTimeout(rc syscall.RawConn, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d.Milliseconds()))
	})
	if err = errors.Join(err, serr); err != nil {
		return fmt.Errorf("dht/tcp: TCP_USER_TIMEOUT: %w", err)
	}
	return nil
}
