package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/licensebus/licensebus/events"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go/jetstream"
)

// feed delivers one source stream, in order, from a sequence on.
type feed struct {
	ch  chan *SourceMsg
	err chan error
}

func (a *Auditor) startFeed(ctx context.Context, wg *sync.WaitGroup, stream string, after uint64) (*feed, error) {
	if stream == events.EventsStream && a.cfg.Tap != nil {
		return a.startTap(ctx, wg, after), nil
	}
	cfg := jetstream.OrderedConsumerConfig{}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := a.cfg.JS.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit: consumer on %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		return nil, fmt.Errorf("audit: messages of %s: %w", stream, err)
	}
	f := &feed{ch: make(chan *SourceMsg, 1024), err: make(chan error, 1)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer it.Stop()
		for {
			msg, err := it.Next(jetstream.NextContext(ctx))
			if err != nil {
				if ctx.Err() == nil {
					f.err <- fmt.Errorf("audit: next of %s: %w", stream, err)
				}
				return
			}
			md, err := msg.Metadata()
			if err != nil {
				continue
			}
			m := &SourceMsg{Stream: stream, Seq: md.Sequence.Stream, Subject: msg.Subject(), Time: md.Timestamp, Header: msg.Headers(), Data: msg.Data()}
			select {
			case f.ch <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return f, nil
}

// startTap follows the event stream through the feed's tap, with the
// events as the feed decoded them.
func (a *Auditor) startTap(ctx context.Context, wg *sync.WaitGroup, after uint64) *feed {
	evs, stop := bus.Follow(ctx, a.cfg.JS, a.cfg.Tap, after)
	f := &feed{ch: make(chan *SourceMsg, 1024), err: make(chan error, 1)}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer stop()
		for {
			select {
			case ev := <-evs:
				if ev.Err != nil {
					if ctx.Err() == nil {
						f.err <- fmt.Errorf("audit: %w", ev.Err)
					}
					return
				}
				m := &SourceMsg{Stream: events.EventsStream, Seq: ev.Seq, Subject: ev.Subject, Time: ev.Time, Header: ev.Header, Data: ev.Data, Message: ev.Message}
				select {
				case f.ch <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return f
}

// goneAfter reports whether src holds no message in (after, last].
func goneAfter(ctx context.Context, src jetstream.Stream, after, last uint64) (bool, error) {
	m, err := src.GetMsg(ctx, after+1, jetstream.WithGetMsgSubject(">"))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return m.Sequence > last, nil
}
