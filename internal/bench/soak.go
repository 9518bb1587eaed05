package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"time"

	"github.com/google/uuid"
	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// Soak sizes a soak: Activations activations, each followed by the
// transfer that gives its license back, over Pool SmartServers with one
// license each, at half the rate the product takes them at.
type Soak struct {
	Activations int
	Pool        int
	// Horizon is the product's --horizon, reported as is (the caller's
	// start function applies it).
	Horizon  time.Duration
	Progress io.Writer
	// MemProfile, if set, receives a heap profile taken at 100 %.
	MemProfile io.Writer
	// Server starts the NATS server; nil runs it in this process.
	Server ServerFunc
}

// SoakResult is a soak's figures. The RSS arrays hold the process's
// resident set at 25, 50, 75 and 100 % of the activations; the heap array
// the licensebus process's live heap at the same marks (after a collection).
type SoakResult struct {
	Activations   int       `json:"activations"`
	Pool          int       `json:"pool"`
	HorizonS      float64   `json:"horizon_s"`
	MeasuredRate  float64   `json:"measured_activations_per_s"`
	OfferedRate   float64   `json:"offered_commands_per_s"`
	AchievedRate  float64   `json:"achieved_commands_per_s"`
	Rejected      uint64    `json:"rejected"` // commands refused (0 expected)
	SoakRSSMB     []float64 `json:"soak_rss_mb"`
	NATSSoakRSSMB []float64 `json:"nats_soak_rss_mb"`
	SoakHeapMB    []float64 `json:"soak_live_heap_mb"`
	// Growth is RSS at 100 % over RSS at 50 %, minus one.
	Growth        float64 `json:"rss_growth_50_100"`
	NATSGrowth    float64 `json:"nats_rss_growth_50_100"`
	HeapGrowth    float64 `json:"live_heap_growth_50_100"`
	MemoryLimitMB float64 `json:"memory_limit_mb"`
	Cores         int     `json:"cores"`
	TotalSeconds  float64 `json:"total_seconds"`
}

// RunSoak starts a NATS server (with auth) and the product, measures the
// rate of a burst of activations over the pool, then sends the soak's
// commands open loop at half that rate and reads the memory of both
// processes at each quarter.
func RunSoak(ctx context.Context, cfg Soak, start StartFunc) (*SoakResult, error) {
	if cfg.Activations < 4 || cfg.Pool < 1 {
		return nil, errors.New("a soak needs at least 4 activations and a pool of 1")
	}
	begin := time.Now()
	startServer := cfg.Server
	if startServer == nil {
		startServer = InProcess
	}
	srv, err := openServer(ctx, "licensebus-soak-*", startServer)
	if err != nil {
		return nil, err
	}
	defer srv.close()
	ns := srv.ns
	b := &run{cfg: Config{Progress: cfg.Progress}, r: &Result{}, nc: srv.nc, js: srv.js, natsPID: ns.PID, operatorCreds: ns.OperatorCreds}
	defer func() {
		for _, c := range b.closers {
			c()
		}
	}()
	p, err := start(ctx, ns.URL, ns.Creds)
	if err != nil {
		return nil, fmt.Errorf("start licensebus: %w", err)
	}
	defer p.Close()
	b.p = p
	r := &SoakResult{Activations: cfg.Activations, Pool: cfg.Pool, HorizonS: cfg.Horizon.Seconds(), Cores: runtime.NumCPU()}
	if l := debugMemoryLimit(); l > 0 {
		r.MemoryLimitMB = float64(l) / (1 << 20)
	}
	if err := b.soak(ctx, cfg, r); err != nil {
		if p.Err != nil && p.Err() != nil {
			err = fmt.Errorf("%w (licensebus: %v)", err, p.Err())
		}
		return nil, err
	}
	r.TotalSeconds = time.Since(begin).Seconds()
	r.round()
	return r, nil
}

// soakPrepare readies the pool (one license each, none active) and
// measures the rate the product takes its activations at.
func (b *run) soakPrepare(ctx context.Context, cfg Soak, r *SoakResult) ([]*target, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := b.p.Projections.CatchUp(ctx); err != nil {
		return nil, fmt.Errorf("projections catch up: %w", err)
	}
	if err := b.commander(ctx); err != nil {
		return nil, err
	}
	b.progress("soak: preparing %d SmartServers, one license each", cfg.Pool)
	ts, err := b.prepare(ctx, "SOAK", cfg.Pool, 10)
	if err != nil {
		return nil, err
	}
	if err := b.settle(ctx); err != nil {
		return nil, err
	}
	// The rate the product takes activations at: one burst over the pool,
	// then the transfers that free the licenses again.
	began := time.Now()
	if err := b.publish(ctx, ts); err != nil {
		return nil, err
	}
	if err := b.waitAll(ctx, ts, b.visible); err != nil {
		return nil, err
	}
	r.MeasuredRate = float64(len(ts)) / time.Since(began).Seconds()
	for _, t := range ts {
		if _, err := b.soakSend(ctx, t, false); err != nil {
			return nil, err
		}
	}
	if err := b.waitAll(ctx, ts, func(t *target) bool { return !b.visible(t) }); err != nil {
		return nil, err
	}
	return ts, b.settle(ctx)
}

func (b *run) soak(ctx context.Context, cfg Soak, r *SoakResult) error {
	ts, err := b.soakPrepare(ctx, cfg, r)
	if err != nil {
		return inPhase(ctx, "soak preparation", err)
	}

	// Command k goes to target k mod pool: an activation in even rounds
	// over the pool, a transfer in odd ones. With the pool large enough,
	// each has finished long before the next command for its SmartServer
	// is due.
	total := 2 * cfg.Activations
	r.OfferedRate = r.MeasuredRate / 2
	interval := float64(time.Second) / r.OfferedRate
	b.progress("soak: %d activations and their transfers at %.0f commands/s (half of %.0f activations/s measured), about %s",
		cfg.Activations, r.OfferedRate, r.MeasuredRate, (time.Duration(float64(total) * interval)).Round(time.Second))
	marks := map[int]bool{total / 4: true, total / 2: true, 3 * total / 4: true, total: true}
	outs, err := b.followOutcomes(ctx, ts)
	if err != nil {
		return err
	}
	defer outs.stop()
	sent := make([]int, len(ts))    // commands sent, per SmartServer
	last := make([]string, len(ts)) // the last of them
	began := time.Now()
	for k := 1; k <= total; k++ {
		// Neither a command whose outcome is in nor an async publish
		// looks at ctx: without this a signal would not stop the soak.
		if err := sleepUntil(ctx, began.Add(time.Duration(float64(k-1)*interval))); err != nil {
			return err
		}
		i := (k - 1) % len(ts)
		t := ts[i]
		activate := ((k-1)/len(ts))%2 == 0
		// The SmartServer's previous command must have ended, or this one
		// would be refused (transfer_in_progress): on slow cores the soak
		// then runs late rather than wrong.
		if err := outs.await(ctx, t, sent[i], last[i]); err != nil {
			return err
		}
		if last[i], err = b.soakSend(ctx, t, activate); err != nil {
			return err
		}
		sent[i]++
		if !marks[k] {
			continue
		}
		heap := liveHeapMB()
		rss := currentRSSMB()
		var nrss float64
		if b.natsPID != 0 {
			_, nrss = processRSSMB(b.natsPID)
		}
		r.SoakRSSMB, r.NATSSoakRSSMB, r.SoakHeapMB = append(r.SoakRSSMB, rss), append(r.NATSSoakRSSMB, nrss), append(r.SoakHeapMB, heap)
		if k == total && cfg.MemProfile != nil {
			if err := pprof.WriteHeapProfile(cfg.MemProfile); err != nil {
				return err
			}
		}
		b.progress("soak: %d%% of the activations sent; licensebus RSS %.0f MB (live heap %.0f MB), NATS RSS %.0f MB", 100*k/total, rss, heap, nrss)
	}
	r.AchievedRate = float64(total) / time.Since(began).Seconds()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if err := waitAcked(wctx, b.pub); err != nil {
		return inPhase(ctx, "soak: last acks", err)
	}
	if n := b.pubFailed.Load(); n > 0 {
		return fmt.Errorf("%d soak commands were not stored", n)
	}
	for i, t := range ts {
		if err := outs.await(wctx, t, sent[i], last[i]); err != nil {
			return inPhase(ctx, "soak: last outcomes", err)
		}
	}
	// Each SmartServer ends as its last command left it.
	lastActivates := ((total-1)/len(ts))%2 == 0
	for i, t := range ts {
		active := lastActivates
		if i >= (total-1)%len(ts)+1 {
			active = !lastActivates
		}
		done := func(t *target) bool { return b.visible(t) == active }
		if err := b.waitAll(wctx, []*target{t}, done); err != nil {
			return err
		}
	}
	if r.Rejected, err = rejections(wctx, b.js); err != nil {
		return err
	}
	growth := func(v []float64) float64 {
		if len(v) < 4 || v[1] == 0 {
			return 0
		}
		return v[3]/v[1] - 1
	}
	r.Growth, r.NATSGrowth, r.HeapGrowth = growth(r.SoakRSSMB), growth(r.NATSSoakRSSMB), growth(r.SoakHeapMB)
	return nil
}

// soakSend publishes an activation of t's license on t's SmartServer, or
// the transfer of its licenses back to the cloud, as a new command, and
// names the command.
func (b *run) soakSend(ctx context.Context, t *target, activate bool) (string, error) {
	var typ events.Type = events.TransferToCloudType
	var data events.Data = &events.TransferToCloud{InstallCode: t.ic}
	if activate {
		typ, data = events.ActivateLicenseType, &events.ActivateLicense{InstallCode: t.ic, LicenseID: t.lid}
	}
	id := uuid.NewString()
	m, err := events.NewCommand(typ, data, events.Meta{ID: id, Source: "/licensebus/bench", CorrelationID: id, Actor: "bench"})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %s", m.Info.Verb, id), publishAsync(ctx, b.pub, bus.Msg(m))
}

// rejections counts the rejected events on the event stream.
func rejections(ctx context.Context, js jetstream.JetStream) (uint64, error) {
	s, err := js.Stream(ctx, events.EventsStream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(events.AllRejections))
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}

// debugMemoryLimit is the soft memory limit in force, 0 for none.
func debugMemoryLimit() int64 {
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		return l
	}
	return 0
}

// liveHeapMB is this process's heap in use right after a collection.
func liveHeapMB() float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapAlloc) / (1 << 20)
}

func (r *SoakResult) round() {
	to := func(v *float64, places int) {
		p := math.Pow(10, float64(places))
		*v = math.Round(*v*p) / p
	}
	for _, v := range []*float64{&r.MeasuredRate, &r.OfferedRate, &r.AchievedRate, &r.MemoryLimitMB, &r.HorizonS} {
		to(v, 0)
	}
	for _, a := range [][]float64{r.SoakRSSMB, r.NATSSoakRSSMB, r.SoakHeapMB} {
		for i := range a {
			to(&a[i], 1)
		}
	}
	for _, v := range []*float64{&r.Growth, &r.NATSGrowth, &r.HeapGrowth} {
		to(v, 3)
	}
	to(&r.TotalSeconds, 1)
}
