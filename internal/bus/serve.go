package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Endpoint is one durable consumer a component handles.
type Endpoint struct {
	Stream string
	// Consumer is the durable's configuration; Durable and FilterSubjects
	// are required. AckWait defaults to 30s, MaxAckPending to 4096; the ack
	// policy is always explicit.
	Consumer jetstream.ConsumerConfig
	Pool     PoolConfig // Name defaults to the durable's name
	Handle   HandleFunc
	// Replaces names durables this endpoint's consumer takes over from,
	// when one was split up or renamed. A consumer created to replace
	// them starts after the lowest of their ack floors (what they had not
	// yet settled is delivered again, and handled idempotently) instead
	// of at the start of the stream; Serve deletes them once every
	// endpoint's consumer exists.
	Replaces []string
}

// Service is what a handler serves.
type Service struct {
	// Fold is the handler's state; required.
	Fold *Fold
	// Ready, if set, is called once the fold has caught up and the
	// consumers exist, before anything is handled.
	Ready func()
	// Endpoints are the durable consumers the handler works through.
	Endpoints []Endpoint
	// Reactors react to events of the fold's feed.
	Reactors []*Reactor
}

// Serve is how every handler runs: it opens the reactors, starts the fold,
// waits until the fold has caught up with the stream (decisions need
// current state), creates each endpoint's durable consumer, calls Ready,
// then handles the consumers and runs the reactors until ctx ends. It
// returns the first error of any of them.
func Serve(ctx context.Context, js jetstream.JetStream, svc Service) error {
	eps := svc.Endpoints
	for _, r := range svc.Reactors {
		if err := r.Open(ctx); err != nil {
			return err
		}
	}
	errc := make(chan error, len(eps)+len(svc.Reactors)+1)
	go func() { errc <- svc.Fold.Run(ctx) }()
	if err := svc.Fold.CatchUp(ctx); err != nil {
		return err
	}
	consumers, err := ensureConsumers(ctx, js, eps)
	if err != nil {
		return err
	}
	if svc.Ready != nil {
		svc.Ready()
	}
	for _, r := range svc.Reactors {
		go func() { errc <- r.Run(ctx) }()
	}
	for i, ep := range eps {
		pool := ep.Pool
		if pool.Name == "" {
			pool.Name = ep.Consumer.Durable
		}
		go func() { errc <- Consume(ctx, consumers[i], pool, ep.Handle) }()
	}
	var first error
	for range len(eps) + len(svc.Reactors) + 1 {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ensureConsumers creates or updates the endpoints' durables, then deletes
// the durables they replace.
func ensureConsumers(ctx context.Context, js jetstream.JetStream, eps []Endpoint) ([]jetstream.Consumer, error) {
	consumers := make([]jetstream.Consumer, len(eps))
	for i, ep := range eps {
		cfg := ep.Consumer
		cfg.AckPolicy = jetstream.AckExplicitPolicy
		if cfg.AckWait == 0 {
			cfg.AckWait = 30 * time.Second
		}
		if cfg.MaxAckPending == 0 {
			cfg.MaxAckPending = 4096
		}
		if err := startAfterReplaced(ctx, js, ep.Stream, &cfg, ep.Replaces); err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
		}
		c, err := js.CreateOrUpdateConsumer(ctx, ep.Stream, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
		}
		consumers[i] = c
	}
	for _, ep := range eps {
		for _, old := range ep.Replaces {
			err := js.DeleteConsumer(ctx, ep.Stream, old)
			if err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, fmt.Errorf("retire consumer %s: %w", old, err)
			}
		}
	}
	return consumers, nil
}

// startAfterReplaced sets where a consumer that replaces others starts.
// One that exists keeps where it was created to start (a durable's start
// cannot change); a new one starts after the lowest ack floor of the
// replaced durables that exist, or, with none, at the stream's start.
func startAfterReplaced(ctx context.Context, js jetstream.JetStream, stream string, cfg *jetstream.ConsumerConfig, replaced []string) error {
	if len(replaced) == 0 {
		return nil
	}
	if c, err := js.Consumer(ctx, stream, cfg.Durable); err == nil {
		cur := c.CachedInfo().Config
		cfg.DeliverPolicy, cfg.OptStartSeq = cur.DeliverPolicy, cur.OptStartSeq
		return nil
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return err
	}
	floor, found, err := ackFloor(ctx, js, stream, replaced)
	if err != nil {
		return err
	}
	if found {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, floor+1
	}
	return nil
}

// ackFloor is the lowest ack floor of the named durables that exist;
// found is false when none does. A durable with nothing pending and
// nothing awaiting its ack has settled the whole stream, whatever its ack
// floor says (a filtered durable's floor stays where its last match was,
// or at 0 if nothing ever matched).
func ackFloor(ctx context.Context, js jetstream.JetStream, stream string, names []string) (floor uint64, found bool, err error) {
	var last uint64
	for _, name := range names {
		c, err := js.Consumer(ctx, stream, name)
		if errors.Is(err, jetstream.ErrConsumerNotFound) {
			continue
		}
		if err != nil {
			return 0, false, err
		}
		info := c.CachedInfo()
		f := info.AckFloor.Stream
		if info.NumPending == 0 && info.NumAckPending == 0 {
			if last == 0 {
				if last, err = LastSeq(ctx, js, stream); err != nil {
					return 0, false, err
				}
			}
			f = max(f, last)
		}
		if !found || f < floor {
			floor = f
		}
		found = true
	}
	return floor, found, nil
}
