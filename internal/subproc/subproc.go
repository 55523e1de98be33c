// Package subproc builds and watches churnwatch processes run as children:
// the crash harness and the benchmark run `churnwatch run` apart from the
// broker and Redis they drive.
package subproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// Build builds cmd/churnwatch into dir with extra go build flags and
// returns the binary's path.
func Build(dir string, flags []string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build churnwatch: %w", err)
	}
	bin := filepath.Join(dir, "churnwatch")
	args := append(append([]string{"build", "-o", bin}, flags...), "github.com/churnwatch/churnwatch/cmd/churnwatch")
	cmd := exec.Command(gobin, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/churnwatch: %w\n%s", err, out)
	}
	return bin, nil
}

// Env returns this process's environment without CHURNWATCH_ settings,
// so that only its arguments configure a child churnwatch.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CHURNWATCH_") {
			env = append(env, kv)
		}
	}
	return env
}

// PeakRSS returns the peak resident set (VmHWM) of process pid ("self" for
// this one) in bytes; 0 where unknown.
func PeakRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// CPUSeconds returns the user and system CPU time process pid has used, in
// seconds; 0 where unknown. Linux counts it in ticks of 1/100 s.
func CPUSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return float64(utime+stime) / 100
}
