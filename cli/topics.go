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
	brokers := fs.String("brokers", env("brokers", "localhost:9092"), "Kafka brokers (CHURNWATCH_BROKERS)")
	group := fs.String("group", env("group", "churnwatch"), "consumer group (CHURNWATCH_GROUP)")
	whGroup := fs.String("webhooks-group", env("webhooks_group", "churnwatch-webhooks"), "consumer group of the webhook dispatcher (CHURNWATCH_WEBHOOKS_GROUP)")
	parts := fs.Int("partitions", 3, "partitions of newly created source and alert topics")
	internal := fs.Int("internal-partitions", 12, "partitions of a newly created internal topic")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	adm, err := topics.NewAdmin(splitList(*brokers))
	if err != nil {
		return err
	}
	defer adm.Close()
	cfg := processor.Config{Brokers: splitList(*brokers), Group: *group, SourcePartitions: *parts, InternalPartitions: *internal}
	lines, err := adm.Ensure(ctx, processor.TopicSpecs(cfg))
	for _, l := range lines {
		if l != "" {
			fmt.Fprintln(stdout, l)
		}
	}
	if err != nil {
		return err
	}
	lags, err := adm.Lags(ctx, *group+"-source", *group, *whGroup)
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
