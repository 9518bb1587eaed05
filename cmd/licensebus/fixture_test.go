package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// mustJoin starts a licensebus process-equivalent that joins the NATS at
// url, as `licensebus serve --nats URL` does: with the signing keys of
// another node (--signing-key, as the nodes of a cluster share one key),
// or else keys of its own.
func mustJoin(tb testing.TB, url string, batch int, signingKeys ...string) *Server {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := ServeConfig{NatsURL: url, Batch: batch, Logger: testLogger(tb), SigningKeys: signingKeys}
	if len(signingKeys) == 0 {
		cfg.DataDir = tb.TempDir()
	}
	s, err := StartServer(ctx, cfg)
	if err != nil {
		tb.Fatalf("StartServer(--nats): %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func mustClient(tb testing.TB, url string) (*client.Client, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	c, err := client.New(context.Background(), nc, "test")
	if err != nil {
		tb.Fatalf("client: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return c, js
}

func ctxFor(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// mustDo sends a command and fails the test unless it is accepted.
func mustDo(tb testing.TB, c *client.Client, t events.Type, d events.Data) *licensing.Outcome {
	tb.Helper()
	out, err := c.Do(ctxFor(tb, 30*time.Second), t, d, client.SendOptions{})
	if err != nil {
		tb.Fatalf("%s %+v: %v", t, d, err)
	}
	return out
}

// fleet is a customer with SmartServers ready to activate: Customer ID set
// and licenses downloaded.
type fleet struct {
	customer string
	servers  []string
}

func mustFleet(tb testing.TB, c *client.Client, prefix string, n int) fleet {
	tb.Helper()
	f := fleet{customer: mustCustomer(tb, c, prefix)}
	for i := range n {
		ic := fmt.Sprintf("%s-%03d", prefix, i)
		mustDo(tb, c, events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"})
		mustDo(tb, c, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: f.customer})
		mustDo(tb, c, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic})
		f.servers = append(f.servers, ic)
	}
	return f
}

func mustCustomer(tb testing.TB, c *client.Client, name string) string {
	tb.Helper()
	out := mustDo(tb, c, events.CreateCustomerType, &events.CreateCustomer{Name: name})
	var d events.CustomerCreated
	mustUnmarshal(tb, out.Data, &d)
	return d.CustomerID
}

func mustLicense(tb testing.TB, c *client.Client, customer, kind string) string {
	tb.Helper()
	d := &events.AddLicense{CustomerID: customer, Kind: kind, Devices: 200}
	if kind == events.Maintenance {
		d.Expires = "2099-01-31"
	}
	out := mustDo(tb, c, events.AddLicenseType, d)
	var a events.LicenseAdded
	mustUnmarshal(tb, out.Data, &a)
	return a.LicenseID
}

// subjectCount counts the messages stored on subjects matching filter.
func subjectCount(tb testing.TB, js jetstream.JetStream, stream, filter string) uint64 {
	tb.Helper()
	ctx := ctxFor(tb, 10*time.Second)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		tb.Fatal(err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	if err != nil {
		tb.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

// waitIdle waits until a durable consumer has nothing pending or unacked:
// every message up to now has been handled.
func waitIdle(tb testing.TB, js jetstream.JetStream, stream, consumer string) {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	for {
		c, err := js.Consumer(ctx, stream, consumer)
		if err == nil {
			info, err := c.Info(ctx)
			if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("consumer %s never went idle", consumer)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitReacted waits until a reactor's checkpoint covers the whole event
// stream: everything in it has been reacted to.
func waitReacted(tb testing.TB, js jetstream.JetStream, reactor string) {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	for {
		last, err := bus.LastSeq(ctx, js, events.EventsStream)
		if err == nil {
			if kv, err := js.KeyValue(ctx, bus.ReactorsBucket); err == nil {
				if e, err := kv.Get(ctx, reactor); err == nil {
					if ck, _ := strconv.ParseUint(string(e.Value()), 10, 64); ck >= last {
						return
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("reactor %s never caught up with the event stream", reactor)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func mustUnmarshal(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("unmarshal %s: %v", b, err)
	}
}
