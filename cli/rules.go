package cli

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/churnwatch/churnwatch/engine"
	"github.com/churnwatch/churnwatch/event"
	"github.com/churnwatch/churnwatch/rules"
)

func rulesCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: churnwatch rules check FILE | rules test [--until TIME] FILE EVENTS.jsonl")
		return errUsage
	}
	switch args[0] {
	case "check":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: churnwatch rules check FILE")
			return errUsage
		}
		set, err := loadRules(args[1])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %d rules ok\n", args[1], len(set.Rules))
		for _, r := range set.Rules {
			fmt.Fprintf(stdout, "  %-24s %-8s %s\n", r.ID, r.Severity, r.Description)
		}
		return nil
	case "test":
		return rulesTest(args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown rules command %q (want check or test)\n", args[0])
	return errUsage
}

// loadRules reads a rules file; "builtin" or "" is the built-in pack.
func loadRules(path string) (*rules.Set, error) {
	if path == "" || path == "builtin" {
		return rules.Builtin(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return rules.Load(path, b)
}

func rulesTest(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("rules test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	until := fs.String("until", "", "advance event time to this RFC 3339 time (default: the last event's time)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "usage: churnwatch rules test [--until TIME] FILE EVENTS.jsonl")
		return errUsage
	}
	set, err := loadRules(fs.Arg(0))
	if err != nil {
		return err
	}
	evs, last, err := readEvents(fs.Arg(1))
	if err != nil {
		return err
	}
	to := last
	if *until != "" {
		if to, err = time.Parse(time.RFC3339, *until); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	out, _, err := engine.New(set, nil).Replay(evs, to)
	for _, a := range out {
		fmt.Fprintf(stdout, "%s  %-8s  %-22s  %-16s  risk %3d  %s\n", a.Time.UTC().Format(time.RFC3339),
			strings.ToUpper(string(a.Status)), a.Rule, a.CustomerID, a.RiskScore, strings.Join(a.Reasons, "; "))
	}
	fmt.Fprintf(stdout, "%d events, %d alerts, event time advanced to %s\n", len(evs), len(out), to.UTC().Format(time.RFC3339))
	return err
}

// readEvents reads one JSON event per line; each must carry its "type".
func readEvents(path string) ([]event.Event, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	var (
		evs  []event.Event
		last time.Time
		errs []error
	)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), event.MaxMessageBytes)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, err := event.Decode(line, event.Unknown, time.Now())
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", path, n, err))
			continue
		}
		if e.OccurredAt.After(last) {
			last = e.OccurredAt
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	return evs, last, errors.Join(errs...)
}
