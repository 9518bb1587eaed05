package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/device"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// afterWindow publishes m again as a client would once JetStream's dedupe
// window has passed: the same CloudEvent under another Nats-Msg-Id, or
// with none at all.
func afterWindow(tb testing.TB, js jetstream.JetStream, m *events.Message, msgID string) {
	tb.Helper()
	msg := bus.Msg(m)
	if msgID == "" {
		msg.Header.Del(nats.MsgIdHdr)
	} else {
		msg.Header.Set(nats.MsgIdHdr, msgID)
	}
	if _, err := js.PublishMsg(ctxFor(tb, 10*time.Second), msg); err != nil {
		tb.Fatal(err)
	}
}

// Ensure registering a SmartServer again with the same values is a repeat
// and with other values is refused saying what differs, and that its
// version changes only through set_version, which keeps licenses from
// going below 3.3 (issue 22, defect 2).
func TestRegisterDoesNotOverwrite(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, _ := mustClient(t, s.URL())
	f := mustFleet(t, c, "REG", 1)
	ic := f.servers[0]
	lid := mustLicense(t, c, f.customer, events.Capacity)
	mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid})
	ctx := ctxFor(t, 30*time.Second)

	tests := []struct {
		name   string
		t      events.Type
		data   events.Data
		reason events.Reason // "": accepted
		says   []string
	}{
		{"the same values again: a repeat", events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"}, "", nil},
		{"another name and version: refused", events.RegisterType, &events.Register{InstallCode: ic, Name: "OTHER", Version: "3.1"},
			events.ReasonAlreadyExists, []string{`name "SC-` + ic + `", not "OTHER"`, "version 3.4, not 3.1", "set-version"}},
		{"below 3.3 with a license active: refused", events.SetVersionType, &events.SetVersion{InstallCode: ic, Version: "3.1"}, events.ReasonLicensesActive, []string{"transfer"}},
		{"a newer version", events.SetVersionType, &events.SetVersion{InstallCode: ic, Version: "3.5"}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Do(ctx, tt.t, tt.data, client.SendOptions{})
			rej := events.AsRejection(err)
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("Do: %v, want accepted", err)
			case tt.reason != "" && (rej == nil || rej.Reason != tt.reason):
				t.Fatalf("Do: %v, want %s", err, tt.reason)
			}
			for _, s := range tt.says {
				if !strings.Contains(rej.Message, s) {
					t.Errorf("message %q does not say %q", rej.Message, s)
				}
			}
		})
	}
	var rows []struct {
		Name    string `json:"segment_controller"`
		Version string `json:"version"`
	}
	if err := c.Query(ctx, client.QueryAccounts, client.Params{}, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Name != "SC-"+ic || rows[0].Version != "3.5" {
		t.Fatalf("accounts %+v, want SC-%s at 3.5", rows, ic)
	}
}

// Ensure a command id used again for another command is refused with
// id_reused and recorded, within JetStream's dedupe window (the client
// tells) and after it or without a Nats-Msg-Id (the handler tells), while
// the id's first outcome stands (issue 22, defects 5 and 15).
func TestReusedCommandIDIsRefused(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, js := mustClient(t, s.URL())
	ctx := ctxFor(t, 30*time.Second)
	id := uuid.NewString()
	first, err := c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{Name: "A"}, client.SendOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}

	// Within the window: JetStream drops the second, the client refuses.
	_, err = c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{Name: "B"}, client.SendOptions{ID: id})
	if rej := events.AsRejection(err); rej == nil || rej.Reason != events.ReasonIDReused {
		t.Fatalf("same id, another name: %v, want id_reused", err)
	}
	r := cli(t, s.URL(), "customer", "create", "--name", "B", "--id", id)
	if r.code != exitRefused || !strings.Contains(r.err, "id_reused") {
		t.Fatalf("CLI: exit %d, stderr %q, want exit 1 and id_reused", r.code, r.err)
	}
	// The same command again is a repeat with the first outcome.
	again, err := c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{Name: "A"}, client.SendOptions{ID: id})
	if err != nil || again.EventID != first.EventID {
		t.Fatalf("repeat: %+v %v, want the first outcome %s", again, err, first.EventID)
	}

	// After the window, or with no Nats-Msg-Id: the handler refuses and
	// records it, and adds no second customer.
	for i, msgID := range []string{id + "-later", ""} {
		before := subjectCount(t, js, events.EventsStream, "lb.evt.rejected.>")
		m, err := events.NewCommand(events.CreateCustomerType, &events.CreateCustomer{Name: "C" + string(rune('0'+i))}, events.Meta{ID: id, Source: "/test"})
		if err != nil {
			t.Fatal(err)
		}
		afterWindow(t, js, m, msgID)
		for subjectCount(t, js, events.EventsStream, "lb.evt.rejected.>") == before {
			if ctx.Err() != nil {
				t.Fatalf("no rejection recorded for a reused id (Nats-Msg-Id %q)", msgID)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.customer.>"); n != 1 {
		t.Fatalf("customer events=%d, want 1", n)
	}
	var customers []struct {
		Name string `json:"name"`
	}
	if err := c.Query(ctx, client.QueryCustomers, client.Params{}, &customers); err != nil {
		t.Fatal(err)
	}
	if len(customers) != 1 || customers[0].Name != "A" {
		t.Fatalf("customers %+v, want only A", customers)
	}
}

// Ensure a command is handled only on the subject of its type and data:
// a license_add on a cloud subject with wildcard tokens, extra tokens or
// another verb is refused with subject_mismatch, and command data that is
// not UTF-8 is invalid_data (issue 22, defect 14).
func TestCommandsOnlyOnTheirSubject(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, js := mustClient(t, s.URL())
	cid := mustCustomer(t, c, "SUBJ")
	ctx := ctxFor(t, 60*time.Second)
	add := func() *events.Message {
		m, err := events.NewCommand(events.AddLicenseType, &events.AddLicense{CustomerID: cid, Kind: events.Capacity, Devices: 10}, events.Meta{ID: uuid.NewString(), Source: "/test"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name    string
		subject string
	}{
		{"wildcard token", "lb.cmd.cloud.*"},
		{"full wildcard token", "lb.cmd.cloud.>"},
		{"an extra token", "lb.cmd.cloud.license_add.extra"},
		{"another verb", "lb.cmd.cloud.customer_create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := add()
			msg := bus.Msg(m)
			msg.Subject = tt.subject
			if _, err := js.PublishMsg(ctx, msg); err != nil {
				return // refused by the server already: nothing handled
			}
			out, err := c.Wait(ctx, m.ID())
			if err != nil {
				t.Fatal(err)
			}
			if out.Reason != string(events.ReasonSubjectMismatch) {
				t.Fatalf("outcome %s %s, want rejected subject_mismatch", out.Status, out.Reason)
			}
		})
	}
	t.Run("data not UTF-8", func(t *testing.T) {
		id := uuid.NewString()
		h := binaryCE(string(events.CreateCustomerType), id)
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: "lb.cmd.cloud.customer_create", Header: h, Data: []byte("{\"name\":\"bad \xff\"}")}); err != nil {
			t.Fatal(err)
		}
		out, err := c.Wait(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if out.Reason != string(events.ReasonInvalidData) {
			t.Fatalf("outcome %s %s, want rejected invalid_data", out.Status, out.Reason)
		}
	})
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.license.>"); n != 0 {
		t.Fatalf("license events=%d, want none", n)
	}
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.customer.>"); n != 1 {
		t.Fatalf("customer events=%d, want 1", n)
	}
}

// Ensure a rollout start repeated after the dedupe window starts no second
// rollout (issue 22, defect 1; the CLI's part is TestRolloutStartRepeat).
func TestRolloutStartRepeatedAfterWindow(t *testing.T) {
	const window = 200 * time.Millisecond
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), DedupeWindow: window})
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "RRW", 2)
	for range 3 {
		mustLicense(t, c, f.customer, events.Capacity)
	}
	ctx := ctxFor(t, 60*time.Second)
	spec := events.RolloutSpec{Kind: events.RolloutActivate, CustomerID: f.customer, Targets: f.servers,
		Activate: []events.LicenseWant{{Kind: events.Capacity, Devices: 200}}}
	id := uuid.NewString()
	rid := events.DeriveID(id, "rollout")
	start := &events.StartRollout{RolloutID: rid, Spec: spec}
	if _, err := c.Do(ctx, events.StartRolloutType, start, client.SendOptions{ID: id, CorrelationID: rid}); err != nil {
		t.Fatal(err)
	}
	waitRollout(t, c, rid, "completed")
	time.Sleep(2 * window) // past both streams' windows: only licensebus can tell a repeat
	// The same command, and the same id with a rollout id of its own (as
	// the CLI sent it before it derived the rollout id from the command's).
	for i, again := range []*events.StartRollout{start, {RolloutID: uuid.NewString(), Spec: spec}} {
		m, err := events.NewCommand(events.StartRolloutType, again, events.Meta{ID: id, Source: "/test", CorrelationID: again.RolloutID})
		if err != nil {
			t.Fatal(err)
		}
		afterWindow(t, js, m, id+"-later-"+string(rune('0'+i)))
	}
	waitIdle(t, js, events.CommandsStream, "rollout-commands")
	waitIdle(t, js, events.CommandsStream, device.CommandsConsumer)
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.rollout.*.started"); n != 1 {
		t.Fatalf("rollouts started=%d, want 1", n)
	}
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.license.*.bound"); n != 2 {
		t.Fatalf("licenses bound=%d, want 2 (one per target)", n)
	}
}

// Ensure every command type repeated after JetStream's dedupe windows —
// the same CloudEvent published again, with no Nats-Msg-Id — has no
// second effect and gets its first outcome at once (issue 22, defect 1:
// the handled-set promise, for every command).
func TestEveryCommandRepeatedAfterWindow(t *testing.T) {
	const window = 200 * time.Millisecond
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), DedupeWindow: window})
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "AW", 1)
	ic := f.servers[0]
	lic := mustLicense(t, c, f.customer, events.Capacity)
	dev := uuid.NewString()
	rid := uuid.NewString()
	spec := events.RolloutSpec{Kind: events.RolloutTransfer, Targets: []string{ic}}
	tests := []struct {
		name string
		t    events.Type
		data events.Data
		corr string
	}{
		{"customer create", events.CreateCustomerType, &events.CreateCustomer{Name: "AW-2"}, ""},
		{"license add", events.AddLicenseType, &events.AddLicense{CustomerID: f.customer, Kind: events.Capacity, Devices: 5}, ""},
		{"register", events.RegisterType, &events.Register{InstallCode: "AW-NEW", Name: "new", Version: "3.4"}, ""},
		{"set customer id", events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: f.customer}, ""},
		{"download", events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}, ""},
		{"activate", events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lic}, ""},
		{"activate, refused", events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: uuid.NewString()}, ""},
		{"set version", events.SetVersionType, &events.SetVersion{InstallCode: ic, Version: "3.6"}, ""},
		{"add device", events.AddDeviceType, &events.AddDevice{InstallCode: ic, DeviceID: dev, Name: "AHU", Protocol: events.BACnet}, ""},
		{"add devices", events.AddDevicesType, &events.AddDevices{InstallCode: ic, Devices: []events.NewDevice{{Name: "x", Protocol: events.LON}}}, ""},
		{"provision device", events.ProvisionDeviceType, &events.ProvisionDevice{InstallCode: ic, DeviceID: dev}, ""},
		{"deprovision device", events.DeprovisionDeviceType, &events.DeprovisionDevice{InstallCode: ic, DeviceID: dev}, ""},
		{"provision devices", events.ProvisionDevicesType, &events.ProvisionDevices{InstallCode: ic, DeviceIDs: []string{dev}}, ""},
		{"remove device", events.RemoveDeviceType, &events.RemoveDevice{InstallCode: ic, DeviceID: dev}, ""},
		{"set auto provision", events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ic, Enabled: true}, ""},
		{"transfer to cloud", events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic}, ""},
		{"rollout start", events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: spec}, rid},
		{"rollout pause, refused", events.PauseRolloutType, &events.RolloutRef{RolloutID: uuid.NewString()}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxFor(t, 30*time.Second)
			id := uuid.NewString()
			first, err := c.Do(ctx, tt.t, tt.data, client.SendOptions{ID: id, CorrelationID: tt.corr})
			if err != nil && events.AsRejection(err) == nil {
				t.Fatal(err)
			}
			if tt.t == events.StartRolloutType {
				waitRollout(t, c, rid, "completed")
			}
			settle(t, js)
			before := subjectCount(t, js, events.EventsStream, "lb.evt.>")
			time.Sleep(2 * window)
			m, err := events.NewCommand(tt.t, tt.data, events.Meta{ID: id, Source: "/test", CorrelationID: tt.corr})
			if err != nil {
				t.Fatal(err)
			}
			afterWindow(t, js, m, "")
			settle(t, js)
			if after := subjectCount(t, js, events.EventsStream, "lb.evt.>"); after != before {
				t.Fatalf("events %d after the repeat, want %d: a second effect", after, before)
			}
			corr := tt.corr
			if corr == "" {
				corr = id
			}
			again, err := c.Wait(ctx, corr)
			if err != nil || again.EventID != first.EventID {
				t.Fatalf("outcome after the repeat %+v %v, want the first %s", again, err, first.EventID)
			}
		})
	}
}

// settle waits until every consumer and reactor has handled what the
// streams hold.
func settle(tb testing.TB, js jetstream.JetStream) {
	tb.Helper()
	for _, d := range []string{device.CommandsConsumer, "cloud-commands", "rollout-commands"} {
		waitIdle(tb, js, events.CommandsStream, d)
	}
	for _, r := range []string{"device-answers", "cloud-requests", "provisioner-triggers"} {
		waitReacted(tb, js, r)
	}
}

// Ensure a rollout does what its dry run showed: the licenses of the plan,
// labelled with their kind, go to the targets the plan gave them to; and a
// transfer's dry run lists the licenses each target gives back (issue 22,
// defect 11).
func TestDryRunPlanIsWhatRuns(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-PLAN")
	pool(t, c, cid, 6, 3)
	ics := registered(t, c, "PLAN", 3)
	file := targetsFile(t, ics)
	args := []string{"rollout", "start", "--customer", cid, "--targets", file, "--set-customer-id", "--activate", "capacity:200,maintenance"}

	var plan struct {
		Waves []struct {
			Targets []struct {
				InstallCode string   `json:"install_code"`
				LicenseIDs  []string `json:"license_ids"`
				Licenses    []struct {
					Kind string `json:"kind"`
				} `json:"licenses"`
			} `json:"targets"`
		} `json:"waves"`
	}
	mustJSON(t, url, &plan, append(args, "--dry-run")...)
	planned := map[string][]string{}
	for _, w := range plan.Waves {
		for _, tg := range w.Targets {
			if len(tg.Licenses) != 2 || tg.Licenses[0].Kind != events.Capacity || tg.Licenses[1].Kind != events.Maintenance {
				t.Fatalf("plan of %s: %+v, want a capacity and a maintenance license, labelled", tg.InstallCode, tg.Licenses)
			}
			planned[tg.InstallCode] = tg.LicenseIDs
		}
	}
	if table := mustCLI(t, url, append(args, "--dry-run")...); !strings.Contains(table, "(capacity 200)") || !strings.Contains(table, "(maintenance 200 until") {
		t.Fatalf("dry run table without kinds:\n%s", table)
	}

	id := mustCLI(t, url, args...)
	d := waitRollout(t, c, id, "completed")
	for _, tg := range d.Targets {
		if fmt.Sprint(tg.LicenseIDs) != fmt.Sprint(planned[tg.InstallCode]) {
			t.Errorf("%s got %v, the plan said %v", tg.InstallCode, tg.LicenseIDs, planned[tg.InstallCode])
		}
	}

	out := mustCLI(t, url, "rollout", "transfer", "--targets", file, "--dry-run")
	for _, ic := range ics {
		for _, lid := range planned[ic] {
			if !strings.Contains(out, lid) {
				t.Errorf("transfer dry run does not list %s of %s:\n%s", lid, ic, out)
			}
		}
	}
	if !strings.Contains(out, "gives back") {
		t.Errorf("transfer dry run does not say what is given back:\n%s", out)
	}
}

// Ensure what grows with commands is bounded by the horizon: the outcomes
// bucket keeps an outcome for it, and a command repeated after it is
// decided again by the rules, which give it no second effect (issue 21).
func TestHorizonBoundsWhatIsRemembered(t *testing.T) {
	const horizon = 2 * time.Second
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), Horizon: horizon, DedupeWindow: 200 * time.Millisecond})
	c, js := mustClient(t, s.URL())
	ctx := ctxFor(t, 30*time.Second)
	kv, err := js.KeyValue(ctx, "licensebus_view_outcomes")
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.TTL() != horizon {
		t.Fatalf("outcomes bucket TTL=%v, want the horizon %v", st.TTL(), horizon)
	}
	id := uuid.NewString()
	first, err := c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{Name: "H"}, client.SendOptions{ID: id})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(horizon + time.Second)
	mustCustomer(t, c, "later") // time moves on in the stream too
	_, err = c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{Name: "H"}, client.SendOptions{ID: id})
	if rej := events.AsRejection(err); rej == nil || rej.Reason != events.ReasonAlreadyExists {
		t.Fatalf("repeat after the horizon: %v, want already_exists (decided again, no second customer; first was %s)", err, first.EventID)
	}
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.customer.>"); n != 2 {
		t.Fatalf("customer events=%d, want 2 (H and later)", n)
	}
}

// Ensure the command's digest travels along its chain of reactions to its
// outcome: the crash-loop bench found outcomes written without it when
// serve restarted between a command's first event and its last (the view
// had kept the digest in memory only), so a rebuilt view differed.
func TestDigestFollowsTheChain(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "DIGEST", 1)
	lid := mustLicense(t, c, f.customer, events.Capacity)
	cmd := &events.ActivateLicense{InstallCode: f.servers[0], LicenseID: lid}
	want := events.CommandDigest(events.ActivateLicenseType, cmd)
	out := mustDo(t, c, events.ActivateLicenseType, cmd)
	if out.CommandDigest != want {
		t.Errorf("outcome command_digest %q, want %q", out.CommandDigest, want)
	}

	ctx := ctxFor(t, 30*time.Second)
	oc, err := js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var chain []events.Type
	for {
		raw, err := oc.Next(jetstream.FetchMaxWait(time.Second))
		if err != nil {
			break // the stream's end
		}
		m, err := events.Decode(raw.Headers(), raw.Data())
		if err != nil || m.CorrelationID() != out.CorrelationID {
			continue
		}
		chain = append(chain, m.Type())
		if got := m.CommandDigest(); got != want {
			t.Errorf("%s of the activation carries commanddigest %q, want %q", m.Type(), got, want)
		}
	}
	if len(chain) < 3 {
		t.Errorf("activation's chain %v, want the request, the binding and the activation", chain)
	}
}
