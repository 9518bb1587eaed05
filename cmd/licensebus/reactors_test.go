package main

import (
	"strings"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
)

// Ensure `reactors status` shows the three reactors of serve with their
// checkpoints, which reach the end of the event stream once an activation
// (a request, an answer and a trigger) has been reacted to; as a table and
// as JSON.
func TestReactorsStatus(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	c, _ := mustClient(t, url)
	f := mustFleet(t, c, "REACT", 1)
	lid := mustLicense(t, c, f.customer, events.Capacity)
	mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: f.servers[0], LicenseID: lid})

	type status struct {
		EventsLastSeq uint64 `json:"events_last_seq"`
		Reactors      []struct {
			Name       string `json:"name"`
			Checkpoint uint64 `json:"checkpoint"`
			Behind     uint64 `json:"behind"`
		} `json:"reactors"`
	}
	var st status
	ctx := ctxFor(t, 30*time.Second)
	for {
		st = status{}
		mustJSON(t, url, &st, "reactors", "status")
		behind := uint64(0)
		for _, r := range st.Reactors {
			behind += r.Behind
		}
		if len(st.Reactors) == 3 && behind == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("reactors never caught up: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, want := range []string{"cloud-requests", "device-answers", "provisioner-triggers"} {
		if r := st.Reactors[i]; r.Name != want || r.Checkpoint != st.EventsLastSeq {
			t.Fatalf("reactor %d: %+v, want %s at %d", i, r, want, st.EventsLastSeq)
		}
	}
	if out := mustCLI(t, url, "reactors", "status"); !strings.Contains(out, "BEHIND") || !strings.Contains(out, "provisioner-triggers") {
		t.Fatalf("reactors table lacks header or a reactor:\n%s", out)
	}
}
