package main

import (
	"strings"
	"testing"
)

type deviceJSON struct {
	DeviceID    string `json:"device_id"`
	InstallCode string `json:"install_code"`
	Name        string `json:"name"`
	Protocol    string `json:"protocol"`
	State       string `json:"state"`
	Colour      string `json:"colour"`
}

func deviceColours(tb testing.TB, url, ic string) string {
	tb.Helper()
	var ds []deviceJSON
	mustJSON(tb, url, &ds, "device", "list", ic)
	var cs []string
	for _, d := range ds {
		cs = append(cs, d.Colour)
	}
	return strings.Join(cs, " ")
}

// Ensure the manual's sequence holds exactly, from the CLI: devices green →
// transfer to cloud → all purple → activate a new capacity license → blue
// (not green) → provision → green.
func TestManualColourSequence(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "P2022-0208")
	first := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "2")
	second := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "2")
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-1", "--name", "SC-01", "--version", "3.4")
	mustCLI(t, url, "smartserver", "set-customer-id", "IC-1", cid)
	mustCLI(t, url, "smartserver", "download-licenses", "IC-1")
	var ids []string
	for _, p := range []string{"lon", "bacnet", "modbus"} {
		ids = append(ids, mustCLI(t, url, "device", "add", "IC-1", "--protocol", p, "--name", "dev-"+p))
	}
	steps := []struct {
		do   []string
		want string
	}{
		{nil, "purple purple purple"},
		{[]string{"smartserver", "activate", "IC-1", first}, "blue blue purple"},
		{[]string{"device", "provision", "IC-1", "--all"}, "green green purple"},
		{[]string{"smartserver", "transfer-to-cloud", "IC-1", "--yes"}, "purple purple purple"},
		{[]string{"smartserver", "activate", "IC-1", second}, "blue blue purple"},
		{[]string{"device", "provision", "IC-1", ids[0], ids[1]}, "green green purple"},
		{[]string{"device", "remove", "IC-1", ids[0]}, "green blue"},
	}
	for i, st := range steps {
		if st.do != nil {
			mustCLI(t, url, st.do...)
		}
		if got := deviceColours(t, url, "IC-1"); got != st.want {
			t.Fatalf("step %d (%v): colours %q, want %q", i, st.do, got, st.want)
		}
	}

	// Refusals: a purple device, an unknown device, one on another SmartServer.
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-2", "--name", "SC-02", "--version", "3.4")
	other := mustCLI(t, url, "device", "add", "IC-2", "--protocol", "lon")
	refusals := []struct {
		name   string
		args   []string
		reason string
	}{
		{"purple", []string{"device", "provision", "IC-2", other}, "device_unlicensed"},
		{"unknown", []string{"device", "provision", "IC-1", "00000000-0000-4000-8000-000000000000"}, "unknown_device"},
		{"other SmartServer", []string{"device", "provision", "IC-1", other}, "device_on_other_smartserver"},
		{"not a UUID", []string{"device", "provision", "IC-1", "AHU-1"}, "bad_uuid"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			res := cli(t, url, r.args...)
			if res.code != exitRefused || !strings.Contains(res.err, r.reason) {
				t.Fatalf("exit %d stderr %q, want exit 1 with %s", res.code, res.err, r.reason)
			}
		})
	}

	// Fleet counters follow the colours.
	var f struct {
		Total struct{ Purple, Blue, Green, Total int } `json:"total"`
	}
	mustJSON(t, url, &f, "fleet", "status")
	if f.Total.Purple != 1 || f.Total.Blue != 1 || f.Total.Green != 1 || f.Total.Total != 3 {
		t.Fatalf("fleet total=%+v, want 1 purple, 1 blue, 1 green of 3", f.Total)
	}
}
