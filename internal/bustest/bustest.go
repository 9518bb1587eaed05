// Package bustest starts what tests of the JetStream plumbing need: a real
// embedded nats-server on a random port with a temporary file store and
// the licensebus streams. Only tests import it.
package bustest

import (
	"context"
	"testing"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// JetStream starts the server, connects to it and creates the streams; all
// of it stops when the test ends.
func JetStream(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: tb.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close(); ns.Shutdown(); ns.WaitForShutdown() })
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	if err := bus.EnsureStreams(context.Background(), js); err != nil {
		tb.Fatal(err)
	}
	return js
}
