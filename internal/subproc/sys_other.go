//go:build !linux

package subproc

import "syscall"

// DieWithParent is a no-op where the parent's death cannot be signalled.
func DieWithParent() *syscall.SysProcAttr { return nil }
