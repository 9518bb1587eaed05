package main

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/nats-io/nats.go/jetstream"
)

// views captures every view the API serves, keyed by a readable name, so
// two captures can be compared whole.
func views(tb testing.TB, c *client.Client) map[string]any {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	out := map[string]any{}
	var accounts []licensing.AccountRow
	var customers []licensing.Customer
	var inventory []licensing.LicenseRow
	var fleet devices.Fleet
	for q, v := range map[string]any{client.QueryAccounts: &accounts, client.QueryCustomers: &customers, client.QueryInventory: &inventory, client.QueryFleet: &fleet} {
		if err := c.Query(ctx, q, client.Params{}, v); err != nil {
			tb.Fatalf("query %s: %v", q, err)
		}
		out[q] = v
	}
	for _, a := range accounts {
		for _, q := range []string{client.QueryDownloads, client.QueryManage, client.QueryDevices} {
			var rows []any
			err := c.Query(ctx, q, client.Params{InstallCode: a.InstallCode}, &rows)
			out[q+"/"+a.InstallCode] = fmt.Sprint(rows, err)
		}
	}
	return out
}

// buckets captures every entry of the read models' KV buckets.
func buckets(tb testing.TB, js jetstream.JetStream) map[string]string {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	out := map[string]string{}
	for _, m := range []projections.Model{licensing.New(nil), devices.New(), licensing.NewOutcomes()} {
		kv, err := js.KeyValue(ctx, projections.Bucket(m))
		if err != nil {
			tb.Fatal(err)
		}
		keys, err := kv.ListKeys(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		for k := range keys.Keys() {
			e, err := kv.Get(ctx, k)
			if err != nil {
				tb.Fatalf("get %s: %v", k, err)
			}
			out[m.Name()+"/"+k] = string(e.Value())
		}
	}
	return out
}

// caughtUp waits until the projections include every event stored.
func caughtUp(tb testing.TB, c *client.Client) {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	for {
		var st client.Status
		if err := c.Query(ctx, client.QueryStatus, client.Params{}, &st); err == nil {
			done := st.Applied >= st.EventsLastSeq
			for _, ck := range st.Checkpoints {
				done = done && ck >= st.EventsLastSeq
			}
			if done {
				return
			}
		}
		select {
		case <-ctx.Done():
			tb.Fatal("projections never caught up")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func diff(tb testing.TB, what string, got, want map[string]any) {
	tb.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	for k := range want {
		if !reflect.DeepEqual(got[k], want[k]) {
			tb.Errorf("%s %s:\n got %v\nwant %v", what, k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			tb.Errorf("%s: extra %s", what, k)
		}
	}
}

func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
