package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
)

// fleetConcurrency is the rollout's targets in flight: enough to keep the
// handlers busy, as an operator would set it for a large fleet.
const fleetConcurrency = 1000

// fleet measures what issue #5's operator does: a rollout over N
// registered SmartServers with D purple devices each that sets their
// Customer ID, downloads and activates one capacity license of D devices
// from the pool, and turns reactive provisioning on — timed from the
// rollout command until the fleet counters show every device green.
func (b *run) fleet(ctx context.Context) error {
	n, devs := b.cfg.FleetTargets, b.cfg.FleetDevices
	cctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	c := b.client
	b.progress("preparing a fleet of %d SmartServers with %d devices each", n, devs)
	cust := uuid.NewString()
	if _, err := c.Do(cctx, events.CreateCustomerType, &events.CreateCustomer{CustomerID: cust, Name: "BENCH-FLEET"}, client.SendOptions{}); err != nil {
		return fmt.Errorf("fleet customer: %w", err)
	}
	targets := make([]string, n)
	protocols := [...]string{events.LON, events.BACnet, events.Modbus}
	err := parallel(cctx, n, func(i int) error {
		ic := fmt.Sprintf("BENCH-FLEET-%06d", i)
		targets[i] = ic
		ds := make([]events.NewDevice, devs)
		for d := range ds {
			ds[d] = events.NewDevice{Name: fmt.Sprintf("device-%d", d), Protocol: protocols[d%len(protocols)]}
		}
		return b.send(cctx,
			command{events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"}},
			command{events.AddDevicesType, &events.AddDevices{InstallCode: ic, Devices: ds}},
			command{events.AddLicenseType, &events.AddLicense{CustomerID: cust, Kind: events.Capacity, Devices: devs}})
	})
	if err != nil {
		return fmt.Errorf("fleet setup: %w", err)
	}
	if err := poll(cctx, func() bool {
		f := b.p.Devices.Fleet()
		return f.Total.Purple >= n*devs &&
			len(b.p.Licensing.Licenses(licensing.LicenseFilter{CustomerID: cust, State: licensing.StateCloud})) == n
	}); err != nil {
		return fmt.Errorf("fleet setup: devices purple and licenses in the cloud: %w", err)
	}
	if err := b.settle(cctx); err != nil {
		return err
	}
	if err := b.console(targets); err != nil {
		return err
	}

	b.progress("fleet rollout over %d SmartServers", n)
	greenBefore := b.p.Devices.Totals().Green
	if b.cfg.FleetCPUProfile != nil {
		if err := pprof.StartCPUProfile(b.cfg.FleetCPUProfile); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	rid := uuid.NewString()
	spec := events.RolloutSpec{Kind: events.RolloutActivate, CustomerID: cust, Targets: targets, SetCustomerID: true,
		Activate: []events.LicenseWant{{Kind: events.Capacity, Devices: devs}}, AutoProvision: true,
		Concurrency: fleetConcurrency, Retries: 3}
	if _, err := c.Do(cctx, events.StartRolloutType, &events.StartRollout{RolloutID: rid, Spec: spec},
		client.SendOptions{CorrelationID: rid}); err != nil {
		return fmt.Errorf("fleet rollout: %w", err)
	}
	if err := poll(cctx, func() bool { return b.p.Devices.Totals().Green-greenBefore >= n*devs }); err != nil {
		f := b.p.Devices.Totals()
		return fmt.Errorf("fleet rollout: %d purple, %d blue, %d green: %w", f.Purple, f.Blue, f.Green, err)
	}
	elapsed := time.Since(start)
	if b.cfg.MemProfile != nil {
		runtime.GC()
		if err := pprof.WriteHeapProfile(b.cfg.MemProfile); err != nil {
			return err
		}
	}
	if b.cfg.NATSMemProfile != "" {
		if err := b.natsHeap(b.cfg.NATSMemProfile); err != nil {
			return fmt.Errorf("NATS server heap profile: %w", err)
		}
	}
	r := b.r
	r.FleetTargets, r.FleetDevices = n, devs
	r.FleetSecondsToGreen = elapsed.Seconds()
	r.FleetTargetsPerMin = float64(n) / elapsed.Minutes()
	return nil
}
