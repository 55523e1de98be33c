package processor

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// churnwatch runs with Go's default garbage-collection target (GOGC=100):
// with the hot path's allocations as they are now, a target of 400 % gave
// no more throughput, and twice the memory (BENCHMARKS.md). Inside a
// container with a memory limit, MemoryLimitShare of that limit is set as
// the Go runtime's soft memory limit (unless GOMEMLIMIT is set), so the
// collector works harder near the limit instead of the process being
// killed.

// MemoryLimitShare is the share of a container's memory limit TuneGC sets
// as the soft memory limit.
const MemoryLimitShare = 0.85

// TuneGC sets a soft memory limit from the container's when the
// environment does not set GOMEMLIMIT. It returns the soft limit it set, 0
// when none.
func TuneGC() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := containerMemoryLimit(os.ReadFile)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * MemoryLimitShare)
	debug.SetMemoryLimit(soft)
	return soft
}

// containerMemoryLimit returns the memory limit of this process's cgroup
// (v2 memory.max, else v1 memory.limit_in_bytes) in bytes; 0 when there is
// none or it cannot be read.
func containerMemoryLimit(read func(string) ([]byte, error)) int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := read(path)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited" near 2^63
			return 0
		}
		return n
	}
	return 0
}
