package bus

import (
	"context"
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
	// A stop while starting is a stop, not a failure.
	eps := svc.Endpoints
	for _, r := range svc.Reactors {
		if err := r.Open(ctx); err != nil {
			return stopped(ctx, err)
		}
	}
	errc := make(chan error, len(eps)+len(svc.Reactors)+1)
	go func() { errc <- svc.Fold.Run(ctx) }()
	if err := svc.Fold.CatchUp(ctx); err != nil {
		return stopped(ctx, err)
	}
	consumers, err := ensureConsumers(ctx, js, eps)
	if err != nil {
		return stopped(ctx, err)
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

// stopped is nil if ctx has ended (err is then its consequence), else err.
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// ensureConsumers creates or updates the endpoints' durables.
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
		if cfg.MaxDeliver == 0 {
			// The server stops redelivering too, past the last delivery
			// Consume settles.
			cfg.MaxDeliver = MaxDeliver
		}
		c, err := js.CreateOrUpdateConsumer(ctx, ep.Stream, cfg)
		if err != nil {
			return nil, fmt.Errorf("consumer %s: %w", cfg.Durable, err)
		}
		consumers[i] = c
	}
	return consumers, nil
}
