//go:build !linux

package bindtest

import "syscall"

// sysProcAttr puts named in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
