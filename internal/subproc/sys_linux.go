package subproc

import "syscall"

// DieWithParent makes a child be killed when its parent dies, so that no
// child outlives a failed test or benchmark.
func DieWithParent() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
