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

// Serve is how every handler runs: it starts fold, waits until the fold has
// caught up with the stream (decisions need current state), calls ready
// (may be nil), then creates each endpoint's durable consumer and handles
// it until ctx ends. It returns the first error of any of them.
func Serve(ctx context.Context, js jetstream.JetStream, fold *Fold, ready func(), eps ...Endpoint) error {
	errc := make(chan error, len(eps)+1)
	go func() { errc <- fold.Run(ctx) }()
	if err := fold.CatchUp(ctx); err != nil {
		return err
	}
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
		c, err := js.CreateOrUpdateConsumer(ctx, ep.Stream, cfg)
		if err != nil {
			return fmt.Errorf("consumer %s: %w", cfg.Durable, err)
		}
		consumers[i] = c
	}
	if ready != nil {
		ready()
	}
	for i, ep := range eps {
		pool := ep.Pool
		if pool.Name == "" {
			pool.Name = ep.Consumer.Durable
		}
		go func() { errc <- Consume(ctx, consumers[i], pool, ep.Handle) }()
	}
	var first error
	for range len(eps) + 1 {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
