package main

import (
	"testing"

	"github.com/licensebus/licensebus/events"
)

// Ensure `projections rebuild` throws the read models away and rebuilds them
// from the event stream alone with exactly the same views and stored
// entries as the live ones.
func TestRebuildEqualsLive(t *testing.T) {
	s := mustServe(t, t.TempDir())
	c, js := mustClient(t, s.URL())
	f := mustFleet(t, c, "RB", 3)
	for i, ic := range f.servers {
		capID := mustLicense(t, c, f.customer, events.Capacity)
		mntID := mustLicense(t, c, f.customer, events.Maintenance)
		mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: capID})
		mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: mntID})
		if i == 0 {
			mustDo(t, c, events.TransferToCloudType, &events.TransferToCloud{InstallCode: ic})
		}
	}
	mustLicense(t, c, f.customer, events.Capacity) // never activated
	caughtUp(t, c)
	liveViews, liveKV := views(t, c), buckets(t, js)

	mustCLI(t, s.URL(), "projections", "rebuild")
	caughtUp(t, c)
	diff(t, "view", views(t, c), liveViews)
	diff(t, "entry", anyMap(buckets(t, js)), anyMap(liveKV))
}
