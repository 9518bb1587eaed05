// Package elect runs licensebus's singleton jobs — the auditor, the
// projections' writer, the rollout drivers, each reactor — on exactly one
// process of a cluster at a time, elected through NATS itself: a lease per
// job in a JetStream KV bucket.
//
// A process campaigns for a job by creating the job's key with a per-key
// TTL (KV Create: an expected-last-subject-sequence of 0, so one creator
// wins); it holds the job while it renews the key before the TTL runs out,
// each renewal an expected-sequence publish on the key's last revision (the
// revision is the lease's token: a renewal on a revision someone else
// replaced fails). A holder that cannot renew stops its job before the
// lease can expire on the server (its local deadline is the send time of
// its last acknowledged renewal plus the TTL, less a margin), so a live
// process stops writing before another can start; a process that was
// paused past that deadline is stopped by the jobs' own fences (expected
// sequences and revisions on what they write), which the new holder moves
// as its first act. A process handing over (SIGTERM) stops the job, then
// deletes the key by revision: the others watch the bucket and campaign at
// once. A process that dies (SIGKILL) leaves the key to expire: failover
// takes about the TTL.
//
// Why a KV lease and not JetStream's pinned-client priority groups, read
// from nats-server v2.15.2 (consumer.go) and nats.go v1.55.0 (pull.go):
// every singleton here reads the event stream through the process's feed
// (standbys keep their folds warm from it), so a pinned durable per job
// would be a second delivery of every event; the server assigns a pin only
// when it delivers a message, so on an idle stream nobody knows who leads,
// and timer-driven work (rollout waves, flushes) has no holder; the pin id
// lives in the consumer leader's memory and is dropped on a consumer leader
// change (a NATS server dying), which moves the job without a handover; and
// acks and the job's writes elsewhere are not checked against the pin id
// (only pull requests get 423), so it gives no token to fence writes with.
// Failover after a kill is bounded by PinnedTTL either way.
package elect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"
)

// Bucket is the KV bucket of the cluster: a lease per job ("job.<name>")
// and a record per running process ("node.<name>").
const Bucket = "licensebus_cluster"

// DefaultTTL is how long a lease outlives its holder's last renewal: about
// the failover time after a kill.
const DefaultTTL = 5 * time.Second

// Key prefixes in Bucket.
const (
	jobPrefix  = "job."
	nodePrefix = "node."
)

// Config configures an Elector.
type Config struct {
	JS jetstream.JetStream // required
	// Node names this process in leases and in cluster status; required,
	// letters, digits, '-' and '_'.
	Node    string
	Version string
	// Replicas of the bucket when this process creates it.
	Replicas int
	// TTL of a lease, whole seconds, at least 2s; default DefaultTTL.
	// Renewals go out every TTL/5.
	TTL    time.Duration
	Logger zerolog.Logger
	// OnChange, if set, is told each time this process starts or stops
	// leading a job (metrics). It must not block.
	OnChange func(job string, leading bool)
	// Reclaim deletes, when the elector starts, the leases a process of
	// this name left (it died holding them): for a process that nothing
	// else can share its name with, such as one that embeds the only NATS
	// server. Without it a restart waits for those leases to expire.
	Reclaim bool
}

// Elector campaigns for jobs on behalf of one process. Run it with Run and
// hand it jobs with Lead; both until their context ends.
type Elector struct {
	cfg      Config
	kv       jetstream.KeyValue
	log      zerolog.Logger
	instance string // tells this process apart from another with its name
	started  time.Time

	mu      sync.Mutex
	jobs    map[string]*jobState
	paused  bool
	unpause chan struct{} // closed when a pause ends
}

type jobState struct {
	wake    chan struct{} // the lease was deleted or expired: campaign now
	leading bool
	since   time.Time
}

var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidNode says whether name can name a node.
func ValidNode(name string) bool { return nodeName.MatchString(name) }

// DefaultNode is the node name when none is given: the host name, made
// valid.
func DefaultNode() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "node"
	}
	h, _, _ = strings.Cut(h, ".")
	h = strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, h)
	if len(h) > 64 {
		h = h[:64]
	}
	return h
}

// New opens the cluster bucket, creating it if needed.
func New(ctx context.Context, cfg Config) (*Elector, error) {
	if cfg.JS == nil {
		return nil, errors.New("elect: JS is required")
	}
	if !ValidNode(cfg.Node) {
		return nil, fmt.Errorf("elect: node name %q: use 1-64 letters, digits, '-' or '_'", cfg.Node)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < 2*time.Second || cfg.TTL%time.Second != 0 {
		return nil, fmt.Errorf("elect: lease TTL %s: whole seconds, at least 2s", cfg.TTL)
	}
	kv, err := OpenBucket(ctx, cfg.JS, cfg.Replicas)
	if err != nil {
		return nil, err
	}
	e := &Elector{cfg: cfg, kv: kv, log: cfg.Logger.With().Str("component", "elect").Str("node", cfg.Node).Logger(),
		instance: nuid.Next(), started: time.Now().UTC(), jobs: map[string]*jobState{}}
	if cfg.Reclaim {
		if err := e.reclaim(ctx); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// reclaim deletes the leases held under this node's name.
func (e *Elector) reclaim(ctx context.Context) error {
	keys, err := e.kv.ListKeysFiltered(ctx, jobPrefix+">")
	if err != nil {
		return fmt.Errorf("elect: reclaim: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	for k := range keys.Keys() {
		en, err := e.kv.Get(ctx, k)
		if err != nil {
			continue
		}
		var l lease
		if json.Unmarshal(en.Value(), &l) != nil || l.Node != e.cfg.Node {
			continue
		}
		if err := e.kv.Delete(ctx, k, jetstream.LastRevision(en.Revision())); err == nil {
			e.log.Info().Str("job", l.Job).Msg("lease left by this node's last run reclaimed")
		}
	}
	return nil
}

// OpenBucket opens the cluster bucket, creating it with replicas if it
// does not exist. Per-key TTLs need its limit markers (server 2.11+).
func OpenBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("elect: bucket: %w", err)
	}
	kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "licensebus cluster: a lease per singleton job, a record per running process",
		History: 1, Storage: jetstream.FileStorage, Replicas: max(1, replicas), LimitMarkerTTL: time.Second,
	})
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		kv, err = js.KeyValue(ctx, Bucket) // another process created it first
	}
	if err != nil {
		return nil, fmt.Errorf("elect: create bucket: %w", err)
	}
	return kv, nil
}

// Node is this process's name.
func (e *Elector) Node() string { return e.cfg.Node }

// lease is the value of a job's key.
type lease struct {
	Job      string    `json:"job"`
	Node     string    `json:"node"`
	Instance string    `json:"instance"`
	Since    time.Time `json:"since"`
}

// node is the value of a process's key.
type node struct {
	Name     string    `json:"name"`
	Version  string    `json:"version"`
	Started  time.Time `json:"started"`
	Instance string    `json:"instance"`
	Jobs     []string  `json:"jobs"`
}

// Run keeps this process's record in the bucket and watches the leases, so
// that a job whose holder hands it over or dies is campaigned for at once,
// until ctx ends; then it removes the record.
func (e *Elector) Run(ctx context.Context) error {
	w, err := e.kv.Watch(ctx, jobPrefix+">", jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("elect: watch: %w", err)
	}
	defer func() { _ = w.Stop() }()
	e.heartbeat(ctx)
	tick := time.NewTicker(e.cfg.TTL)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = e.kv.Delete(dctx, nodePrefix+e.cfg.Node)
			cancel()
			return nil
		case <-tick.C:
			e.heartbeat(ctx)
		case en, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if en == nil || en.Operation() == jetstream.KeyValuePut {
				continue
			}
			e.wake(strings.TrimPrefix(en.Key(), jobPrefix))
		}
	}
}

// heartbeat stores this process's record with a TTL of three periods: a
// process that stops renewing it drops out of cluster status.
func (e *Elector) heartbeat(ctx context.Context) {
	if e.isPaused() {
		return
	}
	e.mu.Lock()
	jobs := make([]string, 0, len(e.jobs))
	for j := range e.jobs {
		jobs = append(jobs, j)
	}
	e.mu.Unlock()
	slices.Sort(jobs)
	b, _ := json.Marshal(node{Name: e.cfg.Node, Version: e.cfg.Version, Started: e.started, Instance: e.instance, Jobs: jobs})
	hctx, cancel := context.WithTimeout(ctx, e.cfg.TTL)
	defer cancel()
	msg := &nats.Msg{Subject: "$KV." + Bucket + "." + nodePrefix + e.cfg.Node, Data: b}
	if _, err := e.cfg.JS.PublishMsg(hctx, msg, jetstream.WithMsgTTL(3*e.cfg.TTL)); err != nil && ctx.Err() == nil {
		e.log.Debug().Err(err).Msg("node record not stored")
	}
}

func (e *Elector) wake(job string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if j := e.jobs[job]; j != nil {
		select {
		case j.wake <- struct{}{}:
		default:
		}
	}
}

// Leading lists the jobs this process holds now, with when it won each.
func (e *Elector) Leading() map[string]time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]time.Time{}
	for name, j := range e.jobs {
		if j.leading {
			out[name] = j.since
		}
	}
	return out
}

// Pause freezes this process's side of every lease, as a stopped process
// (SIGSTOP, a long GC pause, a VM migration) would: no renewals and no
// local deadline, while the jobs it holds keep running as if they still
// led. Another process takes the jobs over once the leases expire; after
// Pause(false) the first renewal finds the lease gone and stops the jobs.
// For tests of the fencing.
func (e *Elector) Pause(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case on && !e.paused:
		e.paused, e.unpause = true, make(chan struct{})
	case !on && e.paused:
		e.paused = false
		close(e.unpause)
	}
}

func (e *Elector) isPaused() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.paused
}
