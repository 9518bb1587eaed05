package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/grant"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/nats-io/nats.go/jetstream"
)

// pubkeys returns the cloud's published keys, as license pubkey -o json
// prints them.
func pubkeys(tb testing.TB, url string) []client.PublishedKey {
	tb.Helper()
	var keys []client.PublishedKey
	mustJSON(tb, url, &keys, "license", "pubkey")
	return keys
}

// currentKey is the base64 public key new grants are signed with.
func currentKey(tb testing.TB, url string) client.PublishedKey {
	tb.Helper()
	for _, k := range pubkeys(tb, url) {
		if k.Current {
			return k
		}
	}
	tb.Fatal("no current key published")
	return client.PublishedKey{}
}

// manageLicenses is the Manage Licenses view of ic, as JSON rows.
func manageLicenses(tb testing.TB, url, ic string) []map[string]any {
	tb.Helper()
	var rows []map[string]any
	mustJSON(tb, url, &rows, "smartserver", "licenses", ic)
	return rows
}

// wantRefused runs the CLI and fails unless it exits 1 naming reason.
func wantRefused(tb testing.TB, url, reason string, args ...string) result {
	tb.Helper()
	r := cli(tb, url, args...)
	if r.code != exitRefused || !strings.Contains(r.err, reason) {
		tb.Fatalf("licensebus %s: exit %d, stderr %q; want exit 1 with %s", strings.Join(args, " "), r.code, r.err, reason)
	}
	return r
}

// Ensure an online activation's grant round-trips: license grant writes a
// file, license verify finds it valid with the published keys and with
// the key given alone, and any edit of a byte of a signed value (the
// terms, the install code, the key id, the signature) is refused with
// bad_signature (or unknown_key, for the key id).
func TestGrantRoundTrip(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	f := mustFleet(t, c, "GRT", 1)
	lid := mustLicense(t, c, f.customer, events.Maintenance)
	mustCLI(t, url, "smartserver", "activate", f.servers[0], lid)

	dir := t.TempDir()
	file := filepath.Join(dir, "lic.lic")
	mustCLI(t, url, "license", "grant", lid, "--out", file)
	out := mustCLI(t, url, "license", "verify", file)
	if !strings.Contains(out, "valid: 1 signed grant") || !strings.Contains(out, lid) || !strings.Contains(out, f.servers[0]) {
		t.Fatalf("verify printed %q", out)
	}
	key := currentKey(t, url)
	mustCLI(t, "nats://127.0.0.1:1", "license", "verify", file, "--pubkey", key.PublicKey) // no NATS needed
	keysFile := filepath.Join(dir, "keys.json")
	raw, _ := json.Marshal(pubkeys(t, url))
	if err := os.WriteFile(keysFile, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "nats://127.0.0.1:1", "license", "verify", file, "--pubkey-file", keysFile)

	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	start := bytes.Index(orig, []byte(`"grant_id"`))
	for i := start; i < len(orig); i++ {
		if !insideSignedValue(orig, i) {
			continue
		}
		edited := bytes.Clone(orig)
		edited[i] = otherOfKind(orig[i])
		if err := os.WriteFile(file, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		r := cli(t, "nats://127.0.0.1:1", "license", "verify", file, "--pubkey", key.PublicKey)
		if r.code != exitRefused || !strings.Contains(r.err, "bad_signature") && !strings.Contains(r.err, "unknown_key") {
			t.Fatalf("edit at byte %d (%q → %q): exit %d, stderr %q; want bad_signature", i, orig[i], edited[i], r.code, r.err)
		}
		checked++
	}
	if checked < 250 {
		t.Fatalf("only %d bytes edited", checked)
	}
}

// insideSignedValue says orig[i] is inside the value of a grant member:
// between the quotes of a string, or a digit of devices.
func insideSignedValue(orig []byte, i int) bool {
	ls := bytes.LastIndexByte(orig[:i], '\n') + 1
	line := orig[ls:]
	if e := bytes.IndexByte(line, '\n'); e >= 0 {
		line = line[:e]
	}
	sep := bytes.Index(line, []byte(`": `))
	if sep < 0 || bytes.Contains(line, []byte(`"format"`)) || bytes.Contains(line, []byte(`"issued_at"`)) {
		return false
	}
	v, pos := bytes.TrimRight(line[sep+3:], ","), i-ls-sep-3
	if len(v) > 0 && v[0] == '"' {
		return pos > 0 && pos < len(v)-1
	}
	return pos >= 0 && pos < len(v)
}

// otherOfKind is another byte of the same kind: JSON stays JSON.
func otherOfKind(c byte) byte {
	switch {
	case c == '9':
		return '0'
	case c == 'z', c == 'Z':
		return c - 25
	case c >= '0' && c <= '8', c >= 'a' && c <= 'y', c >= 'A' && c <= 'Y':
		return c + 1
	case c == '+':
		return '/'
	case c == '/':
		return '+'
	case c == '=':
		return 'A'
	}
	return '_'
}

// Ensure the offline path end to end, on a SmartServer that was never
// activated online: fulfil binds in the cloud and writes the file; the
// license is fulfilled in the inventory but not in Manage Licenses;
// import activates both licenses with their activation date; devices turn
// blue, provisioning turns them green; the same file again has one effect;
// transfer to cloud releases them, and the file is not taken again.
func TestOfflineRoundTrip(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "P2022-0208")
	capID := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "2")
	mntID := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "maintenance", "--devices", "2", "--expires", "2099-12-31")
	mustCLI(t, url, "smartserver", "register", "--install-code", "OFF-1", "--name", "SC-OFF", "--version", "3.4")
	for _, p := range []string{"lon", "bacnet", "modbus"} {
		mustCLI(t, url, "device", "add", "OFF-1", "--protocol", p)
	}
	if got := deviceColours(t, url, "OFF-1"); got != "purple purple purple" {
		t.Fatalf("colours before %q", got)
	}

	file := filepath.Join(t.TempDir(), "OFF-1.lic")
	if out := mustCLI(t, url, "license", "fulfil", "--install-code", "OFF-1", capID, mntID, "--out", file); !strings.Contains(out, "2 licenses for SmartServer OFF-1") {
		t.Fatalf("fulfil printed %q", out)
	}
	mustCLI(t, url, "license", "verify", file)
	var inv []map[string]any
	mustJSON(t, url, &inv, "license", "list", "--state", "fulfilled")
	if len(inv) != 2 {
		t.Fatalf("inventory has %d fulfilled licenses, want 2: %v", len(inv), inv)
	}
	if rows := manageLicenses(t, url, "OFF-1"); len(rows) != 0 {
		t.Fatalf("Manage Licenses before the import: %v", rows)
	}
	if got := deviceColours(t, url, "OFF-1"); got != "purple purple purple" {
		t.Fatalf("colours after fulfil, before import %q", got)
	}

	var first map[string]any
	mustJSON(t, url, &first, "smartserver", "import-licenses", "OFF-1", file)
	rows := manageLicenses(t, url, "OFF-1")
	if len(rows) != 2 {
		t.Fatalf("Manage Licenses after the import: %v", rows)
	}
	for _, r := range rows {
		if r["activation_date"] == "" || r["activation_date"] == nil || r["status"] == "Fulfilled" {
			t.Fatalf("imported license row %v", r)
		}
	}
	if got := deviceColours(t, url, "OFF-1"); got != "blue blue purple" {
		t.Fatalf("colours after import %q, want blue blue purple", got)
	}
	mustCLI(t, url, "device", "provision", "OFF-1", "--all")
	if got := deviceColours(t, url, "OFF-1"); got != "green green purple" {
		t.Fatalf("colours after provisioning %q", got)
	}

	// The same file again: the first outcome, no second event.
	var again map[string]any
	mustJSON(t, url, &again, "smartserver", "import-licenses", "OFF-1", file)
	if again["event_id"] != first["event_id"] {
		t.Fatalf("second import outcome %v, first %v", again["event_id"], first["event_id"])
	}
	_, js := mustClient(t, url)
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.smartserver.OFF-1.licenses_imported"); n != 1 {
		t.Fatalf("%d licenses_imported events, want 1", n)
	}

	mustCLI(t, url, "smartserver", "transfer-to-cloud", "OFF-1", "--yes")
	if got := deviceColours(t, url, "OFF-1"); got != "purple purple purple" {
		t.Fatalf("colours after transfer %q", got)
	}
	mustJSON(t, url, &inv, "license", "list", "--state", "cloud")
	if len(inv) != 2 {
		t.Fatalf("after transfer %d licenses in the cloud, want 2", len(inv))
	}
	// The old file under a new command: its grants were given back.
	wantRefused(t, url, "grant_used", "smartserver", "import-licenses", "OFF-1", file, "--id", "a6f3c1e2-5b4d-4c3a-9e8f-7d6c5b4a3f21")
	// Fulfilled again: a new file, and the licenses come back.
	file2 := filepath.Join(t.TempDir(), "OFF-1-again.lic")
	mustCLI(t, url, "license", "fulfil", "--install-code", "OFF-1", capID, "--out", file2)
	mustCLI(t, url, "smartserver", "import-licenses", "OFF-1", file2)
	if got := deviceColours(t, url, "OFF-1"); got != "blue blue purple" {
		t.Fatalf("colours after the second import %q", got)
	}
}

// offlineFixture is a customer with licenses, a SmartServer OFF-1 with its
// Customer ID set (never online-activated) and another, OFF-2.
type offlineFixture struct {
	url, cid, other string
	licenses        []string
	dir             string
}

func newOfflineFixture(t *testing.T) offlineFixture {
	s := mustServe(t, t.TempDir())
	x := offlineFixture{url: s.URL(), dir: t.TempDir()}
	x.cid = mustCLI(t, x.url, "customer", "create", "--name", "P1")
	x.other = mustCLI(t, x.url, "customer", "create", "--name", "P2")
	for range 4 {
		x.licenses = append(x.licenses, mustCLI(t, x.url, "license", "add", "--customer", x.cid, "--kind", "capacity", "--devices", "10"))
	}
	for _, ic := range []string{"OFF-1", "OFF-2"} {
		mustCLI(t, x.url, "smartserver", "register", "--install-code", ic, "--version", "3.4")
		mustCLI(t, x.url, "smartserver", "set-customer-id", ic, x.cid)
	}
	return x
}

func (x offlineFixture) write(t *testing.T, name string, raw []byte) string {
	p := filepath.Join(x.dir, name)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Ensure every refusal of the offline path: exit 1, the reason, and no
// change — nothing active on the SmartServer, no binding in the cloud
// beyond the fulfils that were accepted.
func TestOfflineRefusals(t *testing.T) {
	x := newOfflineFixture(t)
	url := x.url
	good := filepath.Join(x.dir, "good.lic")
	mustCLI(t, url, "license", "fulfil", "--install-code", "OFF-1", x.licenses[0], "--out", good)
	for2 := filepath.Join(x.dir, "for2.lic")
	mustCLI(t, url, "license", "fulfil", "--install-code", "OFF-2", x.licenses[1], "--out", for2)
	raw, _ := os.ReadFile(good)

	// A file signed by a key nobody trusts, and a file with edited terms.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	f, err := grant.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	stranger := *f
	stranger.Grants = []grant.Grant{f.Grants[0]}
	if err := grant.NewKey(priv).Sign(&stranger.Grants[0]); err != nil {
		t.Fatal(err)
	}
	strangerRaw, _ := stranger.Encode()
	edited := bytes.Replace(raw, []byte(`"devices": 10`), []byte(`"devices": 1000`), 1)
	editedIC := bytes.ReplaceAll(raw, []byte(`"install_code": "OFF-1"`), []byte(`"install_code": "OFF-2"`))
	editedSig := bytes.Replace(raw, []byte(`"signature": "`), []byte(`"signature": "AB`), 1)

	tests := []struct {
		name   string
		args   []string
		reason string
		says   string
	}{
		{"edited terms", []string{"smartserver", "import-licenses", "OFF-1", x.write(t, "edited.lic", edited)}, "bad_signature", ""},
		{"edited install code", []string{"smartserver", "import-licenses", "OFF-2", x.write(t, "edited-ic.lic", editedIC)}, "bad_signature", ""},
		{"edited signature", []string{"smartserver", "import-licenses", "OFF-1", x.write(t, "edited-sig.lic", editedSig)}, "bad_signature", ""},
		{"a file for another SmartServer", []string{"smartserver", "import-licenses", "OFF-1", for2}, "install_code_mismatch", "OFF-2"},
		{"a key nobody trusts", []string{"smartserver", "import-licenses", "OFF-1", x.write(t, "stranger.lic", strangerRaw)}, "unknown_key", ""},
		{"active on another SmartServer, at fulfil", []string{"license", "fulfil", "--install-code", "OFF-2", x.licenses[0]}, "license_already_active", ""},
		{"another customer's, at fulfil", []string{"license", "fulfil", "--install-code", "OFF-2", x.licenses[2], "--customer", x.other}, "customer_mismatch", ""},
		{"one of several refused: none bound", []string{"license", "fulfil", "--install-code", "OFF-2", x.licenses[3], x.licenses[0]}, "license_already_active", ""},
		{"not JSON", []string{"smartserver", "import-licenses", "OFF-1", x.write(t, "text.lic", []byte("LICENSE KEY 1234"))}, "malformed_license_file", "not JSON"},
		{"a missing field", []string{"smartserver", "import-licenses", "OFF-1", x.write(t, "missing.lic", bytes.Replace(raw, []byte(`"kind": "capacity",`), nil, 1))}, "malformed_license_file", "missing field kind"},
		{"a wrong version", []string{"smartserver", "import-licenses", "OFF-1", x.write(t, "v2.lic", bytes.Replace(raw, []byte("licensebus-license/1"), []byte("licensebus-license/2"), 1))}, "malformed_license_file", "wrong version"},
		{"verify: edited", []string{"license", "verify", x.write(t, "edited2.lic", edited)}, "bad_signature", ""},
		{"verify: not a license file", []string{"license", "verify", x.write(t, "other.json", []byte(`{"format":"keygen-license"}`))}, "malformed_license_file", "wrong version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := wantRefused(t, url, tt.reason, tt.args...)
			if !strings.Contains(r.err, tt.says) {
				t.Fatalf("stderr %q does not say %q", r.err, tt.says)
			}
		})
	}
	for _, ic := range []string{"OFF-1", "OFF-2"} {
		if rows := manageLicenses(t, url, ic); len(rows) != 0 {
			t.Errorf("%s has licenses after refusals: %v", ic, rows)
		}
	}
	var inv []map[string]any
	mustJSON(t, url, &inv, "license", "list", "--state", "fulfilled")
	if len(inv) != 2 {
		t.Errorf("%d licenses fulfilled, want the 2 accepted: %v", len(inv), inv)
	}
	mustJSON(t, url, &inv, "license", "list", "--state", "cloud")
	if len(inv) != 2 {
		t.Errorf("%d licenses in the cloud, want 2 (the refused fulfil bound none): %v", len(inv), inv)
	}
	// The good file still imports after all that.
	mustCLI(t, url, "smartserver", "import-licenses", "OFF-1", good)
}

// Ensure a forged license.bound — a valid CloudEvent written straight to
// the event stream with the service's rights — activates nothing: without
// a grant, with a grant signed by another key, with terms that are not its
// grant's. Each is refused (a rejection with the reason) and
// dead-lettered.
func TestForgedBindingRefused(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, js := mustClient(t, url)
	f := mustFleet(t, c, "FRG", 1)
	ic := f.servers[0]
	lid := mustLicense(t, c, f.customer, events.Capacity)
	other := mustLicense(t, c, f.customer, events.Capacity)
	mustCLI(t, url, "smartserver", "activate", ic, other)
	genuine, err := client.LicenseGrant(ctxFor(t, 10*time.Second), js, other)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	at := time.Now().UTC().Truncate(time.Millisecond)
	terms := func() *events.LicenseBound {
		return &events.LicenseBound{LicenseID: lid, CustomerID: f.customer, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: at}
	}
	withKey := terms()
	withKey.Grant = &grant.Grant{LicenseID: lid, CustomerID: f.customer, InstallCode: ic, Kind: events.Capacity, Devices: 200, BoundAt: grant.Time(at)}
	withReplayed := terms()
	withReplayed.Grant = genuine // a genuine grant, of another binding
	tests := []struct {
		name   string
		bound  *events.LicenseBound
		sign   bool
		reason events.Reason
	}{
		{"no grant", terms(), false, events.ReasonBadSignature},
		{"a grant signed by another key", withKey, true, events.ReasonUnknownKey},
		{"another binding's grant", withReplayed, false, events.ReasonBadSignature},
	}
	ctx := ctxFor(t, 60*time.Second)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := events.DeriveID(tt.name, "forged")
			if tt.sign {
				tt.bound.Grant.GrantID = id
				if err := grant.NewKey(priv).Sign(tt.bound.Grant); err != nil {
					t.Fatal(err)
				}
			}
			m, err := events.New(events.LicenseBoundType, tt.bound, events.Meta{ID: id, Source: events.CloudSource, Actor: events.CloudSource, CorrelationID: id})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := js.PublishMsg(ctx, bus.Msg(m)); err != nil {
				t.Fatal(err)
			}
			rej := waitRejection(t, js, ic, id)
			if rej.Reason != tt.reason {
				t.Fatalf("rejection %s (%s), want %s", rej.Reason, rej.Message, tt.reason)
			}
			for subjectCount(t, js, events.DeadLettersStream, "lb.dlq.events") < uint64(i+1) {
				if ctx.Err() != nil {
					t.Fatal("no dead letter")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	waitReacted(t, js, "device-answers")
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.smartserver."+ic+".license_activated"); n != 1 {
		t.Fatalf("%d activations on %s, want only the genuine one", n, ic)
	}
	rows := manageLicenses(t, url, ic)
	if len(rows) != 1 || rows[0]["license_id"] != other {
		t.Fatalf("Manage Licenses %v, want only %s", rows, other)
	}
}

// waitRejection waits for the rejection of the message with id cause on
// SmartServer ic's rejection subject.
func waitRejection(tb testing.TB, js jetstream.JetStream, ic, cause string) events.Rejected {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	str, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if raw, err := str.GetLastMsgForSubject(ctx, events.RejectionSubject("smartserver", ic)); err == nil {
			if m, err := events.Decode(raw.Header, raw.Data); err == nil && m.CausationID() == cause {
				return *m.Data.(*events.Rejected)
			}
		}
		if ctx.Err() != nil {
			tb.Fatalf("no rejection of %s", cause)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ensure an online activation on one SmartServer and an offline fulfil for
// another, of the same license at the same moment, never both win: in
// every round exactly one is accepted and the license is bound once. The
// fulfil also names a license nobody else wants: when it loses, that one
// is not left bound (a fulfil binds all or none).
func TestOnlineOfflineRaceOneWinner(t *testing.T) {
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), Batch: 1})
	mustJoin(t, s.URL(), 1, s.SigningKeyFile())
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "RACEOFF", 2)
	mustDo(t, c, events.RegisterType, &events.Register{InstallCode: "RACE-B", Version: "3.4"})
	const rounds = 24
	onlineWins, takenBack := 0, 0
	for round := range rounds {
		lid := mustLicense(t, c, f.customer, events.Capacity)
		spare := mustLicense(t, c, f.customer, events.Capacity)
		ctx := ctxFor(t, 60*time.Second)
		var wg sync.WaitGroup
		var online, offline error
		start := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			_, online = c.Do(ctx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[round%2], LicenseID: lid}, client.SendOptions{})
		}()
		go func() {
			defer wg.Done()
			<-start
			lids := []string{spare, lid}
			if round%3 == 0 {
				lids = []string{lid, spare}
			}
			_, offline = c.Do(ctx, events.FulfilType, &events.Fulfil{InstallCode: "RACE-B", LicenseIDs: lids}, client.SendOptions{})
		}()
		close(start)
		wg.Wait()
		lost := func(err error) bool {
			r := events.AsRejection(err)
			return r != nil && r.Reason == events.ReasonAlreadyActive
		}
		switch {
		case online == nil && lost(offline):
			onlineWins++
			g, err := client.LicenseGrant(ctx, js, spare)
			if err == nil || events.AsRejection(err) == nil || events.AsRejection(err).Reason != events.ReasonNotFound {
				t.Fatalf("round %d: the refused fulfil left its other license bound: %+v %v", round, g, err)
			}
			if subjectCount(t, js, events.EventsStream, "lb.evt.license."+spare+".released") > 0 {
				takenBack++ // bound before the race was lost, then taken back
			}
		case offline == nil && lost(online):
		default:
			t.Fatalf("round %d: online %v, offline %v; want exactly one accepted and the other license_already_active", round, online, offline)
		}
		if n := subjectCount(t, js, events.EventsStream, "lb.evt.license."+lid+".bound"); n != 1 {
			t.Fatalf("round %d: license bound %d times, want 1", round, n)
		}
	}
	t.Logf("online won %d of %d rounds; %d fulfils took a binding back", onlineWins, rounds, takenBack)
}

// Ensure key rotation and revocation: after rotate-key new grants name the
// new key and a file signed before still verifies and imports; once the
// old key is revoked, its files no longer verify (key_revoked) and are not
// imported; the key that signs cannot be revoked.
func TestRotateAndRevokeKey(t *testing.T) {
	x := newOfflineFixture(t)
	url := x.url
	before := filepath.Join(x.dir, "before.lic")
	mustCLI(t, url, "license", "fulfil", "--install-code", "OFF-1", x.licenses[0], "--out", before)
	old := currentKey(t, url)
	wantRefused(t, url, "signing_key_state", "license", "revoke-key", old.KeyID)

	out := mustCLI(t, url, "license", "rotate-key")
	next := currentKey(t, url)
	if next.KeyID == old.KeyID || !strings.Contains(out, next.KeyID) {
		t.Fatalf("after rotate-key (%q) the current key is %s, was %s", out, next.KeyID, old.KeyID)
	}
	if keys := pubkeys(t, url); len(keys) != 2 {
		t.Fatalf("published keys %v, want 2", keys)
	}
	after := filepath.Join(x.dir, "after.lic")
	mustCLI(t, url, "license", "fulfil", "--install-code", "OFF-2", x.licenses[1], "--out", after)
	if raw, _ := os.ReadFile(after); !bytes.Contains(raw, []byte(next.KeyID)) {
		t.Fatalf("a grant after the rotation is not signed by %s:\n%s", next.KeyID, raw)
	}
	mustCLI(t, url, "license", "verify", before)
	mustCLI(t, url, "license", "verify", after)

	mustCLI(t, url, "license", "revoke-key", old.KeyID)
	wantRefused(t, url, "key_revoked", "license", "verify", before)
	wantRefused(t, url, "key_revoked", "smartserver", "import-licenses", "OFF-1", before)
	wantRefused(t, url, "unknown_key", "license", "revoke-key", "0123456789abcdef")
	mustCLI(t, url, "license", "verify", after)
	mustCLI(t, url, "smartserver", "import-licenses", "OFF-2", after)
	for _, k := range pubkeys(t, url) {
		if k.KeyID == old.KeyID && !k.Revoked {
			t.Fatalf("pubkey lists %s as not revoked", k.KeyID)
		}
	}
}

// Ensure bindings written before grants existed keep working: an
// activation whose license.bound (no grant) was stored before the first
// signing key was published is taken when licensebus starts with grants;
// one without a grant stored after that is refused (TestForgedBindingRefused).
func TestBindingsBeforeGrantsStillActivate(t *testing.T) {
	dir := t.TempDir()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := bus.StartServer(bus.ServerConfig{StoreDir: abs, Listen: "127.0.0.1:-1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, js := mustClient(t, ns.ClientURL())
	ctx := ctxFor(t, 30*time.Second)
	if err := bus.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	// What an earlier build wrote for one online activation.
	const cid, lid, ic = "5b1f0c2e-3d4a-4b5c-8d6e-7f8091a2b3c4", "6c2a1d3f-4e5b-4c6d-9e7f-8091a2b3c4d5", "OLD-1"
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	var prev *events.Message
	for i, d := range []events.Data{
		&events.CustomerCreated{CustomerID: cid, Name: "old"},
		&events.LicenseAdded{LicenseID: lid, CustomerID: cid, Kind: events.Capacity, Devices: 50, AddedAt: at},
		&events.Registered{InstallCode: ic, Name: "SC-OLD", Version: "3.4"},
		&events.CustomerIDSet{InstallCode: ic, CustomerID: cid},
		&events.LicensesDownloaded{InstallCode: ic, CustomerID: cid},
		&events.ActivationRequested{InstallCode: ic, LicenseID: lid, CustomerID: cid},
		&events.LicenseBound{LicenseID: lid, CustomerID: cid, InstallCode: ic, Kind: events.Capacity, Devices: 50, BoundAt: at},
	} {
		info := map[int]events.Type{0: events.CustomerCreatedType, 1: events.LicenseAddedType, 2: events.RegisteredType, 3: events.CustomerIDSetType,
			4: events.LicensesDownloadedType, 5: events.ActivationRequestedType, 6: events.LicenseBoundType}[i]
		meta := events.Meta{ID: events.DeriveID("legacy", string(info)), Source: events.DeviceSource, Actor: "test"}
		if i == 6 {
			meta = prev.Next(events.DeriveID(prev.ID(), "bound"), events.CloudSource, events.CloudSource)
		}
		m, err := events.New(info, d, meta)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishMsg(ctx, bus.Msg(m)); err != nil {
			t.Fatal(err)
		}
		prev = m
	}
	ns.Shutdown()
	ns.WaitForShutdown()

	s := mustServe(t, dir)
	_, js = mustClient(t, s.URL())
	waitReacted(t, js, "device-answers")
	if n := subjectCount(t, js, events.EventsStream, "lb.evt.smartserver."+ic+".license_activated"); n != 1 {
		t.Fatalf("%d activations of the binding written before grants, want 1", n)
	}
	rows := manageLicenses(t, s.URL(), ic)
	if len(rows) != 1 || rows[0]["status"] != "Active" {
		t.Fatalf("Manage Licenses %v", rows)
	}
	wantRefused(t, s.URL(), "not_found", "license", "grant", lid)
}
