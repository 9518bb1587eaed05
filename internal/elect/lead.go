package elect

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// errLost means the lease was replaced or expired on the server.
var errLost = errors.New("lease lost")

// Lead runs lead while this process holds job's lease, and campaigns for
// the lease while it does not, until ctx ends. lead's context ends when the
// lease is lost (not renewed in time, or found taken) or handed over (ctx
// ended); Lead waits for lead to return before it gives the lease up, so
// whatever lead writes is written before another process can start. lead
// returning early (an error: a fenced write, NATS gone) gives the lease up
// too; this process campaigns again after a pause. It implements
// bus.Election.
func (e *Elector) Lead(ctx context.Context, job string, lead func(context.Context) error) error {
	j := e.register(job)
	defer e.unregister(job)
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(job, false) // standing by until elected
	}
	for ctx.Err() == nil {
		rev, sent, since, err := e.acquire(ctx, job)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				e.log.Warn().Err(err).Str("job", job).Msg("campaign failed; retrying")
			}
			e.waitFree(ctx, j, e.cfg.TTL/2)
			continue
		}
		if e.hold(ctx, job, rev, sent, since, lead) {
			// Lost it or the job failed: leave the next term to the others
			// for a moment.
			sleep(ctx, e.cfg.TTL/2)
		}
	}
	return nil
}

func (e *Elector) register(job string) *jobState {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.jobs[job] != nil {
		panic("elect: job " + job + " led twice in one process")
	}
	j := &jobState{wake: make(chan struct{}, 1)}
	e.jobs[job] = j
	return j
}

func (e *Elector) unregister(job string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.jobs, job)
}

func (e *Elector) setLeading(job string, on bool, since time.Time) {
	e.mu.Lock()
	if j := e.jobs[job]; j != nil {
		j.leading, j.since = on, since
	}
	e.mu.Unlock()
	if e.cfg.OnChange != nil {
		e.cfg.OnChange(job, on)
	}
}

// waitFree waits until the lease may be free: the watch saw it deleted or
// expire, or poll passed (a watch can miss an update while it reconnects).
// A paused process waits for the pause to end.
func (e *Elector) waitFree(ctx context.Context, j *jobState, poll time.Duration) {
	e.mu.Lock()
	paused, unpause := e.paused, e.unpause
	e.mu.Unlock()
	if paused {
		select {
		case <-unpause:
		case <-ctx.Done():
		}
		return
	}
	t := time.NewTimer(poll)
	defer t.Stop()
	select {
	case <-j.wake:
	case <-t.C:
	case <-ctx.Done():
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// acquire campaigns once: it creates the job's key with the lease's TTL.
// It returns the lease's revision and when the create was sent (the
// lease's life counts from then at the latest); ErrKeyExists when another
// process holds it.
func (e *Elector) acquire(ctx context.Context, job string) (rev uint64, sent, since time.Time, err error) {
	if e.isPaused() {
		return 0, sent, since, jetstream.ErrKeyExists
	}
	since = time.Now().UTC()
	b, _ := json.Marshal(lease{Job: job, Node: e.cfg.Node, Instance: e.instance, Since: since})
	actx, cancel := context.WithTimeout(ctx, e.cfg.TTL/2)
	defer cancel()
	sent = time.Now()
	rev, err = e.kv.Create(actx, jobPrefix+job, b, jetstream.KeyTTL(e.cfg.TTL))
	if err == nil || errors.Is(err, jetstream.ErrKeyExists) || ctx.Err() != nil {
		return rev, sent, since, err
	}
	// The create may have been stored with its answer lost: ours if the
	// key holds our instance.
	if r, l, gerr := e.current(ctx, job); gerr == nil && l.Instance == e.instance {
		return r, sent, l.Since, nil
	}
	return 0, sent, since, err
}

// current reads the job's lease as it stands.
func (e *Elector) current(ctx context.Context, job string) (uint64, lease, error) {
	gctx, cancel := context.WithTimeout(ctx, e.cfg.TTL/2)
	defer cancel()
	en, err := e.kv.Get(gctx, jobPrefix+job)
	if err != nil {
		return 0, lease{}, err
	}
	var l lease
	if err := json.Unmarshal(en.Value(), &l); err != nil {
		return 0, lease{}, fmt.Errorf("lease %s: %w", job, err)
	}
	return en.Revision(), l, nil
}

// hold runs lead while it renews the lease, and stops it when the lease is
// lost, lead returns, or ctx ends (then it hands the lease over). It
// reports whether the term ended by a loss or by lead returning.
func (e *Elector) hold(ctx context.Context, job string, rev uint64, sent, since time.Time, lead func(context.Context) error) bool {
	ttl := e.cfg.TTL
	// Stop this long before the server can expire the lease: time for the
	// job's last writes to land, and for clocks that run a little apart.
	margin := max(time.Second, ttl/4)
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	log := e.log.With().Str("job", job).Logger()
	log.Info().Uint64("revision", rev).Msg("leading")
	e.setLeading(job, true, since)
	jctx := bus.WithLeaderCheck(lctx, func(ctx context.Context) error { return e.check(ctx, job) })
	go func() { done <- lead(jctx) }()
	stop := func() error {
		cancel()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case err := <-done:
				e.setLeading(job, false, time.Time{})
				return err
			case <-t.C:
				log.Warn().Msg("job still stopping")
			}
		}
	}
	renew := time.NewTicker(ttl / 5)
	defer renew.Stop()
	expire := time.NewTimer(time.Until(sent.Add(ttl - margin)))
	defer expire.Stop()
	for {
		select {
		case err := <-done:
			e.setLeading(job, false, time.Time{})
			e.release(ctx, job, rev)
			log.Warn().Err(err).Msg("job stopped; lease given up")
			return true
		case <-ctx.Done():
			err := stop()
			e.release(ctx, job, rev)
			log.Info().Err(err).Msg("handed over")
			return false
		case <-renew.C:
			if e.isPaused() {
				continue
			}
			at := time.Now()
			next, err := e.renew(ctx, job, rev, since)
			switch {
			case err == nil:
				rev = next
				expire.Reset(time.Until(at.Add(ttl - margin)))
			case errors.Is(err, errLost):
				jerr := stop()
				log.Warn().Err(jerr).Msg("lease lost to another process; job stopped")
				return true
			default:
				log.Debug().Err(err).Msg("lease not renewed; retrying")
			}
		case <-expire.C:
			if e.isPaused() {
				expire.Reset(ttl / 5)
				continue
			}
			jerr := stop()
			log.Warn().Err(jerr).Msg("lease not renewed in time; job stopped")
			return true
		}
	}
}

// renew extends the lease by revision: the publish succeeds only if the
// key's last revision is still ours, and carries the TTL again (nats.go's
// KeyValue.Update sets none, and a message without one never expires).
func (e *Elector) renew(ctx context.Context, job string, rev uint64, since time.Time) (uint64, error) {
	b, _ := json.Marshal(lease{Job: job, Node: e.cfg.Node, Instance: e.instance, Since: since})
	rctx, cancel := context.WithTimeout(ctx, e.cfg.TTL/5)
	defer cancel()
	msg := &nats.Msg{Subject: "$KV." + Bucket + "." + jobPrefix + job, Data: b}
	ack, err := e.cfg.JS.PublishMsg(rctx, msg, jetstream.WithExpectLastSequencePerSubject(rev), jetstream.WithMsgTTL(e.cfg.TTL))
	if err == nil {
		return ack.Sequence, nil
	}
	if !wrongLastSeq(err) {
		return 0, err
	}
	// A renewal stored with its answer lost moved the revision: still ours
	// if the key holds our instance.
	if r, l, gerr := e.current(ctx, job); gerr == nil && l.Instance == e.instance && r > rev {
		return r, nil
	}
	return 0, fmt.Errorf("%w: %v", errLost, err)
}

// check reads the job's lease from the bucket's leader: an error wrapping
// bus.ErrFenced unless it is this process's.
func (e *Elector) check(ctx context.Context, job string) error {
	last, err := bus.LastMsg(ctx, e.cfg.JS, "KV_"+Bucket, "$KV."+Bucket+"."+jobPrefix+job)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return fmt.Errorf("%w: job %s has no lease", bus.ErrFenced, job)
	}
	if err != nil {
		return err
	}
	var l lease
	if len(last.Data) == 0 || json.Unmarshal(last.Data, &l) != nil || l.Instance != e.instance {
		return fmt.Errorf("%w: job %s is held by %s", bus.ErrFenced, job, l.Node)
	}
	return nil
}

// release deletes the lease if it is still the revision we hold, so that
// the others' watches see it free at once.
func (e *Elector) release(ctx context.Context, job string, rev uint64) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := e.kv.Delete(dctx, jobPrefix+job, jetstream.LastRevision(rev)); err != nil {
		e.log.Debug().Err(err).Str("job", job).Msg("lease not released (it expires by itself)")
	}
}

// wrongLastSeq recognises a failed expectation: 10071 on one replica,
// 10164 on replicated streams.
func wrongLastSeq(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
