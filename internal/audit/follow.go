package audit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
)

// snapshot reads both source streams' last sequences; the cutoff is the
// older info timestamp minus the settle margin.
func (a *Auditor) snapshot(ctx context.Context, srcs [2]jetstream.Stream) (snapshot, error) {
	var s snapshot
	var oldest time.Time
	for i, st := range srcs {
		info, err := st.Info(ctx)
		if err != nil {
			return s, fmt.Errorf("audit: snapshot: %w", err)
		}
		s.last[i] = info.State.LastSeq
		ts := info.TimeStamp
		if ts.IsZero() {
			ts = time.Now() // servers before 2.10 do not stamp infos
		}
		if i == 0 || ts.Before(oldest) {
			oldest = ts
		}
	}
	s.cutoff = oldest.Add(-a.cfg.Settle)
	return s, nil
}

// follow appends entries after t until ctx ends or something goes wrong. It
// returns the last seq it knows it wrote.
func (a *Auditor) follow(ctx context.Context, str jetstream.Stream, srcs [2]jetstream.Stream, t tip) (uint64, error) {
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	names := [2]string{events.CommandsStream, events.EventsStream}
	var feeds [2]*feed
	for i := range feeds {
		f, err := a.startFeed(cctx, &wg, names[i], t.cursor.Of(names[i]))
		if err != nil {
			return 0, err
		}
		feeds[i] = f
	}
	cp, err := a.newCheckpointer(ctx, str, t)
	if err != nil {
		return 0, err
	}
	w := &writer{js: a.cfg.JS, max: a.cfg.InFlight, tip: t, acked: t.seq, stored: cp.passed,
		replicated: str.CachedInfo().Config.Replicas > 1,
		head:       head{seq: t.seq, hash: t.hash, cursor: t.cursor}}
	if t.src.Seq > 0 {
		w.head.srcs[srcIndex(t.src.Stream)] = t.src
	}
	defer func() {
		// Let what is in flight land, so the next start finds a clean head,
		// and sign it.
		dctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer c()
		if w.drain(dctx) == nil {
			if err := cp.maybe(dctx, w, true); err != nil {
				a.log.Warn().Err(err).Msg("last checkpoint not stored")
			}
		}
	}()
	var heads [2]*SourceMsg
	done := [2]uint64{t.cursor.Commands, t.cursor.Events}
	snap, err := a.snapshot(ctx, srcs)
	if err != nil {
		return w.acked, err
	}
	start, n := time.Now(), 0
	for {
		for i := range heads {
			if heads[i] == nil {
				select {
				case m := <-feeds[i].ch:
					heads[i] = m
				default:
				}
			}
		}
		st := decide(heads, done, snap)
		switch st.do {
		case emit:
			m := heads[st.stream]
			heads[st.stream], done[st.stream] = nil, m.Seq
			if err := w.append(ctx, m); err != nil {
				return w.acked, err
			}
			if err := cp.maybe(ctx, w, false); err != nil {
				return w.acked, err
			}
			n++
		case await:
			select {
			case m := <-feeds[st.stream].ch:
				heads[st.stream] = m
			case err := <-feeds[st.stream].err:
				return w.acked, err
			case <-ctx.Done():
				return w.acked, ctx.Err()
			case <-time.After(time.Second):
				// Nothing for a second although the snapshot says there is
				// more: the rest may have been deleted from the source.
				gone, err := goneAfter(ctx, srcs[st.stream], done[st.stream], snap.last[st.stream])
				if err != nil {
					return w.acked, err
				}
				if gone {
					done[st.stream] = snap.last[st.stream]
				}
			}
		case resnap:
			if st.wait > 2*a.cfg.Settle {
				// A message stored before the snapshot claims a time well
				// after it: the clock stepped back, or (in a cluster) the
				// streams' leaders disagree. Waiting for the clock to catch
				// up could take as long as the step; place what is held by
				// its stream time instead.
				a.log.Debug().Dur("ahead", st.wait).Msg("stream times ahead of the snapshot: clock step or skew")
				for i, h := range heads {
					if h != nil && h.Seq <= snap.last[i] && h.Time.After(snap.cutoff) {
						snap.cutoff = h.Time
					}
				}
				continue
			}
			if st.wait > 0 && !sleep(ctx, st.wait) {
				return w.acked, ctx.Err()
			}
			if snap, err = a.snapshot(ctx, srcs); err != nil {
				return w.acked, err
			}
		case idle:
			if err := w.drain(ctx); err != nil {
				return w.acked, err
			}
			if err := cp.maybe(ctx, w, false); err != nil {
				return w.acked, err
			}
			if n > 0 {
				a.log.Debug().Int("entries", n).Dur("took", time.Since(start)).Uint64("seq", w.tip.seq).Msg("trail caught up")
			}
			select {
			case m := <-feeds[srcCommands].ch:
				heads[srcCommands] = m
			case m := <-feeds[srcEvents].ch:
				heads[srcEvents] = m
			case err := <-feeds[srcCommands].err:
				return w.acked, err
			case err := <-feeds[srcEvents].err:
				return w.acked, err
			case <-ctx.Done():
				return w.acked, ctx.Err()
			case <-time.After(cp.nextDue(w)):
				continue // a checkpoint may be due
			}
			start, n = time.Now(), 0
			if snap, err = a.snapshot(ctx, srcs); err != nil {
				return w.acked, err
			}
		}
	}
}
