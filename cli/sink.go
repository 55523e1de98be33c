package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/churnwatch/churnwatch/admin"
	"github.com/churnwatch/churnwatch/webhook"
)

// sinkCmd is `churnwatch webhook-sink`: a receiver that verifies Standard
// Webhooks deliveries and prints one line per delivery, for trying out an
// endpoint configuration or a secret rotation.
func sinkCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook-sink", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", env("sink_listen", "127.0.0.1:9000"), "address to listen on (CHURNWATCH_SINK_LISTEN)")
	secrets := fs.String("secret", env("sink_secret", ""), "whsec_ secrets, comma-separated; a delivery signed by any of them is accepted (CHURNWATCH_SINK_SECRET)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "webhook-sink: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	sink, err := newSink(*secrets, stdout, stderr)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	n := len(sink.Secrets)
	plural := "s"
	if n == 1 {
		plural = ""
	}
	fmt.Fprintf(stdout, "webhook-sink listening on http://%s (verifying %d secret%s)\n", ln.Addr(), n, plural)
	return admin.Serve(ctx, ln, sink)
}

// newSink returns the handler of webhook-sink: verified deliveries are
// printed to stdout, refused requests to stderr.
func newSink(secretList string, stdout, stderr io.Writer) (*webhook.Sink, error) {
	list := splitList(secretList)
	if len(list) == 0 {
		return nil, errors.New("--secret (or CHURNWATCH_SINK_SECRET) is required: the endpoint's whsec_ secrets, comma-separated")
	}
	s := &webhook.Sink{
		OnDelivery: func(d webhook.Delivery) { fmt.Fprintln(stdout, d.Line()) },
		OnReject: func(r *http.Request, status int, reason error) {
			fmt.Fprintf(stderr, "refused %s %s from %s: %d %s\n", r.Method, r.URL.Path, r.RemoteAddr, status,
				strings.TrimPrefix(reason.Error(), "webhook: "))
		},
	}
	for i, raw := range list {
		key, err := webhook.ParseSecret(raw)
		if err != nil {
			return nil, fmt.Errorf("--secret: secret %d of %d: %w", i+1, len(list), err)
		}
		s.Secrets = append(s.Secrets, key)
	}
	return s, nil
}
