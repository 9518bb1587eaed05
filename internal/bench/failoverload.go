package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/projections"
	"github.com/licensebus/licensebus/projections/devices"
	"github.com/licensebus/licensebus/projections/licensing"
	"github.com/licensebus/licensebus/projections/rollouts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// outcomeLog is every outcome the outcomes bucket got during a run: when
// it was written and whether the command was accepted, by command id.
type outcomeLog struct {
	mu   sync.Mutex
	seen map[string]seenOutcome
}

type seenOutcome struct {
	at       time.Time
	accepted bool
}

// watchOutcomes follows the outcomes bucket until stop is called.
func watchOutcomes(ctx context.Context, js jetstream.JetStream) (*outcomeLog, func(), error) {
	kv, err := js.KeyValue(ctx, projections.Bucket(licensing.NewOutcomes()))
	if err != nil {
		return nil, nil, fmt.Errorf("outcomes bucket: %w", err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	l := &outcomeLog{seen: map[string]seenOutcome{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut || e.Key() == projections.CheckpointKey {
				continue
			}
			var o licensing.Outcome
			if json.Unmarshal(e.Value(), &o) != nil {
				continue
			}
			l.mu.Lock()
			if _, ok := l.seen[e.Key()]; !ok {
				l.seen[e.Key()] = seenOutcome{at: e.Created(), accepted: o.Status == "accepted"}
			}
			l.mu.Unlock()
		}
	}()
	return l, func() { cancel(); _ = w.Stop(); <-done }, nil
}

func (f *failover) watchOutcomes(ctx context.Context) (*outcomeLog, func(), error) {
	return watchOutcomes(ctx, f.js)
}

// missing lists the ids that have no outcome yet.
func (l *outcomeLog) missing(ids []string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, id := range ids {
		if _, ok := l.seen[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// wait waits until every id has an outcome or d passes, and returns those
// that have none.
func (l *outcomeLog) wait(ctx context.Context, ids []string, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		m := l.missing(ids)
		if len(m) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return m
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// rates is, for each phase between consecutive marks, the accepted
// outcomes written in it per second.
func (l *outcomeLog) rates(marks []time.Time) []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]float64, len(marks)-1)
	for _, o := range l.seen {
		if !o.accepted {
			continue
		}
		for k := range out {
			if !o.at.Before(marks[k]) && o.at.Before(marks[k+1]) {
				out[k]++
			}
		}
	}
	for k := range out {
		out[k] /= marks[k+1].Sub(marks[k]).Seconds()
	}
	return out
}

func (f *failover) waitOutcomes(ctx context.Context, l *outcomeLog, ids []string, d time.Duration) []string {
	return l.wait(ctx, ids, d)
}

// sendAll sends commands on 32 goroutines, each retried with its id until
// JetStream acknowledges it, and returns their ids in order.
func sendAll(ctx context.Context, c *client.Client, cmds []command) ([]string, error) {
	ids := make([]string, len(cmds))
	err := parallel(ctx, len(cmds), func(i int) error {
		ids[i] = uuid.NewString()
		return sendRetried(ctx, c, cmds[i], ids[i], time.Minute)
	})
	return ids, err
}

// sendRetried sends one command, again with the same id after a failure
// (JetStream drops the repeat of one that was stored), until it is
// acknowledged or d passes.
func sendRetried(ctx context.Context, c *client.Client, cmd command, id string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.Send(sctx, cmd.t, cmd.d, client.SendOptions{ID: id})
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// prepareFleet creates a customer, s SmartServers with its Customer ID set
// and licenses downloaded, and n capacity licenses, waiting for each
// outcome in l.
func prepareFleet(ctx context.Context, c *client.Client, l *outcomeLog, prefix string, s, n int) ([]string, []string, error) {
	cust := uuid.NewString()
	ids, err := sendAll(ctx, c, []command{{events.CreateCustomerType, &events.CreateCustomer{CustomerID: cust, Name: prefix}}})
	if err != nil {
		return nil, nil, err
	}
	if m := l.wait(ctx, ids, time.Minute); len(m) > 0 {
		return nil, nil, errors.New("the customer was not created")
	}
	servers := make([]string, s)
	for _, step := range []func(ic string) command{
		func(ic string) command {
			return command{events.RegisterType, &events.Register{InstallCode: ic, Name: "SC-" + ic, Version: "3.4"}}
		},
		func(ic string) command {
			return command{events.SetCustomerIDType, &events.SetCustomerID{InstallCode: ic, CustomerID: cust}}
		},
		func(ic string) command {
			return command{events.DownloadLicensesType, &events.DownloadLicenses{InstallCode: ic}}
		},
	} {
		cmds := make([]command, s)
		for i := range servers {
			servers[i] = fmt.Sprintf("%s-%05d", prefix, i)
			cmds[i] = step(servers[i])
		}
		ids, err := sendAll(ctx, c, cmds)
		if err != nil {
			return nil, nil, err
		}
		if m := l.wait(ctx, ids, 2*time.Minute); len(m) > 0 {
			return nil, nil, fmt.Errorf("%d SmartServer commands have no outcome", len(m))
		}
	}
	lids := make([]string, n)
	cmds := make([]command, n)
	for i := range lids {
		lids[i] = uuid.NewString()
		cmds[i] = command{events.AddLicenseType, &events.AddLicense{LicenseID: lids[i], CustomerID: cust, Kind: events.Capacity, Devices: 200}}
	}
	ids, err = sendAll(ctx, c, cmds)
	if err != nil {
		return nil, nil, err
	}
	if m := l.wait(ctx, ids, 5*time.Minute); len(m) > 0 {
		return nil, nil, fmt.Errorf("%d licenses have no outcome", len(m))
	}
	return servers, lids, nil
}

func (f *failover) prepare(ctx context.Context, s, n int) ([]string, []string, error) {
	var err error
	if f.c, err = client.New(ctx, f.nc, "bench"); err != nil {
		return nil, nil, err
	}
	l, stop, err := watchOutcomes(ctx, f.js)
	if err != nil {
		return nil, nil, err
	}
	defer stop()
	return prepareFleet(ctx, f.c, l, "FAILOVER", s, n)
}

// load sends one activation every 1/rate seconds, each on its own
// goroutine so that a send stuck in a failover does not hold up the next.
type load struct {
	mu    sync.Mutex
	acked []string
	stopc chan struct{}
	wg    sync.WaitGroup
}

func startLoad(ctx context.Context, c *client.Client, rate float64, servers, lids []string) *load {
	l := &load{stopc: make(chan struct{})}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
		for i, lid := range lids {
			select {
			case <-tick.C:
			case <-l.stopc:
				return
			case <-ctx.Done():
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				id := uuid.NewString()
				cmd := command{events.ActivateLicenseType, &events.ActivateLicense{InstallCode: servers[i%len(servers)], LicenseID: lid}}
				if sendRetried(ctx, c, cmd, id, time.Minute) == nil {
					l.mu.Lock()
					l.acked = append(l.acked, id)
					l.mu.Unlock()
				}
			}()
		}
	}()
	return l
}

func (f *failover) startLoad(ctx context.Context, servers, lids []string) *load {
	return startLoad(ctx, f.c, f.cfg.Rate, servers, lids)
}

// stop stops sending, waits for the sends under way, and returns the ids
// JetStream acknowledged.
func (l *load) stop() []string {
	close(l.stopc)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.acked...)
}

// boundTwice counts the licenses with more than one license.bound event.
func boundTwice(ctx context.Context, js jetstream.JetStream) (int, error) {
	s, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter("lb.evt.license.*.bound"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, c := range info.State.Subjects {
		if c > 1 {
			n++
		}
	}
	return n, nil
}

// eventsTwice counts the CloudEvent ids stored more than once in the event
// stream (an event written twice).
func eventsTwice(ctx context.Context, js jetstream.JetStream) (int, error) {
	seen := map[string]int{}
	err := readAll(ctx, js, events.EventsStream, true, func(m jetstream.Msg) {
		if id := m.Headers().Get(nats.MsgIdHdr); id != "" {
			seen[id]++
		}
	})
	n := 0
	for _, c := range seen {
		if c > 1 {
			n++
		}
	}
	return n, err
}

// auditTwice counts the source messages the trail records more than once.
func auditTwice(ctx context.Context, js jetstream.JetStream) (int, error) {
	seen := map[string]int{}
	err := readAll(ctx, js, trail.Stream, false, func(m jetstream.Msg) {
		if e, _, err := trail.Open(m.Data()); err == nil {
			seen[fmt.Sprint(e.Stream, "/", e.StreamSeq)]++
		}
	})
	n := 0
	for _, c := range seen {
		if c > 1 {
			n++
		}
	}
	return n, err
}

// readAll hands every message of stream, in order, to f.
func readAll(ctx context.Context, js jetstream.JetStream, stream string, headersOnly bool, f func(jetstream.Msg)) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		return err
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{HeadersOnly: headersOnly})
	if err != nil {
		return err
	}
	for {
		b, err := cons.Fetch(4096, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		var last uint64
		for m := range b.Messages() {
			f(m)
			if md, err := m.Metadata(); err == nil {
				last = md.Sequence.Stream
			}
		}
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if last >= info.State.LastSeq || last == 0 {
			return nil
		}
	}
}

// auditBehind is how many source messages the trail lacks.
func auditBehind(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	st, err := audit.ReadStatus(ctx, js)
	if err != nil {
		return 0, err
	}
	return st.Behind(), nil
}

// viewEntries reads every entry of the view buckets but their
// checkpoints.
func viewEntries(ctx context.Context, js jetstream.JetStream) (map[string]string, error) {
	out := map[string]string{}
	for _, m := range []projections.Model{licensing.New(nil), devices.New(), rollouts.New(), licensing.NewOutcomes()} {
		stream := "KV_" + projections.Bucket(m)
		prefix := "$KV." + projections.Bucket(m) + "."
		s, err := js.Stream(ctx, stream)
		if err != nil {
			return nil, err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return nil, err
		}
		if info.State.Msgs == 0 {
			continue
		}
		err = bus.ReadLastPerSubject(ctx, js, stream, false, func(msg jetstream.Msg) error {
			key := strings.TrimPrefix(msg.Subject(), prefix)
			if key != projections.CheckpointKey && msg.Headers().Get("KV-Operation") == "" {
				out[m.Name()+"/"+key] = string(msg.Data())
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// loadAverage is the machine's load average as /proc says it, or "".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
