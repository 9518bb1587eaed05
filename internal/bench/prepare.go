package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections/licensing"
)

// prepare creates a customer, n SmartServers with the Customer ID set and
// licenses downloaded, and n capacity licenses of devices devices, through
// commands as a technician would, and returns one ActivateLicense command
// per SmartServer.
func (b *run) prepare(ctx context.Context, prefix string, n, devices int) ([]*target, error) {
	c := b.client
	cust := uuid.NewString()
	if _, err := c.Do(ctx, events.CreateCustomerType, &events.CreateCustomer{CustomerID: cust, Name: prefix}, client.SendOptions{}); err != nil {
		return nil, fmt.Errorf("create customer: %w", err)
	}
	ts := make([]*target, n)
	for i := range ts {
		ts[i] = &target{ic: fmt.Sprintf("%s-%06d", prefix, i), lid: uuid.NewString()}
	}
	// SmartServers first: while the customer has no licenses yet, checking
	// a SmartServer's download view costs next to nothing.
	err := parallel(ctx, n, func(i int) error {
		ic := ts[i].ic
		return b.send(ctx,
			command{events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"}},
			command{events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: cust}},
			command{events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}})
	})
	if err != nil {
		return nil, fmt.Errorf("prepare SmartServers: %w", err)
	}
	if err := b.waitAll(ctx, ts, func(t *target) bool {
		_, err := b.p.Licensing.Downloads(t.ic)
		return err == nil
	}); err != nil {
		return nil, fmt.Errorf("prepare SmartServers: %w", err)
	}
	err = parallel(ctx, n, func(i int) error {
		return b.send(ctx, command{events.AddLicenseType, &events.AddLicense{LicenseID: ts[i].lid, CustomerID: cust, Kind: events.Capacity, Devices: devices}})
	})
	if err != nil {
		return nil, fmt.Errorf("prepare licenses: %w", err)
	}
	inCloud := 0
	if err := poll(ctx, func() bool {
		inCloud = len(b.p.Licensing.Licenses(licensing.LicenseFilter{CustomerID: cust, State: licensing.StateCloud}))
		return inCloud == n
	}); err != nil {
		return nil, fmt.Errorf("%d of %d licenses in the cloud: %w", inCloud, n, err)
	}
	for _, t := range ts {
		id := uuid.NewString()
		m, err := events.NewCommand(events.ActivateLicenseType, &events.ActivateLicense{InstallCode: t.ic, LicenseID: t.lid},
			events.Meta{ID: id, Source: "/licensebus/bench", CorrelationID: id, Actor: "bench"})
		if err != nil {
			return nil, err
		}
		t.msg = bus.Msg(m)
	}
	return ts, nil
}

// command is one command the bench sends.
type command struct {
	t events.Type
	d events.Data
}

// send sends commands one after the other, each once JetStream stored the
// one before: the handler sees them in that order.
func (b *run) send(ctx context.Context, cmds ...command) error {
	for _, c := range cmds {
		if _, err := b.client.Send(ctx, c.t, c.d, client.SendOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// publish sends the targets' activation commands asynchronously, as fast
// as the window allows.
func (b *run) publish(ctx context.Context, ts []*target) error {
	for _, t := range ts {
		if err := publishAsync(ctx, b.pub, t.msg); err != nil {
			return err
		}
	}
	return nil
}

// parallel runs f(0..n-1) on 64 goroutines and returns the first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range min(64, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// poll calls done every 20ms until it returns true or ctx ends.
func poll(ctx context.Context, done func() bool) error {
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
