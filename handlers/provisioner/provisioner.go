// Package provisioner connects reactive DMM provisioning (package
// provisioning) to the bus. When an event makes devices blue on a
// SmartServer whose policy is on (a license activated, a device added, a
// slot freed, the policy turned on), it sends provision_devices commands
// for them in batches, with causation pointing at that event.
//
// It is idempotent and survives restarts: triggers come from a reactor on
// the process's feed whose checkpoint passes a trigger only once every
// command it causes is stored; a command's id derives from the trigger and
// the exact devices, so a trigger handled again produces the same ids,
// which JetStream and the device side recognise. Sending is rate-limited
// per SmartServer, so a 10,000-device activation does not flood one
// controller.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/handlers/provisioning"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/tracing"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
)

// TriggersReactor names the reactions to the events that can make devices
// blue (its checkpoint in bus.ReactorsBucket). Like a durable's name, it
// must not change.
const TriggersReactor = "provisioner-triggers"

// replacedConsumers did the reactor's work in earlier versions: one durable
// per trigger ("provisioner-" and its verb), and before them one with all
// the filters.
var replacedConsumers = []string{"provisioner-license_activated", "provisioner-device_added", "provisioner-device_removed",
	"provisioner-registered", "provisioner-devices_added", "provisioner-auto_provision_set", "provisioner"}

// Source is the CloudEvent source and actor of the commands it sends.
const Source = "/licensebus/provisioner"

// Config holds a Provisioner's dependencies and limits.
type Config struct {
	JS     jetstream.JetStream // required
	Logger zerolog.Logger
	// Rate is how many devices per second it provisions on one
	// SmartServer; default 200. Burst defaults to Rate.
	Rate  float64
	Burst int
	// InFlight bounds commands being published at once; default 64.
	InFlight int
	// Feed shares one read of the event stream; default its own.
	Feed *bus.Feed
}

// Provisioner sends ProvisionDevice commands. Run it with Run.
type Provisioner struct {
	js    jetstream.JetStream
	log   zerolog.Logger
	fold  *bus.Fold
	react *bus.Reactor
	cfg   Config
	sem   chan struct{}

	mu      sync.Mutex
	servers map[string]*server
}

// server is what the provisioner knows of one SmartServer: its
// provisioning state, and its queue of devices to send.
type server struct {
	state   provisioning.State
	limiter *rate.Limiter
	queue   []item
	running bool
}

type item struct {
	device, cause string
	trigger       *triggered
}

// triggered counts down the commands of one trigger still to be stored.
type triggered struct {
	left atomic.Int32
	done chan struct{} // closed when left reaches 0
	// trace is the trigger's trace context: its commands continue it.
	trace [2]string
}

func (t *triggered) stored() {
	if t.left.Add(-1) == 0 {
		close(t.done)
	}
}

// New returns a Provisioner.
func New(cfg Config) (*Provisioner, error) {
	if cfg.JS == nil {
		return nil, errors.New("provisioner: JS is required")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 200
	}
	if cfg.Burst <= 0 {
		cfg.Burst = max(1, int(cfg.Rate))
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 64
	}
	p := &Provisioner{js: cfg.JS, log: cfg.Logger.With().Str("component", "provisioner").Logger(), cfg: cfg,
		sem: make(chan struct{}, cfg.InFlight), servers: make(map[string]*server)}
	if cfg.Feed == nil {
		cfg.Feed = bus.NewFeed(cfg.JS, p.log)
	}
	p.fold = cfg.Feed.Fold(p.apply)
	// A reaction lasts until the trigger's commands are stored, which the
	// rate limit can stretch: enough workers that one SmartServer waiting
	// rarely holds up another.
	triggers := provisioning.Triggers()
	p.react = cfg.Feed.React(bus.ReactorConfig{
		Name: TriggersReactor, Workers: 128, Replaces: replacedConsumers, DeadLetters: bus.NewDeadLetters(cfg.JS), Logger: p.log,
		Match:  func(m *events.Message) bool { return slices.Contains(triggers, m.Type()) },
		Key:    func(m *events.Message) string { return m.Data.Key() },
		Handle: p.trigger,
		OnLead: p.forgetSent,
	})
	return p, nil
}

func (p *Provisioner) get(ic string) *server {
	s := p.servers[ic]
	if s == nil {
		s = &server{limiter: rate.NewLimiter(rate.Limit(p.cfg.Rate), p.cfg.Burst)}
		p.servers[ic] = s
	}
	return s
}

// apply folds SmartServer events into the provisioning states.
func (p *Provisioner) apply(_ uint64, m *events.Message) {
	if m == nil || m.Info.Aggregate != "smartserver" || m.Data == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	provisioning.Evolve(&p.get(m.Data.Key()).state, m)
}

// Run folds the stream and provisions until ctx ends.
func (p *Provisioner) Run(ctx context.Context) error {
	p.log.Info().Float64("rate_per_smartserver", p.cfg.Rate).Msg("provisioner starting")
	if err := bus.Serve(ctx, p.js, bus.Service{Fold: p.fold, Reactors: []*bus.Reactor{p.react}}); err != nil {
		return fmt.Errorf("provisioner: %w", err)
	}
	return nil
}

// trigger queues a command for every blue device the event made eligible
// (all blue devices, when the event turned the policy on), and returns once
// the last of them is stored: until then the reactor's checkpoint stays
// before the trigger, so a restart sends what was not stored again.
func (p *Provisioner) trigger(ctx context.Context, d *bus.Delivery) error {
	if err := p.fold.WaitFor(ctx, d.Seq); err != nil {
		return err
	}
	m := d.Message
	ic := m.Data.Key()

	p.mu.Lock()
	s := p.get(ic)
	devices := provisioning.Provision(&s.state, m)
	if len(devices) == 0 {
		p.mu.Unlock()
		return nil
	}
	t := &triggered{done: make(chan struct{}), trace: [2]string{m.TraceParent(), m.TraceState()}}
	t.left.Store(int32(len(devices)))
	s.state.MarkSent(devices)
	for _, id := range devices {
		s.queue = append(s.queue, item{device: id, cause: m.ID(), trigger: t})
	}
	if !s.running {
		s.running = true
		go p.drain(ctx, ic, s)
	}
	p.mu.Unlock()

	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// drain sends one SmartServer's queued devices at its rate, in batches of
// consecutive devices with the same trigger, as large as the burst allows.
func (p *Provisioner) drain(ctx context.Context, ic string, s *server) {
	for {
		p.mu.Lock()
		if len(s.queue) == 0 || ctx.Err() != nil {
			s.running = false
			p.mu.Unlock()
			return
		}
		causes := make([]string, min(len(s.queue), p.cfg.Burst, events.MaxDeviceBatch))
		for i := range causes {
			causes[i] = s.queue[i].cause
		}
		n := provisioning.Batch(causes, len(causes))
		batch := slices.Clone(s.queue[:n])
		s.queue = s.queue[n:]
		if len(s.queue) == 0 {
			s.queue = nil // don't pin the drained backing array
		}
		p.mu.Unlock()

		if err := s.limiter.WaitN(ctx, n); err != nil {
			continue // ctx ended: the trigger stays open and comes back
		}
		p.sem <- struct{}{}
		err := p.send(ctx, ic, batch)
		<-p.sem
		if err != nil {
			// Put it back at the head of the queue and try again shortly:
			// its trigger stays open until it is stored.
			p.log.Warn().Err(err).Str("install_code", ic).Int("devices", n).Msg("provision command not sent; retrying")
			p.mu.Lock()
			s.queue = append(batch, s.queue...)
			p.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		for _, it := range batch {
			it.trigger.stored()
		}
	}
}

// send publishes one ProvisionDevices command. Its id derives from the
// trigger and the exact devices, so a batch sent again after a restart is
// recognised as a repeat, while a batch of other devices never is.
func (p *Provisioner) send(ctx context.Context, ic string, batch []item) error {
	ids := make([]string, len(batch))
	for i, it := range batch {
		ids[i] = it.device
	}
	cause := batch[0].cause
	id := provisioning.CommandID(cause, ids)
	tr := batch[0].trigger.trace
	meta := events.Meta{ID: id, Source: Source, CorrelationID: id, CausationID: cause, Actor: Source, TraceParent: tr[0], TraceState: tr[1]}
	tracing.Inject(ctx, &meta)
	m, err := events.New(events.ProvisionDevicesType, &events.ProvisionDevices{InstallCode: ic, DeviceIDs: ids}, meta)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = p.js.PublishMsg(pctx, bus.Msg(m))
	return err
}
