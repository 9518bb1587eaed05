package bus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/bustest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
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
		out[name+" (structured)"], out[name+" (binary)"] = bus.Msg(m), bus.BinaryMsg(m)
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

// Ensure ConfigDrift names each setting that differs from what serve
// creates, and nothing for the server's own spelling of a default.
func TestConfigDrift(t *testing.T) {
	want, _ := bus.WantedConfig(events.EventsStream)
	tests := []struct {
		name   string
		change func(*jetstream.StreamConfig)
		want   []string
	}{
		{"as created", func(*jetstream.StreamConfig) {}, nil},
		{"defaults spelled out", func(c *jetstream.StreamConfig) {
			c.MaxMsgs, c.MaxBytes, c.MaxMsgsPerSubject, c.MaxConsumers, c.MaxMsgSize, c.Replicas = -1, -1, -1, -1, -1, 1
			c.Description, c.Metadata = "changed", map[string]string{"_nats.ver": "2.15.2"}
		}, nil},
		{"subjects in another order", func(c *jetstream.StreamConfig) { c.Subjects = []string{events.AllEvents} }, nil},
		{"limits", func(c *jetstream.StreamConfig) { c.MaxMsgs, c.MaxAge = 100, time.Hour }, []string{
			"max_msgs is 100, serve creates -1", "max_age is 1h0m0s, serve creates 0s"}},
		{"deny flags", func(c *jetstream.StreamConfig) { c.DenyPurge, c.DenyDelete = false, false }, []string{
			"deny_delete is false, serve creates true", "deny_purge is false, serve creates true"}},
		{"subjects", func(c *jetstream.StreamConfig) { c.Subjects = append(c.Subjects, "lb.other.>") }, []string{
			"subjects is [lb.evt.> lb.other.>], serve creates [lb.evt.>]"}},
		{"storage and discard", func(c *jetstream.StreamConfig) { c.Storage, c.Discard = jetstream.MemoryStorage, jetstream.DiscardNew }, []string{
			"discard is DiscardNew, serve creates DiscardOld", "storage is Memory, serve creates File"}},
		{"a mirror", func(c *jetstream.StreamConfig) { c.Mirror = &jetstream.StreamSource{Name: "X"} }, []string{
			`mirror is {"name":"X"}, serve creates none`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := want
			have.Subjects = slices.Clone(want.Subjects)
			tt.change(&have)
			if got := bus.ConfigDrift(have, want); !slices.Equal(got, tt.want) {
				t.Fatalf("drift=%q, want %q", got, tt.want)
			}
		})
	}
}

// Ensure the streams as the server reports them show no drift, that
// CheckStream names what someone changed, and that EnsureStreams sets it
// back and says so at error level.
func TestEnsureStreamsSetsBackDrift(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := bustest.JetStream(t)
	for _, want := range bus.StreamConfigs() {
		st, err := bus.CheckStream(ctx, js, want)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Drift) > 0 {
			t.Fatalf("%s as created: drift %q", want.Name, st.Drift)
		}
	}
	want, _ := bus.WantedConfig(events.EventsStream)
	changed := want
	changed.MaxMsgs, changed.Subjects = 1000, []string{events.AllEvents, "lb.other.>"}
	if _, err := js.UpdateStream(ctx, changed); err != nil {
		t.Fatal(err)
	}
	st, err := bus.CheckStream(ctx, js, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Drift) != 2 {
		t.Fatalf("drift %q, want max_msgs and subjects", st.Drift)
	}
	var logged bytes.Buffer
	if err := bus.EnsureStreams(ctx, js, bus.ReportRepairs(zerolog.New(&logged))); err != nil {
		t.Fatal(err)
	}
	for _, d := range st.Drift {
		if !strings.Contains(logged.String(), `"level":"error"`) || !strings.Contains(logged.String(), d) {
			t.Errorf("no error line naming %q in %s", d, logged.String())
		}
	}
	if st, err = bus.CheckStream(ctx, js, want); err != nil || len(st.Drift) > 0 {
		t.Fatalf("after EnsureStreams: drift %q, %v", st.Drift, err)
	}
}

// Ensure PositionProblem tells a reader in step with its stream from one
// whose stream was created again or lost messages it had not read.
func TestPositionProblem(t *testing.T) {
	tests := []struct {
		name        string
		first, last uint64
		seq         uint64
		want        string
	}{
		{"new stream, nothing read", 0, 0, 0, ""},
		{"behind", 1, 10, 4, ""},
		{"at the end", 1, 10, 10, ""},
		{"purged after it was read", 11, 10, 10, ""},
		{"created again", 1, 2, 95, "S ends at seq 2, before seq 95 read already"},
		{"purged before it was read", 11, 10, 4, "S starts at seq 11: seqs 5-10 were removed before they were read"},
		{"first messages dropped", 50, 80, 10, "S starts at seq 50: seqs 11-49 were removed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := bus.PositionProblem("S", jetstream.StreamState{FirstSeq: tt.first, LastSeq: tt.last}, tt.seq)
			if (got == "") != (tt.want == "") || !strings.HasPrefix(got, tt.want) {
				t.Fatalf("problem %q, want %q", got, tt.want)
			}
		})
	}
}

// Ensure the command and event streams are created with dedupe windows
// that cover a retry and no more (every id of a window stays in the NATS
// server's memory), and that a stream an earlier build created with a
// longer window is set to this one.
func TestDedupeWindows(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js := bustest.JetStream(t)
	tests := []struct {
		stream string
		old    time.Duration // as an earlier build created it
		want   time.Duration
	}{
		{events.CommandsStream, 2 * time.Minute, 30 * time.Second},
		{events.EventsStream, time.Minute, 30 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.stream, func(t *testing.T) {
			s, err := js.Stream(ctx, tt.stream)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.CachedInfo().Config.Duplicates; got != tt.want {
				t.Fatalf("created with duplicate_window %s, want %s", got, tt.want)
			}
			cfg := s.CachedInfo().Config
			cfg.Duplicates = tt.old
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			var log bytes.Buffer
			if err := bus.EnsureStreams(ctx, js, bus.ReportRepairs(zerolog.New(&log))); err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := info.Config.Duplicates; got != tt.want {
				t.Fatalf("after EnsureStreams over a %s window: %s, want %s", tt.old, got, tt.want)
			}
			// An upgrade, not someone else's change: no error in the log.
			if strings.Contains(log.String(), `"level":"error"`) || !strings.Contains(log.String(), "earlier licensebus version") {
				t.Fatalf("log of the upgrade: %s", log.String())
			}
		})
	}
}
