package main

import (
	"sync"
	"testing"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
)

// Ensure a license is bound to at most one SmartServer when many SmartServers
// ask for it at once and two licensebus processes handle the requests: the
// expected-sequence append lets exactly one win, and every other request is
// rejected with license_already_active.
func TestConcurrentActivationsOneWinner(t *testing.T) {
	// One message per pull, so both processes get a share of the requests
	// for the same license and really race on it.
	a := mustServeCfg(t, ServeConfig{DataDir: t.TempDir(), Batch: 1})
	mustJoin(t, a.URL(), 1, a.SigningKeyFile())
	concurrentActivations(t, a.URL())
}

// concurrentActivations is TestConcurrentActivationsOneWinner against the
// licensebus processes that url reaches.
func concurrentActivations(t *testing.T, url string) {
	c, js := mustClient(t, url)
	const servers, rounds = 16, 4
	f := mustFleet(t, c, "RACE", servers)

	for round := range rounds {
		lid := mustLicense(t, c, f.customer, events.Capacity)
		ctx := ctxFor(t, 60*time.Second)
		var wg sync.WaitGroup
		results := make(chan error, servers)
		start := make(chan struct{})
		for _, ic := range f.servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				out, err := c.Do(ctx, events.ActivateLicenseType, &events.ActivateLicense{InstallCode: ic, LicenseID: lid}, client.SendOptions{})
				if out == nil && err != nil {
					t.Errorf("round %d: activate on %s: %v", round, ic, err)
					return
				}
				results <- err
			}()
		}
		close(start)
		wg.Wait()
		close(results)
		won, lost := 0, 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case events.AsRejection(err) != nil && events.AsRejection(err).Reason == events.ReasonAlreadyActive:
				lost++
			default:
				t.Errorf("round %d: unexpected outcome %v", round, err)
			}
		}
		if won != 1 || lost != servers-1 {
			t.Fatalf("round %d: %d activations won and %d were refused, want 1 and %d", round, won, lost, servers-1)
		}
		if n := subjectCount(t, js, events.EventsStream, "lb.evt.license."+lid+".bound"); n != 1 {
			t.Fatalf("round %d: license bound %d times in the stream, want 1", round, n)
		}
	}
}
