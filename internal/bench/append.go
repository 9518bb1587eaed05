package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
)

// appends measures the handlers' append path: build an event with
// events.New and store it with bus.Appender.Append (expected last subject
// sequence on the aggregate's subjects, msg id = event id), from
// cfg.Workers goroutines, each owning cfg.Aggregates SmartServers. The
// events it writes are SmartServer history the product catches up on when
// it starts; they also give the replay and rebuild phases their bulk.
func (b *run) appends(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := bus.EnsureStreams(cctx, b.js); err != nil {
		return err
	}
	app, err := bus.NewAppender(cctx, b.js)
	if err != nil {
		return err
	}
	b.progress("product append of %d events from %d goroutines", b.cfg.Appends, b.cfg.Workers)
	var wg sync.WaitGroup
	errc := make(chan error, b.cfg.Workers)
	start := time.Now()
	for w := range b.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := appendWorker(cctx, app, w, share(b.cfg.Appends, b.cfg.Workers, w), b.cfg.Aggregates); err != nil {
				errc <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return err
	default:
	}
	b.r.AppendRate = float64(b.cfg.Appends) / elapsed.Seconds()
	b.r.EventMsgBytes, err = bytesPerMsg(cctx, b.js, events.EventsStream)
	return err
}

// appendWorker appends n events round robin over its own aggs SmartServers:
// first registered, then customer_id_set and licenses_downloaded in turn.
// None of them is one the handlers react to, so the product only folds them.
func appendWorker(ctx context.Context, app *bus.Appender, w, n, aggs int) error {
	type aggregate struct {
		ic, filter string
		seq        uint64 // expectation of the next append
		events     int
		customer   string
	}
	as := make([]aggregate, aggs)
	for k := range as {
		ic := fmt.Sprintf("BENCH-%03d-%03d", w, k)
		as[k] = aggregate{ic: ic, filter: events.AggregateFilter("smartserver", ic)}
	}
	customers := [2]string{events.DeriveID(strconv.Itoa(w), "customer-a"), events.DeriveID(strconv.Itoa(w), "customer-b")}
	for i := range n {
		a := &as[i%aggs]
		var t events.Type
		var data events.Data
		switch {
		case a.events == 0:
			t, data = events.RegisteredType, &events.Registered{InstallCode: a.ic, Name: "SC-" + a.ic, Version: "3.4"}
		case a.events%2 == 1:
			next := customers[(a.events/2)%2]
			t, data = events.CustomerIDSetType, &events.CustomerIDSet{InstallCode: a.ic, CustomerID: next, Previous: a.customer}
			a.customer = next
		default:
			t, data = events.LicensesDownloadedType, &events.LicensesDownloaded{InstallCode: a.ic, CustomerID: a.customer}
		}
		// The id of the command that would have caused this event: the
		// handlers derive the event's id from it the same way.
		cmd := events.DeriveID(a.ic, strconv.Itoa(a.events))
		m, err := events.New(t, data, events.Meta{ID: events.DeriveID(cmd, string(t)), Source: events.DeviceSource + "/" + a.ic,
			CorrelationID: cmd, CausationID: cmd, Actor: "bench"})
		if err != nil {
			return fmt.Errorf("build %s: %w", t, err)
		}
		seq, err := app.Append(ctx, m, a.filter, a.seq)
		if err != nil {
			return err
		}
		a.seq = seq
		a.events++
	}
	return nil
}
