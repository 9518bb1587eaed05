package main

import (
	"strings"
	"testing"
	"time"
)

// Ensure the whole manual works from the CLI: set the Customer ID, download,
// activate a capacity and a maintenance license, see them leave the
// download list and appear in Manage Licenses, transfer them to the cloud,
// see them back in the download list with a transfer date, and activate
// them on a second SmartServer.
func TestManualWalkthrough(t *testing.T) {
	manualWalkthrough(t, mustServe(t, t.TempDir()).URL())
}

// manualWalkthrough is TestManualWalkthrough against the licensebus that
// url reaches (TestClusterWalkthrough runs it on a cluster).
func manualWalkthrough(t *testing.T, url string) {
	today := time.Now().UTC().Format(time.DateOnly)

	cid := mustCLI(t, url, "customer", "create", "--name", "P2022-0208")
	capID := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "capacity", "--devices", "200")
	mntID := mustCLI(t, url, "license", "add", "--customer", cid, "--kind", "maintenance", "--devices", "200", "--expires", "2099-12-31")
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-0001", "--name", "SC-01", "--version", "3.4")
	mustCLI(t, url, "smartserver", "register", "--install-code", "IC-0002", "--name", "SC-02", "--version", "3.5")

	// Manage Customer Accounts: Segment Controller, Install Code, Customer ID.
	mustCLI(t, url, "smartserver", "set-customer-id", "IC-0001", cid)
	var accounts []struct {
		SegmentController string `json:"segment_controller"`
		InstallCode       string `json:"install_code"`
		CustomerID        string `json:"customer_id"`
	}
	mustJSON(t, url, &accounts, "smartserver", "accounts")
	if len(accounts) != 2 || accounts[0].InstallCode != "IC-0001" || accounts[0].CustomerID != cid || accounts[0].SegmentController != "SC-01" {
		t.Fatalf("accounts=%+v, want IC-0001 with customer %s first", accounts, cid)
	}
	if out := mustCLI(t, url, "smartserver", "accounts"); !strings.Contains(out, "SEGMENT CONTROLLER") || !strings.Contains(out, cid) {
		t.Fatalf("accounts table lacks header or customer:\n%s", out)
	}

	// Download Licenses from the Cloud: both licenses, with transfer date.
	var dl []licenseJSON
	mustJSON(t, url, &dl, "smartserver", "download-licenses", "IC-0001")
	got := ids(dl)
	if len(dl) != 2 || got[capID].Kind != "capacity" || got[mntID].Kind != "maintenance" || got[mntID].Expires != "2099-12-31" {
		t.Fatalf("download list=%+v, want the two licenses", dl)
	}
	if got[capID].TransferDate != today || got[capID].InstallCode != "IC-0001" {
		t.Fatalf("download row=%+v, want transfer date %s on IC-0001", got[capID], today)
	}

	// Activate both; the CLI waits for the outcome.
	mustCLI(t, url, "smartserver", "activate", "IC-0001", capID, mntID)
	mustJSON(t, url, &dl, "smartserver", "download-licenses", "IC-0001")
	if len(dl) != 0 {
		t.Fatalf("download list after activation=%+v, want empty", dl)
	}
	var ml []licenseJSON
	mustJSON(t, url, &ml, "smartserver", "licenses", "IC-0001")
	got = ids(ml)
	if len(ml) != 2 || got[capID].Status != "Active" || got[mntID].Status != "Active" || got[capID].ActivationDate != today ||
		got[mntID].InstallCode != "IC-0001" || got[mntID].CustomerID != cid || got[capID].Devices != 200 {
		t.Fatalf("manage licenses=%+v, want both Active since %s", ml, today)
	}

	// Transfer to cloud: all licenses go back, with a transfer date.
	if r := cli(t, url, "smartserver", "transfer-to-cloud", "IC-0001"); r.code == 0 || !strings.Contains(r.err, "--yes") {
		t.Fatalf("transfer without a terminal or --yes: exit %d, stderr %q; want a refusal naming --yes", r.code, r.err)
	}
	mustCLI(t, url, "smartserver", "transfer-to-cloud", "IC-0001", "--yes")
	mustJSON(t, url, &ml, "smartserver", "licenses", "IC-0001")
	if len(ml) != 0 {
		t.Fatalf("manage licenses after transfer=%+v, want empty", ml)
	}
	mustJSON(t, url, &dl, "smartserver", "download-licenses", "IC-0001")
	got = ids(dl)
	if len(dl) != 2 || got[capID].TransferDate != today || got[mntID].TransferDate != today {
		t.Fatalf("download list after transfer=%+v, want both back with transfer date %s", dl, today)
	}

	// A second SmartServer of the same customer activates them.
	mustCLI(t, url, "smartserver", "set-customer-id", "IC-0002", cid)
	mustCLI(t, url, "smartserver", "download-licenses", "IC-0002")
	mustCLI(t, url, "smartserver", "activate", "IC-0002", capID, mntID)
	mustJSON(t, url, &ml, "smartserver", "licenses", "IC-0002")
	if len(ml) != 2 {
		t.Fatalf("manage licenses on IC-0002=%+v, want both", ml)
	}
	// And the first cannot take them back while they are there.
	r := cli(t, url, "smartserver", "activate", "IC-0001", capID)
	if r.code != exitRefused || !strings.Contains(r.err, "license_already_active") {
		t.Fatalf("activate elsewhere: exit %d stderr %q, want exit 1 license_already_active", r.code, r.err)
	}
}
