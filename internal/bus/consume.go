package bus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Delivery is one message of a durable consumer, decoded.
type Delivery struct {
	Msg jetstream.Msg
	// Message is the decoded CloudEvent; nil if it was not one.
	Message *events.Message
	// Err is the decode error, a *events.Rejection, or nil.
	Err error
	Seq uint64 // stream sequence
	// Deliveries counts deliveries of this message, 1 the first time.
	Deliveries uint64
}

// HandleFunc handles one delivery. nil acks it. An error is transient: the
// message is redelivered after a delay, and dead-lettered after
// MaxDeliveries. Handlers turn bad input into rejection events themselves
// and return nil, so poison never loops.
type HandleFunc func(ctx context.Context, d *Delivery) error

// MaxDeliver is the delivery limit of a durable consumer's messages, for
// durables created without one (and the value to create them with): after
// the handler's MaxDeliveries tries, the deliveries left retry the dead
// letter, and the last one settles the message whatever happens. A message
// delivered more often than this (the process died or hung while handling
// it) is dead-lettered without being handled again.
const MaxDeliver = 10

// PoolConfig configures Consume.
type PoolConfig struct {
	// Name appears in logs.
	Name string
	// Workers is how many deliveries are handled at once; deliveries with
	// the same Key go to the same worker, in order. Default 16.
	Workers int
	// Key returns the partition key of a delivery (an aggregate id).
	Key func(d *Delivery) string
	// Batch is how many messages one pull asks for. Default 512. Processes
	// sharing a consumer split the work by pulls, so a small batch spreads
	// it more evenly (at some cost in throughput).
	Batch int
	// MaxDeliveries before a message is dead-lettered. Default 5.
	MaxDeliveries uint64
	// MaxDeliver bounds the deliveries of a message: the last one settles
	// it even when it cannot be dead-lettered. Default: the consumer's own
	// MaxDeliver if it has one, else MaxDeliver.
	MaxDeliver uint64
	// DeadLetters receives messages that failed MaxDeliveries times.
	DeadLetters *DeadLetters
	Logger      zerolog.Logger
}

// Consume runs a partitioned worker pool over cons until ctx ends, then
// stops pulling, lets the workers finish what they hold, and returns.
func Consume(ctx context.Context, cons jetstream.Consumer, cfg PoolConfig, handle HandleFunc) error {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 512
	}
	if cfg.MaxDeliveries == 0 {
		cfg.MaxDeliveries = 5
	}
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = MaxDeliver
		if info := cons.CachedInfo(); info != nil && info.Config.MaxDeliver > 0 {
			cfg.MaxDeliver = uint64(info.Config.MaxDeliver)
		}
	}
	queues := make([]chan *Delivery, cfg.Workers)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *Delivery, 64)
		wg.Add(1)
		go func(q chan *Delivery) {
			defer wg.Done()
			for d := range q {
				if d.Deliveries > cfg.MaxDeliver {
					settle(ctx, cfg, d, fmt.Errorf("%w: delivered %d times without being settled", ErrDeliveryLimit, d.Deliveries))
					continue
				}
				settle(ctx, cfg, d, handle(ctx, d))
			}
		}(queues[i])
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		d := &Delivery{Msg: msg}
		if md, err := msg.Metadata(); err == nil {
			d.Seq, d.Deliveries = md.Sequence.Stream, md.NumDelivered
		}
		d.Message, d.Err = events.Decode(msg.Headers(), msg.Data())
		idx := 0
		if cfg.Key != nil {
			h := fnv.New32a()
			h.Write([]byte(cfg.Key(d)))
			idx = int(h.Sum32() % uint32(cfg.Workers))
		}
		queues[idx] <- d
	}, jetstream.PullMaxMessages(cfg.Batch), jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		cfg.Logger.Debug().Err(err).Str("consumer", cfg.Name).Msg("consume")
	}))
	if err != nil {
		for _, q := range queues {
			close(q)
		}
		return err
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	return nil
}

// ErrDeliveryLimit is the error a dead letter carries for a message that
// came back more often than MaxDeliver: handling it crashed or hung the
// process (a crash loop otherwise).
var ErrDeliveryLimit = errors.New("delivery limit reached")

// settle acks a handled delivery. A failed one is redelivered after a
// pause until MaxDeliveries, then dead-lettered (each delivery left tries
// the dead letter again); the last delivery is settled even when the dead
// letter fails, with an error line: the message stays in its stream.
func settle(ctx context.Context, cfg PoolConfig, d *Delivery, err error) {
	if err == nil {
		if aerr := d.Msg.Ack(); aerr != nil {
			cfg.Logger.Warn().Err(aerr).Str("consumer", cfg.Name).Uint64("seq", d.Seq).
				Msg("ack failed; the message will be redelivered and handled idempotently")
		}
		return
	}
	// The logger with the message's ids is built only on this rare path.
	log := cfg.Logger.With().Str("consumer", cfg.Name).Uint64("seq", d.Seq).Uint64("deliveries", d.Deliveries).Logger()
	if d.Message != nil {
		log = log.With().Str("ce_id", d.Message.ID()).Str("correlation_id", d.Message.CorrelationID()).Logger()
	}
	last := d.Deliveries >= cfg.MaxDeliver
	if d.Deliveries < cfg.MaxDeliveries && !last {
		log.Warn().Err(err).Msg("handler failed; will retry")
		_ = d.Msg.NakWithDelay(time.Duration(d.Deliveries) * 200 * time.Millisecond)
		return
	}
	if cfg.DeadLetters != nil {
		log.Error().Err(err).Msg("giving up: dead-lettering message")
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		derr := cfg.DeadLetters.Put(dctx, d, err)
		if derr == nil {
			_ = d.Msg.Term()
			return
		}
		if !last {
			log.Error().Err(derr).Msg("dead letter failed; message stays for redelivery")
			_ = d.Msg.NakWithDelay(time.Second)
			return
		}
		log.Error().Err(err).AnErr("dead_letter_error", derr).
			Msg("delivery limit reached and the dead letter failed: message settled without a dead letter; it stays in its stream")
		_ = d.Msg.Term()
		return
	}
	if last {
		log.Error().Err(err).Msg("delivery limit reached: message settled unhandled; it stays in its stream")
		_ = d.Msg.Term()
		return
	}
	log.Warn().Err(err).Msg("handler failed; will retry")
	_ = d.Msg.NakWithDelay(time.Duration(d.Deliveries) * 200 * time.Millisecond)
}
