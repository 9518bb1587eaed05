package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/provisioner"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/rs/zerolog"
)

// runProvisioner runs a reactive provisioner until the returned stop is
// called; stop waits for it to finish.
func runProvisioner(tb testing.TB, url string, perSecond float64) (stop func()) {
	tb.Helper()
	js := mustService(tb, url) // a component of serve, run apart
	p, err := provisioner.New(provisioner.Config{JS: js, Logger: zerolog.Nop(), Rate: perSecond, Burst: 1})
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.Run(ctx); err != nil {
			tb.Errorf("provisioner: %v", err)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	tb.Cleanup(stop)
	return stop
}

func fleetTotal(tb testing.TB, c *client.Client) devices.Counts {
	tb.Helper()
	var f devices.Fleet
	if err := c.Query(ctxFor(tb, 10*time.Second), client.QueryFleet, client.Params{}, &f); err != nil {
		tb.Fatal(err)
	}
	return f.Total
}

// Ensure reactive provisioning turns 1,000 blue devices green after one
// activation, each provisioned exactly once, even when the provisioner is
// stopped halfway and a new one takes over.
func TestReactiveProvisioningSurvivesRestart(t *testing.T) {
	s := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), NoProvisioner: true})
	url := s.URL()
	c, js := mustClient(t, url)
	f := mustFleet(t, c, "AUTO", 1)
	ic := f.servers[0]
	const n = 1000
	ctx := ctxFor(t, 120*time.Second)
	var last client.Sent
	for range n {
		var err error
		last, err = c.Send(ctx, events.AddDeviceType, &events.AddDevice{InstallCode: ic, Protocol: events.BACnet}, client.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Wait(ctx, last.ID); err != nil {
		t.Fatal(err)
	}
	mustDo(t, c, events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ic, Enabled: true})
	lid := mustLicense(t, c, f.customer, events.Capacity)
	mustDo(t, c, events.AddLicenseType, &events.AddLicense{CustomerID: f.customer, Kind: events.Capacity, Devices: 800}) // 200+800 = n
	var more []string
	var inv []struct {
		LicenseID string `json:"license_id"`
	}
	if err := c.Query(ctx, client.QueryInventory, client.Params{CustomerID: f.customer, State: "cloud"}, &inv); err != nil {
		t.Fatal(err)
	}
	for _, l := range inv {
		if l.LicenseID != lid {
			more = append(more, l.LicenseID)
		}
	}

	// 100 devices a second, in batches of 100 (the burst): the first
	// provisioner is stopped once a third is green, with seven batches
	// still to come. At 500 a second, two batches made all 1,000 green
	// before a busy CI machine's check saw the first (failed once).
	stop := runProvisioner(t, url, 100)
	mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid})
	mustDo(t, c, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: more[0]})
	for fleetTotal(t, c).Green < n/3 {
		if ctx.Err() != nil {
			t.Fatal("no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	half := fleetTotal(t, c)
	if half.Green >= n {
		t.Fatalf("green=%d before the restart; the test wants the provisioner stopped halfway", half.Green)
	}

	runProvisioner(t, url, 5000)
	for fleetTotal(t, c).Green < n {
		if ctx.Err() != nil {
			t.Fatalf("after restart: %+v, want %d green", fleetTotal(t, c), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	caughtUp(t, c)
	// Every device provisioned exactly once, across all batches.
	times := map[string]int{}
	for _, m := range streamEvents(t, js, "lb.evt.smartserver."+ic+".devices_provisioned") {
		for _, id := range m.Data.(*events.DevicesProvisioned).DeviceIDs {
			times[id]++
		}
	}
	for _, m := range streamEvents(t, js, "lb.evt.smartserver."+ic+".device_provisioned") {
		times[m.Data.(*events.DeviceProvisioned).DeviceID]++
	}
	if len(times) != n {
		t.Fatalf("%d devices provisioned, want %d (stopped at %d green)", len(times), n, half.Green)
	}
	for id, k := range times {
		if k != 1 {
			t.Fatalf("device %s provisioned %d times, want once", id, k)
		}
	}
	for _, m := range streamEvents(t, js, "lb.evt.rejected.>") {
		if r := m.Data.(*events.Rejected); r.Reason != events.ReasonAlreadyProvisioned {
			t.Fatalf("rejection %s: %s, want none (or only a repeat refused as already provisioned)", r.Reason, r.Message)
		}
	}
}
