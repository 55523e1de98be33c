package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/churnwatch/churnwatch/processor"
	"github.com/churnwatch/churnwatch/topics"
)

func topicsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("topics", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c, err := parseConfig(fs, args, keys(kafkaKeys, []string{"group", "webhooks_group", "source_partitions", "internal_partitions", "replication", "internal_retention"})...)
	if err != nil {
		return err
	}
	kafka, err := c.kafka()
	if err != nil {
		return err
	}
	adm, err := topics.Open(kafka)
	if err != nil {
		return err
	}
	defer adm.Close()
	cfg := processor.Config{Kafka: kafka, Group: c.str("group"), SourcePartitions: c.int("source_partitions"), InternalPartitions: c.int("internal_partitions"),
		Replication: c.int("replication"), InternalRetention: c.dur("internal_retention")}
	lines, err := adm.Ensure(ctx, processor.TopicSpecs(cfg))
	for _, l := range lines {
		if l != "" {
			fmt.Fprintln(stdout, l)
		}
	}
	if err != nil {
		return err
	}
	lags, err := adm.Lags(ctx, c.str("group")+"-source", c.str("group"), c.str("webhooks_group"))
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nGROUP\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	for _, l := range lags {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\n", l.Group, l.Topic, l.Partition, l.Committed, l.End, l.Lag)
	}
	return tw.Flush()
}
