package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/client"
	"github.com/licensebus/licensebus/internal/elect"
	"github.com/licensebus/licensebus/internal/keyring"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// FailoverConfig sizes a failover run.
type FailoverConfig struct {
	// Exe is the licensebus program: the bench runs it as each NATS
	// server of the cluster (a hidden bench flag) and as each node.
	Exe string
	// Rate is the activations sent per second, throughout; default 40.
	Rate float64
	// Phase is how long each phase lasts: before, after the node is
	// killed, after the NATS server is killed, after both restarted.
	// Default 15s.
	Phase time.Duration
	// SmartServers the activations go to, round robin; default 100.
	SmartServers int
	Progress     io.Writer
	// Log receives the children's stderr; default discarded.
	Log io.Writer
}

// FailoverResult is what a failover run measured. Rates are activations
// per second whose outcome was written in the phase.
type FailoverResult struct {
	AckedCommands int `json:"acked_commands"`
	// LostCommands were acknowledged by JetStream and have no outcome at
	// the end.
	LostCommands int `json:"lost_commands"`
	// DoubleEffects adds up the three kinds below.
	DoubleEffects      int `json:"double_effects"`
	LicensesBoundTwice int `json:"licenses_bound_twice"`
	EventsWrittenTwice int `json:"events_written_twice"`
	AuditEntriesTwice  int `json:"audit_entries_twice"`
	// JobFailoverS is, over every singleton job, the longest time from
	// the kill of the node that ran most of them to the other running it.
	JobFailoverS float64            `json:"job_failover_s"`
	JobsS        map[string]float64 `json:"jobs_s"`
	// KilledNode ran JobsKilled of the jobs when it was killed.
	KilledNode string `json:"killed_node"`
	JobsKilled int    `json:"jobs_killed"`
	// StreamFailoverS is the time from the kill of the NATS server leading
	// the event stream to the stream having another leader.
	StreamFailoverS float64 `json:"stream_failover_s"`
	KilledServer    string  `json:"killed_server"`
	// AuditIntact: licensebus audit verify found the trail whole.
	AuditIntact bool `json:"audit_intact"`
	// ViewsEqualRebuild: every view bucket held, entry by entry, what a
	// projections rebuild from the event stream wrote.
	ViewsEqualRebuild bool `json:"views_equal_rebuild"`
	// ViewsDiffering counts the view entries the rebuild changed.
	ViewsDiffering int     `json:"views_differing"`
	RateSent       float64 `json:"rate_sent"`
	RateBefore     float64 `json:"rate_before"`
	RateNodeKilled float64 `json:"rate_node_killed"`
	RateNATSKilled float64 `json:"rate_nats_killed"`
	RateAfter      float64 `json:"rate_after"`
	PhaseS         float64 `json:"phase_s"`
	Replicas       int     `json:"replicas"`
	Cores          int     `json:"cores"`
	LoadAverage    string  `json:"load_average"`
	TotalSeconds   float64 `json:"total_seconds"`
}

// failover is one run's state.
type failover struct {
	cfg     FailoverConfig
	dir     string
	urls    string
	servers []*proc
	specs   []ClusterNode
	nodes   map[string]*proc
	keyFile string
	// creds is an operator's creds file (the bench's clients and CLI
	// runs), serviceCreds the service's (the nodes): the cluster runs in
	// operator mode, as serve's embedded server does by default.
	creds, serviceCreds string
	nc                  *nats.Conn
	js                  jetstream.JetStream
	c                   *client.Client
	logw                io.Writer
	// differing counts the view entries the last rebuild changed.
	differing int
}

// Failover starts a 3-server NATS cluster and two licensebus nodes, each a
// process of its own, drives activations at a fixed rate, kills -9 the
// node running most singleton jobs, then the NATS server leading the
// event stream, restarts both, and counts what was acknowledged and what
// came of it.
func Failover(ctx context.Context, cfg FailoverConfig) (*FailoverResult, error) {
	if cfg.Rate <= 0 {
		cfg.Rate = 40
	}
	if cfg.Phase <= 0 {
		cfg.Phase = 15 * time.Second
	}
	if cfg.SmartServers <= 0 {
		cfg.SmartServers = 100
	}
	start := time.Now()
	dir, err := os.MkdirTemp("", "licensebus-failover-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f := &failover{cfg: cfg, dir: dir, nodes: map[string]*proc{}, logw: cfg.Log}
	if f.logw == nil {
		f.logw = io.Discard
	}
	defer f.stopAll()
	if err := f.startCluster(ctx); err != nil {
		return nil, err
	}
	ring, _, err := keyring.Open(filepath.Join(dir, "signing"), nil, time.Now())
	if err != nil {
		return nil, err
	}
	f.keyFile = ring.CurrentFile()
	if err := f.startNode(ctx, "node-a"); err != nil {
		return nil, err
	}
	if err := f.waitJobs(ctx, "node-a", 1); err != nil {
		return nil, err
	}
	if err := f.startNode(ctx, "node-b"); err != nil {
		return nil, err
	}
	if err := f.waitJobs(ctx, "", 2); err != nil {
		return nil, err
	}
	res := &FailoverResult{PhaseS: cfg.Phase.Seconds(), Cores: runtime.NumCPU(), JobsS: map[string]float64{}}
	n := int(cfg.Rate*4*cfg.Phase.Seconds()*1.1) + 10
	f.progress("preparing %d SmartServers and %d licenses", cfg.SmartServers, n)
	servers, lids, err := f.prepare(ctx, cfg.SmartServers, n)
	if err != nil {
		return nil, err
	}
	if info, err := f.eventsInfo(ctx); err == nil {
		res.Replicas = info.Config.Replicas
	}

	outcomes, stopWatch, err := f.watchOutcomes(ctx)
	if err != nil {
		return nil, err
	}
	load := f.startLoad(ctx, servers, lids)
	marks := []time.Time{time.Now()}
	f.progress("sending %.0f activations/s: before", cfg.Rate)
	sleep(ctx, cfg.Phase)

	// (1) kill -9 the node running most jobs.
	victim, jobs, err := f.busiestNode(ctx)
	if err != nil {
		return nil, err
	}
	res.KilledNode, res.JobsKilled = victim, jobs
	f.progress("kill -9 %s (runs %d jobs)", victim, jobs)
	killed := time.Now()
	f.nodes[victim].kill()
	marks = append(marks, killed)
	if res.JobsS, err = f.jobFailover(ctx, victim, killed); err != nil {
		return nil, err
	}
	for _, s := range res.JobsS {
		res.JobFailoverS = max(res.JobFailoverS, s)
	}
	sleep(ctx, cfg.Phase-time.Since(killed))

	// (2) kill -9 the NATS server leading the event stream.
	info, err := f.eventsInfo(ctx)
	if err != nil {
		return nil, err
	}
	leader := ""
	if info.Cluster != nil {
		leader = info.Cluster.Leader
	}
	idx := -1
	for i, s := range f.specs {
		if s.Name == leader {
			idx = i
		}
	}
	if idx < 0 {
		return nil, fmt.Errorf("the event stream has no leader among %v (%q)", f.specs, leader)
	}
	res.KilledServer = leader
	f.progress("kill -9 NATS server %s (leads %s)", leader, events.EventsStream)
	natsKilled := time.Now()
	f.servers[idx].kill()
	marks = append(marks, natsKilled)
	res.StreamFailoverS = f.streamFailover(ctx, leader, natsKilled)
	sleep(ctx, cfg.Phase-time.Since(natsKilled))

	// (3) restart both.
	f.progress("restarting NATS server %s and %s", leader, victim)
	restarted := time.Now()
	if err := f.startServer(ctx, idx); err != nil {
		return nil, err
	}
	if err := f.startNode(ctx, victim); err != nil {
		return nil, err
	}
	marks = append(marks, restarted)
	sleep(ctx, cfg.Phase-time.Since(restarted))
	marks = append(marks, time.Now())
	acked := load.stop()
	res.AckedCommands = len(acked)
	res.RateSent = float64(len(acked)) / marks[len(marks)-1].Sub(marks[0]).Seconds()

	f.progress("waiting for the outcome of %d acknowledged activations", len(acked))
	lost := f.waitOutcomes(ctx, outcomes, acked, 2*time.Minute)
	stopWatch()
	res.LostCommands = len(lost)
	rates := outcomes.rates(marks)
	res.RateBefore, res.RateNodeKilled, res.RateNATSKilled, res.RateAfter = rates[0], rates[1], rates[2], rates[3]

	f.progress("checking for double effects, the audit trail and the views")
	if err := f.settle(ctx); err != nil {
		return nil, err
	}
	if err := f.check(ctx, &res.LicensesBoundTwice, &res.EventsWrittenTwice, &res.AuditEntriesTwice, &res.AuditIntact, &res.ViewsEqualRebuild); err != nil {
		return nil, err
	}
	res.DoubleEffects = res.LicensesBoundTwice + res.EventsWrittenTwice + res.AuditEntriesTwice
	res.ViewsDiffering = f.differing
	res.LoadAverage = loadAverage()
	res.TotalSeconds = time.Since(start).Seconds()
	return res, nil
}

func (f *failover) progress(format string, args ...any) {
	if f.cfg.Progress != nil {
		fmt.Fprintf(f.cfg.Progress, "failover: "+format+"\n", args...)
	}
}

// sleep waits d, or less if ctx ends first.
func sleep(ctx context.Context, d time.Duration) { _ = sleepUntil(ctx, time.Now().Add(d)) }

// startCluster starts three NATS servers as processes and waits until
// JetStream answers.
func (f *failover) startCluster(ctx context.Context) error {
	var err error
	if _, f.serviceCreds, f.creds, err = authority(f.dir); err != nil {
		return err
	}
	f.specs = make([]ClusterNode, 3)
	var routes, urls []string
	for i := range f.specs {
		p, err := freePort()
		if err != nil {
			return err
		}
		cp, err := freePort()
		if err != nil {
			return err
		}
		f.specs[i] = ClusterNode{Name: fmt.Sprintf("n%d", i+1), Dir: filepath.Join(f.dir, fmt.Sprintf("n%d", i+1)), Port: p, ClusterPort: cp, Auth: filepath.Join(f.dir, "auth")}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", cp))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i := range f.specs {
		for j, r := range routes {
			if j != i {
				f.specs[i].Routes = append(f.specs[i].Routes, r)
			}
		}
	}
	f.urls = strings.Join(urls, ",")
	f.servers = make([]*proc, 3)
	for i := range f.specs {
		if err := f.startServer(ctx, i); err != nil {
			return err
		}
	}
	opts, err := credsOptions(f.creds)
	if err != nil {
		return err
	}
	f.nc, err = nats.Connect(f.urls, append(opts, nats.Name("licensebus bench failover"), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...) // the kills are the point: no noise about them
	if err != nil {
		return err
	}
	if f.js, err = jetstream.New(f.nc); err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := f.js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the NATS cluster has no JetStream after 60s: %w", err)
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// startServer starts (or restarts) NATS server i.
func (f *failover) startServer(ctx context.Context, i int) error {
	spec, _ := json.Marshal(f.specs[i])
	p, err := startProc(f.specs[i].Name, []string{f.cfg.Exe, "bench", "--serve-cluster-node", string(spec)}, childEnv(), f.logw)
	if err != nil {
		return err
	}
	var ready struct{ URL string }
	if err := p.run(ctx, &ready); err != nil {
		return fmt.Errorf("NATS server %s: %w", f.specs[i].Name, err)
	}
	f.servers[i] = p
	return nil
}

// startNode starts (or restarts) licensebus node name, joined to the
// cluster with the shared signing key.
func (f *failover) startNode(ctx context.Context, name string) error {
	p, err := startProc(name, []string{f.cfg.Exe, "serve", "--nats", f.urls, "--creds", f.serviceCreds, "--name", name, "--signing-key", f.keyFile,
		"--http", "", "--log-level", "warn"}, childEnv(), f.logw)
	if err != nil {
		return err
	}
	if err := p.run(ctx, nil); err != nil {
		return err
	}
	f.nodes[name] = p
	return nil
}

func (f *failover) stopAll() {
	for _, p := range f.nodes {
		p.stop()
	}
	if f.nc != nil {
		f.nc.Close()
	}
	for _, p := range f.servers {
		if p != nil {
			p.stop()
		}
	}
}

// waitJobs waits until nodes processes have records and every job is held
// (by node, if given).
func (f *failover) waitJobs(ctx context.Context, node string, nodes int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ns, jobs, err := elect.Status(sctx, f.js)
		cancel()
		if err == nil && len(ns) >= nodes && len(jobs) >= 6 {
			held := true
			for _, j := range jobs {
				held = held && j.Node != "" && (node == "" || j.Node == node)
			}
			if held {
				return nil
			}
		}
		sleep(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("the licensebus nodes did not take every job within 2 minutes")
}

// busiestNode is the node that runs most jobs now.
func (f *failover) busiestNode(ctx context.Context) (string, int, error) {
	_, jobs, err := elect.Status(ctx, f.js)
	if err != nil {
		return "", 0, err
	}
	count := map[string]int{}
	for _, j := range jobs {
		if j.Node != "" {
			count[j.Node]++
		}
	}
	best, n := "", -1
	for node, c := range count {
		if c > n || c == n && node < best {
			best, n = node, c
		}
	}
	if best == "" {
		return "", 0, errors.New("no node runs a job")
	}
	return best, n, nil
}

// jobFailover polls who runs each job after victim was killed, until
// another node runs every one, and returns how long each took.
func (f *failover) jobFailover(ctx context.Context, victim string, killed time.Time) (map[string]float64, error) {
	took := map[string]float64{}
	deadline := killed.Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, jobs, err := elect.Status(sctx, f.js)
		cancel()
		if err == nil {
			all := len(jobs) > 0
			for _, j := range jobs {
				if j.Node != "" && j.Node != victim {
					if _, ok := took[j.Job]; !ok {
						took[j.Job] = time.Since(killed).Seconds()
					}
				} else {
					all = false
				}
			}
			if all {
				return took, nil
			}
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return took, fmt.Errorf("jobs still not taken over 2 minutes after %s was killed: %v", victim, took)
}

func (f *failover) eventsInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	// Short: while the stream has no leader a request goes unanswered,
	// and the failover is measured by polling.
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := f.js.Stream(sctx, events.EventsStream)
	if err != nil {
		return nil, err
	}
	return s.Info(sctx)
}

// streamFailover polls the event stream until a server other than the
// killed one leads it, and returns how long it took.
func (f *failover) streamFailover(ctx context.Context, killed string, at time.Time) float64 {
	for time.Since(at) < 2*time.Minute && ctx.Err() == nil {
		info, err := f.eventsInfo(ctx)
		if err == nil && info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != killed {
			return time.Since(at).Seconds()
		}
		sleep(ctx, 50*time.Millisecond)
	}
	return time.Since(at).Seconds()
}

// cli runs the licensebus CLI against the cluster; nil when it exits 0.
func (f *failover) cli(ctx context.Context, args ...string) error {
	argv := []string{f.cfg.Exe, "--nats", f.urls}
	if f.creds != "" {
		argv = append(argv, "--creds", f.creds)
	}
	p, err := startProc("cli", append(argv, args...), childEnv(), f.logw)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := p.run(cctx, nil); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-cctx.Done():
		p.kill()
		return cctx.Err()
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return &cliError{args: args, code: code}
	}
	return nil
}

// cliError is a CLI run that did not exit 0.
type cliError struct {
	args []string
	code int
}

func (e *cliError) Error() string {
	return fmt.Sprintf("licensebus %s: exit %d", strings.Join(e.args, " "), e.code)
}

// refused says whether err is the CLI's refusal (exit 1): for audit
// verify, a trail that is not whole. Exit 3 is a request unanswered (a
// NATS server that has just come back, a machine too busy to answer in
// time), which says nothing about the trail.
func refused(err error) bool {
	var ce *cliError
	return errors.As(err, &ce) && ce.code == 1
}

// auditVerified runs audit verify, again after a failure other than a
// refusal, up to five times.
func (f *failover) auditVerified(ctx context.Context) bool {
	err := f.cli(ctx, "audit", "verify")
	for i := 0; i < 4 && err != nil && !refused(err) && ctx.Err() == nil; i++ {
		f.progress("audit verify did not answer (%v): again", err)
		sleep(ctx, 2*time.Second)
		err = f.cli(ctx, "audit", "verify")
	}
	if err != nil {
		f.progress("audit verify: %v (--children-log has its stderr)", err)
	}
	return err == nil
}

// settle waits until the projections and the audit trail include every
// message of the streams.
func (f *failover) settle(ctx context.Context) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if err := f.cli(ctx, "projections", "status"); err == nil {
			if behind, err := auditBehind(ctx, f.js); err == nil && behind == 0 {
				return nil
			}
		}
		sleep(ctx, 500*time.Millisecond)
	}
	return errors.New("the projections or the audit trail did not catch up within 2 minutes")
}

// check counts the double effects and checks the trail and the views,
// each read tried again for a while: a NATS server that has just come
// back can leave a request unanswered.
func (f *failover) check(ctx context.Context, bound, events, entries *int, auditIntact, views *bool) error {
	retry := func(what string, fn func() error) error {
		var err error
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); sleep(ctx, time.Second) {
			if err = fn(); err == nil || ctx.Err() != nil {
				return err
			}
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	var err error
	if err = retry("licenses bound twice", func() error { *bound, err = boundTwice(ctx, f.js); return err }); err != nil {
		return err
	}
	if err = retry("events written twice", func() error { *events, err = eventsTwice(ctx, f.js); return err }); err != nil {
		return err
	}
	if err = retry("audit entries twice", func() error { *entries, err = auditTwice(ctx, f.js); return err }); err != nil {
		return err
	}
	*auditIntact = f.auditVerified(ctx)
	return retry("views against a rebuild", func() error { *views, err = f.viewsEqualRebuild(ctx); return err })
}

// viewsEqualRebuild compares every view bucket before and after a
// projections rebuild, and counts the entries that differ (or exist on one
// side only); it reports the first.
func (f *failover) viewsEqualRebuild(ctx context.Context) (bool, error) {
	before, err := viewEntries(ctx, f.js)
	if err != nil {
		return false, err
	}
	if err := f.cli(ctx, "projections", "rebuild"); err != nil {
		return false, err
	}
	after, err := viewEntries(ctx, f.js)
	if err != nil {
		return false, err
	}
	f.differing = 0
	for k, v := range before {
		if a, ok := after[k]; !ok || a != v {
			if f.differing == 0 {
				f.progress("views: %s differs after the rebuild:\n  before %s\n  after  %s", k, v, a)
			}
			f.differing++
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			f.differing++
		}
	}
	return f.differing == 0, nil
}
