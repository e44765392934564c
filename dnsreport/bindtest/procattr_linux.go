package bindtest

import "syscall"

// sysProcAttr puts named in its own process group and has the kernel kill
// it if the test process dies without calling Stop (a panic or a test
// timeout), so no named outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
