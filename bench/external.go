package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/churnwatch/churnwatch/internal/subproc"
	"github.com/churnwatch/churnwatch/processor"
)

// Usage is the CPU the end-to-end phase cost each process, and the
// processor's peak memory, when the processor ran as a process of its own.
type Usage struct {
	ProcessorRSS int64   // bytes, peak resident set of `churnwatch run`
	Processor    float64 // CPU seconds of `churnwatch run`
	Redis        float64 // CPU seconds of redis-server
	Rest         float64 // CPU seconds of the benchmark's own process: the broker, the bench
}

// startExternal runs `bin run` against e's broker and Redis with cfg's
// settings that the command has, its admin API on a free local port. Its
// output goes to log.
func startExternal(bin string, e *env, cfg processor.Config, log io.Writer) (*running, *exec.Cmd, string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, "", err
	}
	admin := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "run", "--brokers", strings.Join(e.brokers, ","), "--redis", "redis://"+e.redis.Addr+"/0",
		"--group", cfg.Group, "--internal-partitions", strconv.Itoa(cfg.InternalPartitions),
		"--source-partitions", strconv.Itoa(cfg.SourcePartitions), "--http", admin, "--log-level", "warn")
	cmd.Env = subproc.Env()
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = subproc.DieWithParent()
	if err := cmd.Start(); err != nil {
		return nil, nil, "", fmt.Errorf("start %s run: %w", bin, err)
	}
	r := &running{done: make(chan error, 1)}
	r.cancel = func() { _ = cmd.Process.Signal(syscall.SIGTERM) }
	go func() { r.done <- cmd.Wait() }()
	return r, cmd, admin, nil
}

// counters reads the named counters from a processor's /metrics.
func counters(ctx context.Context, admin string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make(map[string]float64, len(names))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for _, n := range names {
			if v, ok := strings.CutPrefix(sc.Text(), n+" "); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					out[n] = f
				}
			}
		}
	}
	return out, sc.Err()
}

// redisCPU returns the CPU seconds redis-server has used.
func redisCPU(ctx context.Context, rdb *redis.Client) (float64, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	total := 0.0
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			total += f
		}
	}
	return total, nil
}

// selfCPU returns the CPU seconds this process has used.
func selfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// commandStats returns the calls of each Redis command since the last
// CONFIG RESETSTAT (INFO commandstats), by lower-case command name.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(info, "\n") {
		// cmdstat_get:calls=21,usec=175,usec_per_call=8.33,…
		name, stats, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(stats, "calls="), ",")
		n, err := strconv.ParseInt(calls, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("INFO commandstats %q: %w", line, err)
		}
		out[strings.ToLower(name)] = n
	}
	return out, nil
}

// FormatCommands lists commands per event, most frequent first, leaving
// out those below 0.005 per event: "set 0.34 · hset 0.31 · …".
func FormatCommands(perEvent map[string]float64) string {
	names := make([]string, 0, len(perEvent))
	total := 0.0
	for c, v := range perEvent {
		total += v
		if v >= 0.005 {
			names = append(names, c)
		}
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(perEvent[b], perEvent[a]), cmp.Compare(a, b)) })
	parts := make([]string, 0, len(names)+1)
	parts = append(parts, fmt.Sprintf("%.2f in all", total))
	for _, c := range names {
		parts = append(parts, fmt.Sprintf("%s %.2f", c, perEvent[c]))
	}
	return strings.Join(parts, " · ")
}
