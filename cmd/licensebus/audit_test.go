package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/events/audit"
	auditlog "github.com/licensebus/licensebus/internal/audit"
	"github.com/nats-io/nats.go/jetstream"
)

// waitAudited waits until the trail records every source message.
func waitAudited(tb testing.TB, js jetstream.JetStream) auditlog.Status {
	tb.Helper()
	ctx := ctxFor(tb, 30*time.Second)
	for {
		st, err := auditlog.ReadStatus(ctx, js)
		if err == nil && st.Behind() == 0 && st.Seq > 0 {
			return st
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("the trail never caught up: %+v %v", st, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// entriesOf decodes JSON Lines output.
func entriesOf(tb testing.TB, out string) []audit.Entry {
	tb.Helper()
	var es []audit.Entry
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e audit.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("line %q: %v", sc.Text(), err)
		}
		es = append(es, e)
	}
	return es
}

// traceJSONNode is the JSON contract of one node of audit trace.
type traceJSONNode struct {
	audit.Entry
	Children []traceJSONNode `json:"children"`
}

// find returns the first node (depth first) of one of the types ts.
func (n traceJSONNode) find(ts ...events.Type) *traceJSONNode {
	if slices.Contains(ts, events.Type(n.Type)) {
		return &n
	}
	for _, c := range n.Children {
		if f := c.find(ts...); f != nil {
			return f
		}
	}
	return nil
}

// The provisioner sends one command per device or one per batch.
var (
	provisionTypes   = []events.Type{events.ProvisionDeviceType, events.ProvisionDevicesType}
	provisionedTypes = []events.Type{events.DeviceProvisionedType, events.DevicesProvisionedType}
)

// Ensure the audit trail records every command — accepted, rejected or not
// a CloudEvent — every event and every rejection with who, what, when and
// why; that tail filters it, trace shows one command's causal tree, export
// is streamed and repeatable, and verify catches each kind of tampering in
// an export and a forgery on the live stream.
func TestAuditTrail(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, js := mustClient(t, url)
	f := mustFleet(t, c, "AUD", 1)
	ic := f.servers[0]
	lid := mustLicense(t, c, f.customer, events.Capacity)
	mustCLI(t, url, "smartserver", "auto-provision", ic, "on")
	mustCLI(t, url, "--actor", "user:alice", "smartserver", "activate", ic, lid)
	addID, rejID := uuid.NewString(), uuid.NewString()
	mustCLI(t, url, "--actor", "user:alice", "--id", addID, "device", "add", ic, "--protocol", "lon", "--name", "pump")
	if r := cli(t, url, "--actor", "user:mallory", "--id", rejID, "smartserver", "activate", ic, uuid.NewString()); r.code != exitRefused {
		t.Fatalf("activating an unknown license: exit %d, want %d", r.code, exitRefused)
	}
	if _, err := js.Publish(ctxFor(t, 10*time.Second), "lb.cmd.cloud.customer_create", []byte(`{"name":"not a CloudEvent"}`)); err != nil {
		t.Fatal(err)
	}
	// The provisioner reacts to the device on its own; wait for its outcome.
	deadline := time.Now().Add(20 * time.Second)
	for len(entriesOf(t, mustCLI(t, url, "audit", "tail", "-n", "0", "--type", "device_provisioned", "--type", "devices_provisioned", "-o", "json"))) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the device was never provisioned:\n%s", mustCLI(t, url, "audit", "tail", "-n", "0"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := waitAudited(t, js)
	all := entriesOf(t, mustCLI(t, url, "audit", "tail", "-n", "0", "-o", "json"))
	byID := map[string]audit.Entry{}
	for _, e := range all {
		if e.ID != "" {
			byID[e.ID] = e
		}
	}

	t.Run("everything is in the trail once", func(t *testing.T) {
		if uint64(len(all)) != st.Sources.Commands+st.Sources.Events || st.Cursor != st.Sources {
			t.Fatalf("%d entries for %d commands and %d events", len(all), st.Sources.Commands, st.Sources.Events)
		}
		seen := map[string]bool{}
		for i, e := range all {
			key := fmt.Sprint(e.Stream, e.StreamSeq)
			if seen[key] || e.Seq != uint64(i+1) || e.StreamTime == "" || e.MessageSHA256 == "" || e.Hash == "" {
				t.Fatalf("entry %+v: repeated, out of sequence or incomplete", e)
			}
			seen[key] = true
		}
	})

	t.Run("a rejected command is as visible as an accepted one", func(t *testing.T) {
		cmd := byID[rejID]
		if cmd.Kind != audit.KindCommand || cmd.Actor != "user:mallory" || cmd.InstallCode != ic || cmd.Type != string(events.ActivateLicenseType) || cmd.Time == "" {
			t.Fatalf("rejected command entry %+v", cmd)
		}
		var rej *audit.Entry
		for i := range all {
			if all[i].Kind == audit.KindRejection && all[i].CorrelationID == rejID {
				rej = &all[i]
			}
		}
		if rej == nil || rej.Reason != string(events.ReasonUnknownLicense) || rej.Message == "" || rej.CommandID == "" ||
			rej.LicenseID != cmd.LicenseID || rej.Seq <= cmd.Seq {
			t.Fatalf("rejection entry %+v, want unknown_license after the command", rej)
		}
		out := mustCLI(t, url, "audit", "tail", "--kind", "rejection", "--smartserver", ic)
		if !strings.Contains(out, "unknown_license") || !strings.Contains(out, rejID) {
			t.Fatalf("tail of rejections:\n%s", out)
		}
	})

	t.Run("a command that is not a CloudEvent", func(t *testing.T) {
		var bad audit.Entry
		for _, e := range all {
			if e.Kind == audit.KindCommand && e.Invalid != "" {
				bad = e
			}
		}
		rej, ok := byID[bad.RejectionID]
		if !strings.HasPrefix(bad.Invalid, string(events.ReasonMalformed)) || !ok || rej.Kind != audit.KindRejection ||
			rej.Reason != string(events.ReasonMalformed) || !strings.Contains(string(bad.Data), "not a CloudEvent") {
			t.Fatalf("invalid command %+v, its rejection %+v", bad, rej)
		}
		var tree []traceJSONNode
		mustJSON(t, url, &tree, "audit", "trace", bad.RejectionID)
		if len(tree) != 1 || tree[0].Invalid == "" || len(tree[0].Children) != 1 || tree[0].Children[0].ID != rej.ID {
			t.Fatalf("trace of its rejection: %+v", tree)
		}
	})

	t.Run("tail filters", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			ok   func(audit.Entry) bool
			min  int
		}{
			{"license", []string{"--license", lid}, func(e audit.Entry) bool { return e.LicenseID == lid || slices.Contains(e.LicenseIDs, lid) }, 5},
			{"smartserver", []string{"--smartserver", ic}, func(e audit.Entry) bool { return e.InstallCode == ic }, 10},
			{"customer", []string{"--customer", f.customer}, func(e audit.Entry) bool { return e.CustomerID == f.customer }, 4},
			{"type", []string{"--type", "license_activated", "--type", string(events.LicenseBoundType)}, func(e audit.Entry) bool {
				return e.Type == string(events.LicenseActivatedType) || e.Type == string(events.LicenseBoundType)
			}, 2},
			{"kind and server", []string{"--kind", "command", "--smartserver", ic}, func(e audit.Entry) bool { return e.Kind == audit.KindCommand && e.InstallCode == ic }, 5},
			{"since", []string{"--since", all[len(all)-3].StreamTime}, func(e audit.Entry) bool { return e.Seq >= all[len(all)-3].Seq }, 3},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got := entriesOf(t, mustCLI(t, url, append([]string{"audit", "tail", "-n", "0", "-o", "json"}, tt.args...)...))
				want := 0
				for _, e := range all {
					if tt.ok(e) {
						want++
					}
				}
				if len(got) != want || want < tt.min {
					t.Fatalf("%d entries, want %d (at least %d)", len(got), want, tt.min)
				}
				for _, e := range got {
					if !tt.ok(e) {
						t.Fatalf("entry %+v does not match", e)
					}
				}
			})
		}
		if got := entriesOf(t, mustCLI(t, url, "audit", "tail", "-n", "2", "-o", "json")); len(got) != 2 || got[1].Seq != all[len(all)-1].Seq {
			t.Fatalf("-n 2 gave %d entries", len(got))
		}
		if out := mustCLI(t, url, "audit", "tail", "--since", "2999-01-01"); out != "No entries." {
			t.Fatalf("tail of the future: %q", out)
		}
		if r := cli(t, url, "audit", "tail", "--since", "last tuesday"); r.code != exitUsage {
			t.Fatalf("bad --since: exit %d", r.code)
		}
	})

	t.Run("trace follows the causal chain into provisioning", func(t *testing.T) {
		var tree []traceJSONNode
		mustJSON(t, url, &tree, "audit", "trace", addID)
		if len(tree) != 1 || tree[0].ID != addID || tree[0].Actor != "user:alice" {
			t.Fatalf("trace roots %+v, want the add_device command", tree)
		}
		added := tree[0].find(events.DeviceAddedType)
		if added == nil || added.CausationID != addID {
			t.Fatalf("no device_added under the command: %+v", tree[0])
		}
		prov := added.find(provisionTypes...)
		if prov == nil || prov.CausationID != added.ID || prov.CorrelationID == addID {
			t.Fatalf("no provisioning command (own correlation, caused by device_added) under it: %+v", added)
		}
		if done := prov.find(provisionedTypes...); done == nil || done.CausationID != prov.ID {
			t.Fatalf("no device_provisioned under the provisioning command: %+v", prov)
		}
		out := mustCLI(t, url, "audit", "trace", addID)
		lines := strings.Split(out, "\n")
		order := []string{"command smartserver.add_device", "└── event smartserver.device_added", "    └── command smartserver.provision_device", "        └── event smartserver.device"}
		i := 0
		for _, l := range lines {
			if i < len(order) && strings.HasPrefix(l, order[i]) {
				i++
			}
		}
		if i != len(order) {
			t.Fatalf("trace tree:\n%s\nwant these lines in order: %q", out, order)
		}
		var rejTree []traceJSONNode
		mustJSON(t, url, &rejTree, "audit", "trace", rejID)
		if len(rejTree) != 1 || rejTree[0].ID != rejID || rejTree[0].find(events.RejectedType) == nil ||
			rejTree[0].find(events.RejectedType).Reason != string(events.ReasonUnknownLicense) {
			t.Fatalf("trace of the rejected command: %+v", rejTree)
		}
		if r := cli(t, url, "audit", "trace", uuid.NewString()); r.code != exitRefused {
			t.Fatalf("trace of an unknown id: exit %d", r.code)
		}
	})

	dir := t.TempDir()
	export := mustCLI(t, url, "audit", "export") + "\n"
	t.Run("export is the stored trail and repeatable", func(t *testing.T) {
		if again := mustCLI(t, url, "audit", "export", "--format", "jsonl") + "\n"; again != export {
			t.Fatal("two exports of the same trail differ")
		}
		if got := entriesOf(t, export); len(got) != len(all) {
			t.Fatalf("export has %d entries, want %d", len(got), len(all))
		}
		from, to := all[4], all[9]
		part := mustCLI(t, url, "audit", "export", "--since", from.StreamTime, "--until", to.StreamTime)
		if again := mustCLI(t, url, "audit", "export", "--since", from.StreamTime, "--until", to.StreamTime); again != part {
			t.Fatal("two exports of the same range differ")
		}
		got := entriesOf(t, part)
		if len(got) != 5 || got[0].Seq != from.Seq || got[4].Seq != to.Seq-1 {
			t.Fatalf("range export: %d entries from %d, want seq %d-%d", len(got), got[0].Seq, from.Seq, to.Seq-1)
		}
		csvOut := mustCLI(t, url, "audit", "export", "--format", "csv")
		rows := strings.Split(csvOut, "\n")
		if rows[0] != strings.Join(auditlog.CSVHeader, ",") || !strings.HasPrefix(rows[0], "seq,kind,stream,stream_seq,stream_time,") || len(rows) < len(all)+1 {
			t.Fatalf("CSV header %q and %d rows", rows[0], len(rows))
		}
		if again := mustCLI(t, url, "audit", "export", "--format", "csv"); again != csvOut {
			t.Fatal("two CSV exports differ")
		}
		name := filepath.Join(dir, "audit.csv")
		if err := os.WriteFile(name, []byte(csvOut), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := cli(t, url, "audit", "verify", name); r.code != exitUsage {
			t.Fatalf("verify of a CSV export: exit %d", r.code)
		}
	})

	t.Run("verify catches each kind of tampering of an export", func(t *testing.T) {
		lines := strings.Split(strings.TrimSuffix(export, "\n"), "\n")
		reseal := func(line string, change func(*audit.Entry)) string {
			var e audit.Entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatal(err)
			}
			change(&e)
			raw, err := audit.Seal(&e, e.PrevHash)
			if err != nil {
				t.Fatal(err)
			}
			return string(raw)
		}
		k := 6 // 0-based line of entry 7
		tests := []struct {
			name   string
			lines  []string
			kind   audit.Tamper
			seq    uint64
			header string
		}{
			{"intact", lines, "", 0, ""},
			{"edited", append(append(slices.Clone(lines[:k]), strings.Replace(lines[k], `"actor":"`, `"actor":"user:mallory, not `, 1)), lines[k+1:]...), audit.Edited, uint64(k + 1), "EDITED"},
			{"dropped", slices.Delete(slices.Clone(lines), k, k+1), audit.Dropped, uint64(k + 1), "DROPPED"},
			{"reordered", func() []string { l := slices.Clone(lines); l[k], l[k+1] = l[k+1], l[k]; return l }(), audit.Reordered, uint64(k + 1), "REORDERED"},
			{"inserted", slices.Insert(slices.Clone(lines), k, reseal(lines[k], func(e *audit.Entry) { e.Actor = "user:mallory" })), audit.Inserted, uint64(k + 1), "INSERTED"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := filepath.Join(dir, tt.name+".jsonl")
				if err := os.WriteFile(name, []byte(strings.Join(tt.lines, "\n")+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				r := cli(t, url, "audit", "verify", name)
				if tt.kind == "" {
					if r.code != exitOK || !strings.HasPrefix(r.out, "intact: ") || !strings.Contains(r.out, "from the genesis hash") {
						t.Fatalf("intact export: exit %d, out %q, err %q", r.code, r.out, r.err)
					}
					return
				}
				if r.code != exitRefused || !strings.Contains(r.out, tt.header) || !strings.Contains(r.err, "tampered") {
					t.Fatalf("exit %d, out %q, err %q; want exit 1 naming %s", r.code, r.out, r.err, tt.header)
				}
				var res verifyResult
				out := cli(t, url, "audit", "verify", name, "-o", "json")
				if err := json.Unmarshal([]byte(out.out), &res); err != nil {
					t.Fatal(err)
				}
				if res.Intact || res.ProblemCount != 1 || res.Problems[0].Kind != tt.kind || res.Problems[0].Seq != tt.seq {
					t.Fatalf("report %+v, want one %s at seq %d", res.Report, tt.kind, tt.seq)
				}
			})
		}
	})

	t.Run("follow prints new entries until interrupted", func(t *testing.T) {
		var out syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		code := make(chan int, 1)
		go func() {
			code <- run(ctx, []string{"audit", "tail", "--follow", "-n", "1", "-o", "json"}, strings.NewReader(""), &out, &out, cliEnv(url))
		}()
		waitFor(t, func() bool { return strings.Count(out.String(), "\n") >= 1 })
		id := mustCustomer(t, c, "followed")
		waitFor(t, func() bool { return strings.Contains(out.String(), id) })
		cancel()
		select {
		case c := <-code:
			if c != exitOK {
				t.Fatalf("tail --follow exit %d: %s", c, out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("tail --follow did not stop when interrupted")
		}
	})

	t.Run("verify the live trail, and a forgery on it", func(t *testing.T) {
		st := waitAudited(t, js)
		r := cli(t, url, "audit", "verify")
		if r.code != exitOK || !strings.Contains(r.out, "compared with its source message") {
			t.Fatalf("live verify: exit %d, out %q, err %q", r.code, r.out, r.err)
		}
		// A forger who knows the format publishes a well-chained entry for an
		// event that never happened straight onto the audit subject.
		forged := auditlog.Derive(auditlog.SourceMsg{Stream: events.EventsStream, Seq: st.Cursor.Events + 1, Subject: "lb.evt.license." + lid + ".released",
			Time: time.Now(), Data: []byte(`{"license_id":"` + lid + `","install_code":"` + ic + `"}`)})
		forged.Seq, forged.Cursor = st.Seq+1, st.Cursor.Advance(events.EventsStream, st.Cursor.Events+1)
		raw, err := audit.Seal(&forged, st.Hash)
		if err != nil {
			t.Fatal(err)
		}
		// Only the service may publish there: the forger has its credentials.
		if _, err := mustService(t, url).Publish(ctxFor(t, 10*time.Second), audit.Subject, raw); err != nil {
			t.Fatal(err)
		}
		r = cli(t, url, "audit", "verify")
		if r.code != exitRefused || !strings.Contains(r.out, "INSERTED") {
			t.Fatalf("live verify after a forgery: exit %d, out %q", r.code, r.out)
		}
		// The trail goes on past it, and verify keeps naming it.
		mustCustomer(t, c, "after the forgery")
		waitAudited(t, js)
		var res verifyResult
		if r := cli(t, url, "audit", "verify", "-o", "json"); r.code != exitRefused || json.Unmarshal([]byte(r.out), &res) != nil {
			t.Fatalf("live verify: exit %d, out %q", r.code, r.out)
		}
		if res.ProblemCount != 1 || res.Problems[0].Kind != audit.Inserted || res.Problems[0].Seq != st.Seq+1 || !res.SourcesChecked {
			t.Fatalf("live report %+v, want only the forgery, inserted", res.Report)
		}
	})
}

// Ensure the trail continues across a server restart from where it was:
// one chain, nothing recorded twice, nothing left out.
func TestAuditTrailSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := mustServe(t, dir)
	c, js := mustClient(t, s.URL())
	mustCustomer(t, c, "before")
	before := waitAudited(t, js)
	s.Close()
	s = mustServe(t, dir)
	c, js = mustClient(t, s.URL())
	mustCustomer(t, c, "after")
	st := waitAudited(t, js)
	if st.Seq != before.Seq+2 || st.StreamLast != st.Seq {
		t.Fatalf("before %+v, after %+v: want two more entries", before, st)
	}
	if r := cli(t, s.URL(), "audit", "verify"); r.code != exitOK {
		t.Fatalf("verify after restart: exit %d, out %q", r.code, r.out)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(tb testing.TB, ok func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			tb.Fatal("condition never met")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
