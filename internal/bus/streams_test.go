package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// largestCommands are the largest commands licensebus has a use for: a
// rollout start naming 10,000 SmartServers by install codes of the longest
// allowed length, and batches of events.MaxDeviceBatch devices.
func largestCommands(tb testing.TB) map[string]*nats.Msg {
	tb.Helper()
	meta := events.Meta{ID: uuid.NewString(), Source: "/licensebus/cli", Actor: "user:" + strings.Repeat("a", 64)}
	ic := func(i int) string { return fmt.Sprintf("%064d", i) }
	targets := make([]string, 10000)
	for i := range targets {
		targets[i] = ic(i)
	}
	devices := make([]events.NewDevice, events.MaxDeviceBatch)
	ids := make([]string, events.MaxDeviceBatch)
	for i := range devices {
		ids[i] = uuid.NewString()
		devices[i] = events.NewDevice{DeviceID: ids[i], Name: strings.Repeat("n", 255), Protocol: "bacnet"}
	}
	cmds := map[string]struct {
		t events.Type
		d events.Data
	}{
		"rollout start of 10,000 targets": {events.StartRolloutType, &events.StartRollout{RolloutID: uuid.NewString(), Spec: events.RolloutSpec{
			Kind: events.RolloutActivate, CustomerID: uuid.NewString(), Targets: targets, Concurrency: 50, WavePercents: []int{1, 10, 50, 100},
			Activate: []events.LicenseWant{{Kind: events.Capacity, Devices: 200}, {Kind: events.Maintenance}}}}},
		"add_devices of a full batch":       {events.AddDevicesType, &events.AddDevices{InstallCode: ic(1), Devices: devices}},
		"provision_devices of a full batch": {events.ProvisionDevicesType, &events.ProvisionDevices{InstallCode: ic(1), DeviceIDs: ids}},
	}
	out := map[string]*nats.Msg{}
	for name, c := range cmds {
		m, err := events.NewCommand(c.t, c.d, meta)
		if err != nil {
			tb.Fatalf("%s: %v", name, err)
		}
		out[name+" (structured)"], out[name+" (binary)"] = m.NATS(), m.Binary()
	}
	return out
}

func msgSize(m *nats.Msg) int {
	n := len(m.Data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

// Ensure the command stream takes the largest commands licensebus has a
// use for, with room to spare, and refuses anything over CommandMaxSize
// when it is published; and that a command stream created before the
// limit gets it.
func TestCommandsStreamRefusesOversizedCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := bustest.JetStream(t)
	str, err := js.Stream(ctx, events.CommandsStream)
	if err != nil {
		t.Fatal(err)
	}
	// As an older build created it: no limit.
	old := str.CachedInfo().Config
	old.MaxMsgSize = -1
	if _, err := js.UpdateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgSize != bus.CommandMaxSize {
		t.Fatalf("MaxMsgSize=%d after EnsureStreams, want %d", info.Config.MaxMsgSize, bus.CommandMaxSize)
	}
	for name, m := range largestCommands(t) {
		size := msgSize(m)
		t.Logf("%s: %d bytes", name, size)
		if size*3/2 > bus.CommandMaxSize {
			t.Errorf("%s: %d bytes leaves less than half again as much room below %d", name, size, bus.CommandMaxSize)
		}
		m.Header.Set(nats.MsgIdHdr, uuid.NewString())
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	over := &nats.Msg{Subject: "lb.cmd.cloud.customer_create", Data: make([]byte, bus.CommandMaxSize+1)}
	var apiErr *jetstream.APIError
	if _, err := js.PublishMsg(ctx, over); !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamMessageExceedsMaximum {
		t.Fatalf("publish of %d bytes: %v, want refused for its size", len(over.Data), err)
	}
}
