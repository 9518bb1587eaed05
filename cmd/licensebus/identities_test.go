package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
)

// issue issues credentials with the CLI as the server's admin and returns
// the creds file.
func issue(tb testing.TB, url, role, name string, extra ...string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), name+".creds")
	mustCLI(tb, url, append([]string{"creds", "issue", role, name, "--out", path}, extra...)...)
	return path
}

// cliAs runs the CLI against url with a creds file.
func cliAs(tb testing.TB, url, creds string, args ...string) result {
	tb.Helper()
	return cli(tb, url, append([]string{"--creds", creds}, args...)...)
}

// connectAs opens a plain NATS connection as the holder of a creds file,
// as any NATS client would.
func connectAs(tb testing.TB, url, creds string, opts ...nats.Option) *nats.Conn {
	tb.Helper()
	nc, err := nats.Connect(url, append(append(mustCredsOptions(tb, creds), nats.NoReconnect(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})), opts...)...)
	if err != nil {
		tb.Fatalf("connect with %s: %v", creds, err)
	}
	tb.Cleanup(nc.Close)
	return nc
}

// An act is something an identity tries on the bus.
type act func(ctx context.Context, nc *nats.Conn) error

func publish(subject string) act {
	return func(_ context.Context, nc *nats.Conn) error { return nc.Publish(subject, []byte(`{}`)) }
}

func request(subject, body string) act {
	return func(ctx context.Context, nc *nats.Conn) error {
		_, err := nc.RequestWithContext(ctx, subject, []byte(body))
		return err
	}
}

func subscribe(subject string) act {
	return func(_ context.Context, nc *nats.Conn) error {
		_, err := nc.SubscribeSync(subject)
		return err
	}
}

func ask(query string, p client.Params) act {
	return func(ctx context.Context, nc *nats.Conn) error {
		c, err := client.New(ctx, nc, "test")
		if err != nil {
			return err
		}
		return c.Query(ctx, query, p, nil)
	}
}

// command sends a command and waits for its outcome; a rejection is an
// outcome: the command got through.
func command(t events.Type, d events.Data) act {
	return func(ctx context.Context, nc *nats.Conn) error {
		c, err := client.New(ctx, nc, "test")
		if err != nil {
			return err
		}
		_, err = c.Do(ctx, t, d, client.SendOptions{})
		if events.AsRejection(err) != nil {
			return nil
		}
		return err
	}
}

// read reads the first message of a stream on a filter.
func read(stream, filter string) act {
	return func(ctx context.Context, nc *nats.Conn) error {
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
		if err != nil {
			return err
		}
		_, err = cons.Next(jetstream.FetchContext(ctx))
		return err
	}
}

func kvGet(bucket, key string) act {
	return func(ctx context.Context, nc *nats.Conn) error {
		js, _ := jetstream.New(nc)
		kv, err := js.KeyValue(ctx, bucket)
		if err != nil {
			return err
		}
		_, err = kv.Get(ctx, key)
		return err
	}
}

// snapshot is what a refused act must leave as it was: every stream's
// last sequence (but the audit heads' and the leases', written on
// timers) and the
// consumers of the command stream.
func snapshot(tb testing.TB, js jetstream.JetStream) string {
	tb.Helper()
	ctx := ctxFor(tb, 10*time.Second)
	var b strings.Builder
	names := js.StreamNames(ctx)
	var all []string
	for n := range names.Name() {
		all = append(all, n)
	}
	slices.Sort(all)
	for _, n := range all {
		if n == audit.CheckpointStream || n == "KV_"+elect.Bucket {
			continue // written on timers: the audit heads, the job leases
		}
		s, err := js.Stream(ctx, n)
		if err != nil {
			tb.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "%s last=%d msgs=%d consumers=%d\n", n, info.State.LastSeq, info.State.Msgs, info.State.Consumers)
	}
	cmds, err := js.Stream(ctx, events.CommandsStream)
	if err != nil {
		tb.Fatal(err)
	}
	cons := cmds.ConsumerNames(ctx)
	var cs []string
	for c := range cons.Name() {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	fmt.Fprintf(&b, "command consumers %v\n", cs)
	return b.String()
}

// Ensure the NATS server gives each identity exactly its part: every
// allowed act of a role works, every forbidden one is refused by the
// server itself (a permission violation on the connection, counted by
// serve) and leaves every stream as it was.
func TestIdentitiesOnTheBus(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	svc := mustService(t, url)
	cid := mustCustomer(t, c, "P-ROLES")
	lid := mustLicense(t, c, cid, events.Capacity)
	for _, ic := range []string{"IC-A", "IC-B"} {
		mustDo(t, c, events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"})
		mustDo(t, c, events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: cid})
	}
	// An outcome of IC-B's, whose correlation id IC-A might have learnt.
	otherOut := mustDo(t, c, events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: "IC-B"})

	creds := map[string]string{
		"smartserver IC-A": issue(t, url, "smartserver", "IC-A"),
		"reader":           issue(t, url, "reader", "audit-team"),
		"operator":         issue(t, url, "operator", "alice"),
	}
	icA := "smartserver IC-A"
	allowed := []struct {
		who, what string
		do        act
	}{
		{icA, "send its own command", command(events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: "IC-A"})},
		{icA, "activate a license on itself", command(events.ActivateLicenseType, &events.ActivateLicense{InstallCode: "IC-A", LicenseID: lid})},
		{icA, "ask its Manage Licenses view", ask(client.QueryManage, client.Params{InstallCode: "IC-A"})},
		{icA, "ask its devices", ask(client.QueryDevices, client.Params{InstallCode: "IC-A"})},
		{icA, "hear its own events live", subscribe("lb.evt.smartserver.IC-A.>")},
		{"reader", "read the events", read(events.EventsStream, "lb.evt.smartserver.IC-B.>")},
		{"reader", "read the audit trail", read(audit.Stream, audit.Subject)},
		{"reader", "read the commands, as audit verify does", read(events.CommandsStream, "lb.cmd.>")},
		{"reader", "read a view", kvGet("licensebus_view_licensing", "license."+lid)},
		{"reader", "ask a fleet view", ask(client.QueryCustomers, client.Params{})},
		{"reader", "ask a SmartServer's view", ask(client.QueryManage, client.Params{InstallCode: "IC-B"})},
		{"reader", "wait for any outcome", ask(client.QueryOutcome, client.Params{CorrelationIDs: []string{otherOut.CorrelationID}})},
		{"reader", "hear every event live", subscribe("lb.evt.>")},
		{"operator", "send a cloud command", command(events.CreateCustomerType, &events.CreateCustomer{Name: "by alice"})},
		{"operator", "send any SmartServer's command", command(events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: "IC-B"})},
		{"operator", "list the credentials", ask(client.QueryCredsList, client.Params{})},
		{"operator", "read the audit trail", read(audit.Stream, audit.Subject)},
	}
	for _, tt := range allowed {
		t.Run(tt.who+" may "+tt.what, func(t *testing.T) {
			nc := connectAs(t, url, creds[tt.who])
			if err := tt.do(ctxFor(t, 20*time.Second), nc); err != nil {
				t.Fatalf("refused: %v", err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := nc.LastError(); err != nil {
				t.Fatalf("the server refused: %v", err)
			}
		})
	}

	caughtUp(t, c)
	waitAudited(t, svc)
	for _, r := range []string{"cloud-requests", "device-answers", "provisioner-triggers"} {
		waitReacted(t, svc, r)
	}
	before := snapshot(t, svc)
	violations := s.Refusals().Permissions()

	forbidden := []struct {
		who, what string
		do        act
	}{
		{icA, "send another SmartServer's command", publish("lb.cmd.device.IC-B.download_licenses")},
		{icA, "send a cloud command", publish("lb.cmd.cloud.customer_create")},
		{icA, "publish an event", publish("lb.evt.license." + lid + ".bound")},
		{icA, "publish a rejection", publish("lb.evt.rejected.smartserver.IC-A")},
		{icA, "publish an audit entry", publish(audit.Subject)},
		{icA, "publish a dead letter", publish("lb.dlq.commands")},
		{icA, "write a view", publish("$KV.licensebus_view_licensing.license." + lid)},
		{icA, "ask another SmartServer's view", ask(client.QueryManage, client.Params{InstallCode: "IC-B"})},
		{icA, "ask a fleet view", ask(client.QueryAccounts, client.Params{})},
		{icA, "read another SmartServer's events", read(events.EventsStream, "lb.evt.smartserver.IC-B.>")},
		{icA, "hear another SmartServer's events", subscribe("lb.evt.smartserver.IC-B.>")},
		{icA, "read the audit trail", read(audit.Stream, audit.Subject)},
		{icA, "read another's replies", subscribe("_INBOX.lb.audit-team.>")},
		{icA, "delete a stream", request("$JS.API.STREAM.DELETE."+events.EventsStream, "")},
		{icA, "delete a consumer", request("$JS.API.CONSUMER.DELETE."+events.CommandsStream+".device-commands", "")},
		{icA, "issue credentials", ask(client.QueryCredsList, client.Params{})},
		{"reader", "send a command", publish("lb.cmd.device.IC-A.transfer_to_cloud")},
		{"reader", "send a cloud command", publish("lb.cmd.cloud.license_add")},
		{"reader", "rebuild the views", ask(client.QueryRebuild, client.Params{})},
		{"reader", "publish an event", publish("lb.evt.license." + lid + ".released")},
		{"reader", "write a view", publish("$KV.licensebus_view_devices.devices.IC-A")},
		{"reader", "create a stream", request("$JS.API.STREAM.CREATE.MINE", `{"name":"MINE","subjects":["lb.evt.>"]}`)},
		{"reader", "delete a stream", request("$JS.API.STREAM.DELETE."+audit.Stream, "")},
		{"reader", "purge the dead letters", request("$JS.API.STREAM.PURGE."+events.DeadLettersStream, "")},
		{"reader", "take a handler's commands", request("$JS.API.CONSUMER.MSG.NEXT."+events.CommandsStream+".device-commands", `{"batch":1}`)},
		{"reader", "change a handler's consumer", request("$JS.API.CONSUMER.CREATE."+events.CommandsStream+".device-commands.lb.cmd.device.>", `{}`)},
		{"reader", "delete a handler's consumer", request("$JS.API.CONSUMER.DELETE."+events.CommandsStream+".cloud-commands", "")},
		{"reader", "read the credentials' record", read("KV_"+auth.CredsBucket, "$KV."+auth.CredsBucket+".>")},
		{"operator", "publish an event", publish("lb.evt.customer." + cid + ".created")},
		{"operator", "publish an audit entry", publish(audit.Subject)},
		{"operator", "write a view", publish("$KV.licensebus_view_outcomes.x")},
		{"operator", "delete a stream", request("$JS.API.STREAM.DELETE."+events.CommandsStream, "")},
		{"operator", "change a stream", request("$JS.API.STREAM.UPDATE."+events.EventsStream, `{"name":"LICENSEBUS_EVENTS","subjects":["lb.>"]}`)},
		{"operator", "delete a handler's consumer", request("$JS.API.CONSUMER.DELETE."+events.CommandsStream+".rollout-commands", "")},
		{"operator", "delete a KV bucket", request("$JS.API.STREAM.DELETE.KV_licensebus_view_licensing", "")},
	}
	for _, tt := range forbidden {
		t.Run(tt.who+" may not "+tt.what, func(t *testing.T) {
			nc := connectAs(t, url, creds[tt.who])
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = tt.do(ctx, nc) // a refused request only times out here
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			if err := nc.LastError(); !errors.Is(err, nats.ErrPermissionViolation) {
				t.Fatalf("not refused by the server (last error %v)", err)
			}
		})
	}
	if after := snapshot(t, svc); after != before {
		t.Errorf("refused acts changed the streams:\nbefore\n%s\nafter\n%s", before, after)
	}
	waitFor(t, func() bool { return s.Refusals().Permissions()-violations >= uint64(len(forbidden)) })

	// Connections without credentials are refused, and counted.
	if _, err := nats.Connect(url); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without credentials: %v", err)
	}
	waitFor(t, func() bool { return s.Refusals().Connections() >= 1 })
	// The metrics export both counts.
	exported := map[string]float64{}
	families, err := s.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "," + l.GetValue()
			}
			exported[name] += m.GetCounter().GetValue()
		}
	}
	if v := exported["licensebus_permission_violations_total,publish"] + exported["licensebus_permission_violations_total,subscribe"]; v < float64(len(forbidden)) {
		t.Errorf("licensebus_permission_violations_total = %v, want >= %d", v, len(forbidden))
	}
	if v := exported["licensebus_refused_connections_total"]; v < 1 {
		t.Errorf("licensebus_refused_connections_total = %v, want >= 1", v)
	}

	// The outcome of IC-B's command is not IC-A's to read.
	nc := connectAs(t, url, creds[icA])
	ac, _ := client.New(context.Background(), nc, "test")
	if _, err := ac.WaitFor(ctxFor(t, 10*time.Second), "IC-A", otherOut.CorrelationID); err == nil || !strings.Contains(err.Error(), "permission_denied") {
		t.Fatalf("IC-A waiting for IC-B's outcome: %v, want permission_denied", err)
	}
}

// Ensure the CLI with a SmartServer's credentials does what the technician
// does in its Manage Licenses dialog, for that SmartServer only: every
// other command exits 1 with permission_denied.
func TestSmartServerCredentialsInTheCLI(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "P-CLI")
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-0002", "--version", "3.4")
	ic := issue(t, url, "smartserver", "IC-0001", "--expires", "8760h")
	mustCLI(t, url, "--creds", ic, "smartserver", "register", "--install-code", "IC-0001", "--version", "3.4")
	mustCLI(t, url, "--creds", ic, "smartserver", "set-customer-id", "IC-0001", cid)
	mustCLI(t, url, "--creds", ic, "smartserver", "download-licenses", "IC-0001")
	mustCLI(t, url, "--creds", ic, "device", "add", "IC-0001", "--protocol", "lon", "--name", "AHU-1")
	mustCLI(t, url, "--creds", ic, "device", "list", "IC-0001")
	mustCLI(t, url, "--creds", ic, "smartserver", "licenses", "IC-0001")

	for _, args := range [][]string{
		{"smartserver", "licenses", "IC-0002"},
		{"smartserver", "set-customer-id", "IC-0002", cid},
		{"device", "add", "IC-0002", "--protocol", "lon"},
		{"smartserver", "accounts"},
		{"customer", "create", "--name", "not mine"},
		{"customer", "list"},
		{"license", "add", "--customer", cid, "--kind", "capacity", "--devices", "10"},
		{"rollout", "list"},
		{"audit", "tail"},
		{"creds", "list"},
		{"projections", "rebuild"},
	} {
		r := cliAs(t, url, ic, args...)
		if r.code != exitRefused || !strings.Contains(r.err, "permission_denied: ") {
			t.Errorf("%v as IC-0001: exit %d, stderr %q; want exit 1 and permission_denied", args, r.code, r.err)
		}
	}
	// A reader reads and sends nothing.
	reader := issue(t, url, "reader", "audit-team")
	mustCLI(t, url, "--creds", reader, "audit", "tail", "-n", "3")
	mustCLI(t, url, "--creds", reader, "customer", "list")
	if r := cliAs(t, url, reader, "customer", "create", "--name", "x"); r.code != exitRefused || !strings.Contains(r.err, "permission_denied: ") {
		t.Errorf("customer create as a reader: exit %d, stderr %q", r.code, r.err)
	}

	// The credentials are listed, with their role, install code and expiry.
	var recs []auth.Record
	mustJSON(t, url, &recs, "creds", "list")
	byName := map[string]auth.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	if r := byName["IC-0001"]; r.Role != auth.SmartServer || r.InstallCode != "IC-0001" || r.Expires == nil || r.Revoked || !strings.HasPrefix(r.PublicKey, "U") {
		t.Errorf("record of IC-0001: %+v", r)
	}
	if r := byName["admin"]; r.Role != auth.Operator {
		t.Errorf("record of admin: %+v", r)
	}
	// One name, one set of live credentials.
	if r := cli(t, url, "creds", "issue", "smartserver", "IC-0001", "--out", filepath.Join(t.TempDir(), "again.creds")); r.code != exitRefused || !strings.Contains(r.err, "already_exists") {
		t.Errorf("second issue: exit %d, stderr %q", r.code, r.err)
	}
	if r := cli(t, url, "creds", "issue", "smartserver", "IC-0001", "--out", ic); r.code != exitUsage {
		t.Errorf("issue over an existing file: exit %d, stderr %q; want a usage error", r.code, r.err)
	}
}

// Ensure a refused connection says why and names the credentials: none,
// a file that cannot be read, a malformed or tampered one, a revoked one,
// an expired one (exit 3).
func TestRefusedConnections(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	dir := t.TempDir()
	good := issue(t, url, "reader", "r1")
	b, _ := os.ReadFile(good)
	c, _ := auth.ReadCreds(good)
	payload := strings.Split(c.JWT, ".")[1]
	flip := "A"
	if payload[20] == 'A' {
		flip = "B"
	}
	tampered := filepath.Join(dir, "tampered.creds")
	_ = os.WriteFile(tampered, []byte(strings.Replace(string(b), payload, payload[:20]+flip+payload[21:], 1)), 0o600)
	garbage := filepath.Join(dir, "garbage.creds")
	_ = os.WriteFile(garbage, []byte("not credentials\n"), 0o600)
	unreadable := filepath.Join(dir, "missing.creds")
	revoked := issue(t, url, "smartserver", "IC-R")
	mustCLI(t, url, "creds", "revoke", "IC-R")
	expired := issue(t, url, "smartserver", "IC-E", "--expires", "1s")
	time.Sleep(2 * time.Second)

	for _, tt := range []struct {
		name, creds string
		want        []string
	}{
		{"no credentials", "", []string{"authorization violation", "--creds", "NATS_CREDS"}},
		{"unreadable file", unreadable, []string{unreadable, "no such file"}},
		{"not a creds file", garbage, []string{garbage, "no user JWT"}},
		{"tampered JWT", tampered, []string{tampered, "user JWT is not valid"}},
		{"revoked", revoked, []string{revoked, "authorization violation", "smartserver IC-R"}},
		{"expired", expired, []string{expired, "expired"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) string {
				if k == "NATS_URL" {
					return url
				}
				return ""
			}
			args := []string{"customer", "list"}
			if tt.creds != "" {
				args = append([]string{"--creds", tt.creds}, args...)
			}
			var out, errb strings.Builder
			code := run(ctxFor(t, 30*time.Second), args, strings.NewReader(""), &out, &errb, env)
			if code != exitInternal {
				t.Fatalf("exit %d, stderr %q; want 3", code, errb.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(strings.ToLower(errb.String()), strings.ToLower(w)) {
					t.Errorf("stderr %q lacks %q", errb.String(), w)
				}
			}
		})
	}
	// The server, not only the CLI, refuses the tampered file.
	tc := &auth.Creds{JWT: strings.Replace(c.JWT, payload, payload[:20]+flip+payload[21:], 1), Seed: c.Seed, Claims: c.Claims}
	if _, err := nats.Connect(url, credsOptions(tc)...); !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("the server took a tampered JWT: %v", err)
	}
}

// Ensure revoking a connected SmartServer closes its connection within 2 s
// and refuses it from then on; its name can be issued again.
func TestRevokeConnectedSmartServer(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	ic := issue(t, url, "smartserver", "IC-0001")
	closed := make(chan struct{})
	nc := connectAs(t, url, ic, nats.ClosedHandler(func(*nats.Conn) { close(closed) }))
	if _, err := nc.SubscribeSync("lb.evt.smartserver.IC-0001.>"); err != nil {
		t.Fatal(err)
	}
	var r credsRevoked
	mustJSON(t, url, &r, "creds", "revoke", "IC-0001")
	if !r.Revoked || r.RevokedAt == nil || r.Note != "" {
		t.Fatalf("revoke answered %+v", r)
	}
	select {
	case <-closed:
	case <-time.After(2 * time.Second):
		t.Fatal("the revoked SmartServer is still connected after 2s")
	}
	if r := cliAs(t, url, ic, "smartserver", "licenses", "IC-0001"); r.code != exitInternal || !strings.Contains(r.err, ic) {
		t.Fatalf("CLI with revoked credentials: exit %d, stderr %q", r.code, r.err)
	}
	var recs []auth.Record
	mustJSON(t, url, &recs, "creds", "list")
	if i := slices.IndexFunc(recs, func(r auth.Record) bool { return r.Name == "IC-0001" }); i < 0 || !recs[i].Revoked {
		t.Fatalf("creds list after revoke: %+v", recs)
	}
	again := issue(t, url, "smartserver", "IC-0001")
	mustCLI(t, url, "--creds", again, "smartserver", "register", "--install-code", "IC-0001", "--version", "3.4")
}

// Ensure the manual works end to end with identities: the operator does
// the cloud's steps (customers, licenses, credentials, the fleet's
// accounts view), each SmartServer its own with its own credentials.
func TestManualWalkthroughWithIdentities(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "P2022-0208")
	capID := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "200")
	mntID := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "maintenance", "--devices", "200", "--expires", "2099-12-31")
	ic1 := issue(t, url, "smartserver", "IC-0001")
	ic2 := issue(t, url, "smartserver", "IC-0002")

	mustCLI(t, url, "--creds", ic1, "smartserver", "register", "--install-code", "IC-0001", "--name", "SC-01", "--version", "3.4")
	mustCLI(t, url, "--creds", ic2, "smartserver", "register", "--install-code", "IC-0002", "--name", "SC-02", "--version", "3.5")
	mustCLI(t, url, "--creds", ic1, "smartserver", "set-customer-id", "IC-0001", cid)
	var accounts []struct {
		InstallCode string `json:"install_code"`
		CustomerID  string `json:"customer_id"`
	}
	mustJSON(t, url, &accounts, "smartserver", "accounts")
	if len(accounts) != 2 || accounts[0].InstallCode != "IC-0001" || accounts[0].CustomerID != cid {
		t.Fatalf("accounts=%+v", accounts)
	}
	var dl, ml []licenseJSON
	mustJSON(t, url, &dl, "--creds", ic1, "smartserver", "download-licenses", "IC-0001")
	if len(dl) != 2 {
		t.Fatalf("download list=%+v, want both licenses", dl)
	}
	mustCLI(t, url, "--creds", ic1, "smartserver", "activate", "IC-0001", capID, mntID)
	mustJSON(t, url, &ml, "--creds", ic1, "smartserver", "licenses", "IC-0001")
	if got := ids(ml); len(ml) != 2 || got[capID].Status != "Active" || got[mntID].Status != "Active" {
		t.Fatalf("manage licenses=%+v, want both Active", ml)
	}
	mustCLI(t, url, "--creds", ic1, "smartserver", "transfer-to-cloud", "IC-0001", "--yes")
	mustJSON(t, url, &dl, "--creds", ic1, "smartserver", "download-licenses", "IC-0001")
	if len(dl) != 2 {
		t.Fatalf("download list after transfer=%+v, want both back", dl)
	}
	mustCLI(t, url, "--creds", ic2, "smartserver", "set-customer-id", "IC-0002", cid)
	mustCLI(t, url, "--creds", ic2, "smartserver", "download-licenses", "IC-0002")
	mustCLI(t, url, "--creds", ic2, "smartserver", "activate", "IC-0002", capID, mntID)
	if r := cliAs(t, url, ic1, "smartserver", "activate", "IC-0001", capID); r.code != exitRefused || !strings.Contains(r.err, "license_already_active") {
		t.Fatalf("activate elsewhere: exit %d stderr %q", r.code, r.err)
	}
	// Each sees its own dialog only.
	if r := cliAs(t, url, ic1, "smartserver", "licenses", "IC-0002"); r.code != exitRefused || !strings.Contains(r.err, "permission_denied") {
		t.Fatalf("IC-0001 reading IC-0002's licenses: exit %d stderr %q", r.code, r.err)
	}
}

// Ensure serve --no-auth runs the embedded server open to anyone, as
// before identities, and says so loudly.
func TestServeNoAuth(t *testing.T) {
	dir, addr := t.TempDir(), freeAddr(t)
	url := "nats://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--no-auth", "--data", dir, "--listen", addr, "--http", "127.0.0.1:0"}, strings.NewReader(""), &syncBuffer{}, &stderr, func(string) string { return "" })
	}()
	defer func() {
		cancel()
		if code := <-done; code != exitOK {
			t.Errorf("serve --no-auth exit %d: %s", code, stderr.String())
		}
	}()
	waitFor(t, func() bool { return cli(t, url, "projections", "status").code == exitOK })
	if !strings.Contains(stderr.String(), "AUTH IS OFF") || !strings.Contains(stderr.String(), `"level":"warn"`) {
		t.Errorf("serve --no-auth did not warn:\n%s", stderr.String())
	}
	cid := mustCLI(t, url, "customer", "create", "--name", "open")
	mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "1")
	if _, err := os.Stat(filepath.Join(dir, adminCredsFile)); err == nil {
		t.Error("serve --no-auth wrote admin.creds")
	}
	if r := cli(t, url, "creds", "list"); r.code != exitRefused || !strings.Contains(r.err, "--no-auth") {
		t.Errorf("creds list without auth: exit %d, stderr %q", r.code, r.err)
	}
}

// externalNATS is a NATS server its operator set up for licensebus, as
// docs/identities.md tells (nsc or the server config): a licensebus
// account with JetStream, one scoped signing key per role with the
// templates of creds roles, and a service user for serve.
type externalNATS struct {
	url, account, service string
	seeds                 map[auth.Role]string // seed files of the scoped signing keys
}

func startExternalNATS(t *testing.T) externalNATS {
	t.Helper()
	dir := t.TempDir()
	op, _ := nkeys.CreateOperator()
	sys, _ := nkeys.CreateAccount()
	acc, _ := nkeys.CreateAccount()
	opPub, _ := op.PublicKey()
	sysPub, _ := sys.PublicKey()
	accPub, _ := acc.PublicKey()
	oc := jwt.NewOperatorClaims(opPub)
	oc.SystemAccount = sysPub
	ac := jwt.NewAccountClaims(accPub)
	ac.Name = "licensebus"
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	x := externalNATS{account: accPub, seeds: map[auth.Role]string{}}
	for _, r := range auth.Roles {
		sk, _ := nkeys.CreateAccount()
		pub, _ := sk.PublicKey()
		ac.SigningKeys.AddScopedSigner(auth.Scope(r, pub))
		seed, _ := sk.Seed()
		x.seeds[r] = filepath.Join(dir, string(r)+"-sk.nk")
		if err := os.WriteFile(x.seeds[r], seed, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	accJWT, err := ac.Encode(op)
	if err != nil {
		t.Fatal(err)
	}
	sysJWT, _ := jwt.NewAccountClaims(sysPub).Encode(op)
	// The service: a user of the account's own key, without restrictions.
	svc, _ := nkeys.CreateUser()
	svcPub, _ := svc.PublicKey()
	uc := jwt.NewUserClaims(svcPub)
	uc.Name = "licensebus-serve"
	svcJWT, _ := uc.Encode(acc)
	svcSeed, _ := svc.Seed()
	x.service = filepath.Join(dir, "serve.creds")
	if err := auth.WriteCreds(x.service, svcJWT, svcSeed); err != nil {
		t.Fatal(err)
	}
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:-1", Logger: testLogger(t), Configure: func(o *server.Options) {
		r := &server.MemAccResolver{}
		_ = r.Store(sysPub, sysJWT)
		_ = r.Store(accPub, accJWT)
		o.TrustedOperators, o.AccountResolver, o.SystemAccount = []*jwt.OperatorClaims{oc}, r, sysPub
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	x.url = ns.ClientURL()
	return x
}

// Ensure serve joins a NATS its operator runs as the service (--creds),
// and the CLI signs users there with the account's scoped signing keys
// (--account-seed): the server enforces the roles as with the embedded
// one, serve records the credentials, and a revocation says what the
// operator must push.
func TestJoinExternalNATS(t *testing.T) {
	x := startExternalNATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := StartServer(ctx, ServeConfig{NatsURL: x.url, Creds: x.service, DataDir: t.TempDir(), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("serve --nats --creds: %v", err)
	}
	defer s.Close()
	url, dir := x.url, t.TempDir()

	// The first operator is signed before anyone can record it.
	alice := filepath.Join(dir, "alice.creds")
	r := cli(t, url, "creds", "issue", "operator", "alice", "--account-seed", x.seeds[auth.Operator], "--account", x.account, "--out", alice)
	if r.code != exitOK || !strings.Contains(r.err, "not in licensebus's record") {
		t.Fatalf("first operator: exit %d, stderr %q", r.code, r.err)
	}
	ic := filepath.Join(dir, "IC-0001.creds")
	mustCLI(t, url, "--creds", alice, "creds", "issue", "smartserver", "IC-0001", "--account-seed", x.seeds[auth.SmartServer], "--account", x.account, "--out", ic)

	cid := mustCLI(t, url, "--creds", alice, "customer", "create", "--name", "P-EXT")
	mustCLI(t, url, "--creds", ic, "smartserver", "register", "--install-code", "IC-0001", "--version", "3.4")
	mustCLI(t, url, "--creds", ic, "smartserver", "set-customer-id", "IC-0001", cid)
	mustCLI(t, url, "--creds", ic, "smartserver", "download-licenses", "IC-0001")
	for _, args := range [][]string{{"customer", "create", "--name", "x"}, {"smartserver", "licenses", "IC-0002"}, {"audit", "tail"}} {
		if r := cliAs(t, url, ic, args...); r.code != exitRefused || !strings.Contains(r.err, "permission_denied") {
			t.Errorf("%v as IC-0001: exit %d, stderr %q", args, r.code, r.err)
		}
	}
	var recs []auth.Record
	mustJSON(t, url, &recs, "--creds", alice, "creds", "list")
	if len(recs) != 1 || recs[0].Name != "IC-0001" || recs[0].Role != auth.SmartServer {
		t.Fatalf("creds list: %+v, want IC-0001 recorded", recs)
	}
	if r := cliAs(t, url, alice, "creds", "issue", "reader", "r", "--out", filepath.Join(dir, "r.creds")); r.code == exitOK || !strings.Contains(r.err, "--account-seed") {
		t.Errorf("issue without the account's keys: exit %d, stderr %q", r.code, r.err)
	}
	r = cliAs(t, url, alice, "creds", "revoke", "IC-0001")
	if r.code != exitOK || !strings.Contains(r.err, "nsc revocations add-user") {
		t.Fatalf("revoke on an external NATS: exit %d, stderr %q", r.code, r.err)
	}
}

// Ensure an outside client with a reader's creds file follows the event
// stream and the audit trail as docs/consumers.md says: the file and the
// inbox prefix, nothing of licensebus's code.
func TestForeignReader(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	cid := mustCustomer(t, c, "P-FOREIGN")
	path := issue(t, url, "reader", "bi")

	if nc, err := nats.Connect(url, nats.UserCredentials(path), nats.NoReconnect(), nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})); err == nil {
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.Stream(ctx, events.EventsStream)
		cancel()
		_ = nc.Flush()
		if err == nil || !errors.Is(nc.LastError(), nats.ErrPermissionViolation) {
			t.Errorf("without the inbox prefix: %v, last error %v; want the reply inbox refused", err, nc.LastError())
		}
		nc.Close()
	}

	nc, err := nats.Connect(url, nats.UserCredentials(path), nats.CustomInboxPrefix("_INBOX.lb.bi"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := ctxFor(t, 20*time.Second)
	evts, err := js.OrderedConsumer(ctx, events.EventsStream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{"lb.evt.customer." + cid + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := evts.Next(jetstream.FetchContext(ctx)); err != nil || !strings.HasSuffix(m.Subject(), ".created") {
		t.Fatalf("event: %v", err)
	}
	trail, err := js.CreateOrUpdateConsumer(ctx, audit.Stream, jetstream.ConsumerConfig{Durable: "bi-audit", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatalf("a durable on the audit trail: %v", err)
	}
	m, err := trail.Next(jetstream.FetchContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DoubleAck(ctx); err != nil {
		t.Fatalf("ack: %v", err)
	}
	if err := nc.Flush(); err != nil || nc.LastError() != nil {
		t.Fatalf("refused: %v %v", err, nc.LastError())
	}
}
