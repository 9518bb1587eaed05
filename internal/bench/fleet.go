package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
)

// fleet measures a rollout with reactive provisioning: SmartServers with
// devices and auto-provisioning on, all devices purple; one wave of
// activations; the time until every device of every SmartServer is green.
// That is activation, the provisioner reacting to it, and one provisioning
// command per device, end to end.
func (b *run) fleet(ctx context.Context) error {
	n, devs := b.cfg.FleetTargets, b.cfg.FleetDevices
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	b.progress("preparing a fleet of %d SmartServers with %d devices each", n, devs)
	ts, err := b.prepare(cctx, "BENCH-FLEET", n, max(200, devs))
	if err != nil {
		return err
	}
	protocols := [...]string{events.LON, events.BACnet, events.Modbus}
	err = parallel(cctx, n, func(i int) error {
		cmds := []command{{events.SetAutoProvisionType, &events.SetAutoProvision{InstallCode: ts[i].ic, Enabled: true}}}
		for d := range devs {
			cmds = append(cmds, command{events.AddDeviceType, &events.AddDevice{InstallCode: ts[i].ic, DeviceID: uuid.NewString(),
				Name: fmt.Sprintf("device-%d", d), Protocol: protocols[d%len(protocols)]}})
		}
		return b.send(cctx, cmds...)
	})
	if err != nil {
		return fmt.Errorf("fleet devices: %w", err)
	}
	if err := b.waitAll(cctx, ts, b.all(devs, events.Unlicensed)); err != nil {
		return fmt.Errorf("fleet devices purple: %w", err)
	}
	if err := b.settle(cctx); err != nil {
		return err
	}
	b.progress("fleet rollout: activating %d SmartServers", n)
	start := time.Now()
	if err := b.publish(cctx, ts); err != nil {
		return err
	}
	if err := b.waitAll(cctx, ts, b.all(devs, events.Provisioned)); err != nil {
		return fmt.Errorf("fleet devices green: %w", err)
	}
	elapsed := time.Since(start)
	r := b.r
	r.FleetTargets, r.FleetDevices = n, devs
	r.FleetSecondsToGreen = elapsed.Seconds()
	r.FleetTargetsPerMin = float64(n) / elapsed.Minutes()
	return nil
}

// all reports whether a target's Devices widget shows devs devices, all
// in state.
func (b *run) all(devs int, state events.DeviceState) func(*target) bool {
	return func(t *target) bool {
		rows, err := b.p.Devices.Devices(t.ic)
		if err != nil || len(rows) != devs {
			return false
		}
		for _, r := range rows {
			if r.State != state {
				return false
			}
		}
		return true
	}
}
