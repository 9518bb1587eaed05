package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
)

// Ensure `projections rebuild` throws the read models away and rebuilds them
// from the event stream alone with exactly the same views and stored
// entries as the live ones, deleting entries that no event explains.
func TestRebuildEqualsLive(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "RB", 3)
	var dev []string
	for i, ic := range f.servers {
		for j := range 4 {
			out := mustDo(t, c, events.AddDeviceType, &events.AddDevice{InstallCode: ic, Name: fmt.Sprint("d", j), Protocol: events.LON})
			var d events.DeviceAdded
			mustUnmarshal(t, out.Data, &d)
			dev = append(dev, d.DeviceID)
		}
		capID := mustLicense(t, c, f.customer, events.Capacity)
		mntID := mustLicense(t, c, f.customer, events.Maintenance)
		mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: capID})
		mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: mntID})
		mustDo(t, c, events.ProvisionDeviceType, &events.ProvisionDevice{InstallCode: ic, DeviceID: dev[len(dev)-4]})
		if i == 0 {
			mustDo(t, c, events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic})
		}
		if i == 1 {
			mustDo(t, c, events.RemoveDeviceType, &events.RemoveDevice{InstallCode: ic, DeviceID: dev[len(dev)-3]})
		}
	}
	mustLicense(t, c, f.customer, events.Capacity) // never activated
	caughtUp(t, c)
	liveViews, liveKV := views(t, c), buckets(t, js)

	// Only the service may write a view: the stale entry comes as its.
	stale, err := mustService(t, s.URL()).KeyValue(ctxFor(t, 5*time.Second), "licensebus_view_licensing")
	if err != nil {
		t.Fatal(err)
	}
	// Twice: the second rebuild starts from the entries as the first one
	// left them, without reading the bucket again.
	for round := range 2 {
		if round == 0 {
			// An entry no event explains must be gone after the rebuild.
			if _, err := stale.Put(ctxFor(t, 5*time.Second), "license.stale", []byte(`{"license_id":"stale"}`)); err != nil {
				t.Fatal(err)
			}
		}

		// When the rebuild answers, the buckets hold it: every checkpoint
		// is at the head again.
		var st client.Status
		mustJSON(t, s.URL(), &st, "projections", "rebuild")
		for name, ck := range st.Checkpoints {
			if ck != st.EventsLastSeq {
				t.Errorf("after rebuild %d checkpoint of %s=%d, want the head %d", round, name, ck, st.EventsLastSeq)
			}
		}
		caughtUp(t, c)
		diff(t, "view", views(t, c), liveViews)
		diff(t, "entry", anyMap(buckets(t, js)), anyMap(liveKV))
	}
}

// Ensure a restarted server restores its read models from their buckets
// (not from a replay) to exactly the views it had, and goes on from there.
func TestRestartRestoresViews(t *testing.T) {
	dir := t.TempDir()
	s := mustServe(t, dir)
	c, _ := mustClient(t, s.URL())
	f := mustFleet(t, c, "RS", 2)
	lid := mustLicense(t, c, f.customer, events.Capacity)
	mustDo(t, c, events.AddLicenseType, &events.AddLicense{CustomerID: f.customer, Kind: events.Capacity, Devices: 2})
	ic := f.servers[0]
	var ids []string
	for j := range 5 {
		out := mustDo(t, c, events.AddDeviceType, &events.AddDevice{InstallCode: ic, Name: fmt.Sprint("d", j), Protocol: events.Modbus})
		var d events.DeviceAdded
		mustUnmarshal(t, out.Data, &d)
		ids = append(ids, d.DeviceID)
	}
	mustDo(t, c, events.RemoveDeviceType, &events.RemoveDevice{InstallCode: ic, DeviceID: ids[1]})
	mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid})
	mustDo(t, c, events.ProvisionDeviceType, &events.ProvisionDevice{InstallCode: ic, DeviceID: ids[3]})
	caughtUp(t, c)
	before := views(t, c)
	s.Close()

	s2 := mustServe(t, dir)
	c2, _ := mustClient(t, s2.URL())
	caughtUp(t, c2)
	diff(t, "view after restart", views(t, c2), before)

	// Order survived the restore: removing the first device frees a slot
	// for the next one in order of addition.
	mustDo(t, c2, events.RemoveDeviceType, &events.RemoveDevice{InstallCode: ic, DeviceID: ids[0]})
	var rows []struct {
		DeviceID string `json:"device_id"`
		Colour   string `json:"colour"`
	}
	if err := c2.Query(ctxFor(t, 10*time.Second), client.QueryDevices, client.Params{InstallCode: ic}, &rows); err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, r := range rows {
		got += r.Colour + " "
	}
	// d2 d3 d4 with capacity 200: d2 blue, d3 green, d4 blue.
	if got != "blue green blue " {
		t.Fatalf("colours after restart and removal=%q, want \"blue green blue \"", got)
	}
}
