package crashtest

import "syscall"

// dieWithParent makes the processor die with the test, even when the test
// binary is killed by its timeout.
func dieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
