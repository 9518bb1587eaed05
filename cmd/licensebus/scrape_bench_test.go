package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
)

// BenchmarkScrapeFleet10k times one scrape of /metrics on a server whose
// fleet is 10,000 SmartServers, each with a capacity license activated and
// ten devices (100,000 devices, 10,000 licenses); the goal is under 50 ms
// and under 200 series per family. Building the fleet takes a minute:
//
//	go test ./cmd/licensebus -run '^$' -bench ScrapeFleet10k -benchtime 50x
func BenchmarkScrapeFleet10k(b *testing.B) {
	const servers, devicesEach = 10_000, 10
	s := mustServeCfg(b, ServeConfig{DataDir: b.TempDir()})
	c, js := mustClient(b, s.URL())
	cust := mustCustomer(b, c, "fleet")
	licenses := make([]string, servers)
	send := func(t events.Type, d events.Data) {
		if _, err := c.Send(ctxFor(b, time.Minute), t, d, client.SendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	parallel := func(f func(i int)) {
		var wg sync.WaitGroup
		for w := range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < servers; i += 32 {
					f(i)
				}
			}()
		}
		wg.Wait()
	}
	parallel(func(i int) {
		licenses[i] = uuid.NewString()
		send(events.AddLicenseType, &events.AddLicense{LicenseID: licenses[i], CustomerID: cust, Kind: events.Capacity, Devices: devicesEach})
	})
	waitIdle(b, js, events.CommandsStream, "cloud-commands")
	parallel(func(i int) {
		ic := fmt.Sprintf("IC-%05d", i)
		send(events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"})
		devs := make([]events.NewDevice, devicesEach)
		for j := range devs {
			devs[j] = events.NewDevice{Name: fmt.Sprintf("D-%d", j), Protocol: "bacnet"}
		}
		send(events.AddDevicesType, &events.AddDevices{InstallCode: ic, Devices: devs})
		send(events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: cust})
		send(events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic})
		send(events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: licenses[i]})
	})
	deadline := time.Now().Add(10 * time.Minute)
	for {
		t := s.dev.Totals()
		if t.Blue == servers*devicesEach {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("fleet not built: %+v", t)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p := &probes{metrics: s.Metrics()}
	p.server.Store(s)
	h := p.routes()
	fams := scrape(b, h)
	maxSeries, family := 0, ""
	for name, fam := range fams {
		if n := series(fam); n > maxSeries {
			maxSeries, family = n, name
		}
	}
	if v, _ := fams.value("licensebus_devices", "colour", "blue"); int(v) != servers*devicesEach {
		b.Fatalf("licensebus_devices{colour=blue}=%v, want %d", v, servers*devicesEach)
	}
	b.ReportMetric(float64(maxSeries), "max-series/family")
	b.Logf("largest family: %s, %d series; %d families", family, maxSeries, len(fams))
	b.ResetTimer()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}
