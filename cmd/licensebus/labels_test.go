package main

import (
	"strings"
	"testing"
)

// tableRow returns the line of a table that mentions key.
func tableRow(tb testing.TB, table, key string) string {
	tb.Helper()
	for _, line := range strings.Split(table, "\n") {
		if strings.Contains(line, key) {
			return line
		}
	}
	tb.Fatalf("no row mentions %s in:\n%s", key, table)
	return ""
}

// Ensure every view means the same by "Segment Controller": the
// SmartServer's name, as in the manual, with the install code in a column
// of its own; and that counts agree with their nouns ("1 device").
func TestViewsNameTheSegmentController(t *testing.T) {
	s := mustServe(t, t.TempDir())
	url := s.URL()
	cid := mustCLI(t, url, "customer", "create", "--name", "P-LABELS")
	lid := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "1")
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-LBL", "--name", "SC-LBL", "--version", "3.4")
	mustCLI(t, url, "smartserver", "set-customer-id", "IC-LBL", cid)

	check := func(view, table string) {
		t.Helper()
		if !strings.Contains(table, "SEGMENT CONTROLLER") || !strings.Contains(table, "INSTALL CODE") {
			t.Fatalf("%s lacks a Segment Controller or an Install Code column:\n%s", view, table)
		}
		row := tableRow(t, table, lid)
		if !strings.Contains(row, "SC-LBL") || !strings.Contains(row, "IC-LBL") {
			t.Fatalf("%s row %q, want the name SC-LBL and the install code IC-LBL", view, row)
		}
		if !strings.Contains(row, "1 device") || strings.Contains(row, "1 devices") {
			t.Fatalf("%s row %q, want \"1 device\"", view, row)
		}
	}
	check("Download Licenses", mustCLI(t, url, "smartserver", "download-licenses", "IC-LBL"))
	var dl []struct {
		SegmentController string `json:"segment_controller"`
		InstallCode       string `json:"install_code"`
	}
	mustJSON(t, url, &dl, "smartserver", "download-licenses", "IC-LBL")
	if len(dl) != 1 || dl[0].SegmentController != "SC-LBL" || dl[0].InstallCode != "IC-LBL" {
		t.Fatalf("download-licenses -o json=%+v, want segment_controller SC-LBL, install_code IC-LBL", dl)
	}
	mustCLI(t, url, "smartserver", "activate", "IC-LBL", lid)
	check("Manage Licenses", mustCLI(t, url, "smartserver", "licenses", "IC-LBL"))
	check("license list", mustCLI(t, url, "license", "list", "--customer", cid))
}
