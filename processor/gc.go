package processor

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// DefaultGCPercent is the garbage-collection target churnwatch runs with
// unless GOGC is set: trading memory for fewer collections buys about a
// tenth more throughput (BENCHMARKS.md). The heap then grows to about five
// times what is live: during a backfill, gigabytes. Inside a container
// with a memory limit, MemoryLimitShare of that limit is set as the Go
// runtime's soft memory limit (unless GOMEMLIMIT is set), so the collector
// works harder near the limit instead of the process being killed.
const DefaultGCPercent = 400

// MemoryLimitShare is the share of a container's memory limit TuneGC sets
// as the soft memory limit.
const MemoryLimitShare = 0.85

// TuneGC applies DefaultGCPercent when the environment does not set GOGC
// and a soft memory limit from the container's when it does not set
// GOMEMLIMIT. It returns the soft limit it set, 0 when none.
func TuneGC() int64 {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
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
