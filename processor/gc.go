package processor

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage-collection target churnwatch runs with
// unless GOGC is set: the processor keeps little live heap (batches and
// cached states), so trading some memory for fewer collections buys about
// a tenth more throughput (BENCHMARKS.md).
const DefaultGCPercent = 400

// TuneGC applies DefaultGCPercent when the environment does not set GOGC.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
