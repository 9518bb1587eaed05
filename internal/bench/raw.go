package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Raw phases, each measured the way jetstream-baseline.md describes it.
const (
	rawSubjects = 10_000 // distinct subjects of the raw appends
	asyncWindow = 4096   // PublishAsyncMaxPending
	pullBatch   = 4096   // PullMaxMessages of replays
)

// payload is a 600-byte JSON license event, padded to size.
func payload() []byte {
	const head = `{"type":"io.licensebus.license.bound","license_id":"123e4567-e89b-12d3-a456-426614174000",` +
		`"customer_id":"7c9e6679-7425-40de-944b-e07fc1f90ae7","install_code":"IC-000001","kind":"capacity",` +
		`"devices":200,"bound_at":"2026-11-25T21:22:00.123456789Z","note":"`
	const tail = `"}`
	return []byte(head + strings.Repeat("x", PayloadBytes-len(head)-len(tail)) + tail)
}

func rawSubject(i int) string { return "bench.license." + strconv.Itoa(i%rawSubjects) }

// rawAsync publishes n messages with PublishMsgAsync and a unique msg id from
// one goroutine, at most asyncWindow in flight, and returns msgs/s until the
// last is acked.
func rawAsync(ctx context.Context, nc *nats.Conn, n int) (float64, error) {
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(asyncWindow),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return 0, err
	}
	data := payload()
	subjects := make([]string, rawSubjects)
	for i := range subjects {
		subjects[i] = rawSubject(i)
	}
	start := time.Now()
	for i := range n {
		if err := publishAsync(ctx, js, &nats.Msg{Subject: subjects[i%rawSubjects], Data: data}, jetstream.WithMsgID("raw-"+strconv.Itoa(i))); err != nil {
			return 0, err
		}
	}
	if err := waitAcked(ctx, js); err != nil {
		return 0, err
	}
	elapsed := time.Since(start)
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("raw async append: %d of %d publishes failed", f, n)
	}
	return float64(n) / elapsed.Seconds(), nil
}

// publishAsync publishes msg, waiting while the window is full: a stall is
// back pressure, not an error.
func publishAsync(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, opts ...jetstream.PublishOpt) error {
	for {
		_, err := js.PublishMsgAsync(msg, opts...)
		if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func waitAcked(ctx context.Context, js jetstream.JetStream) error {
	select {
	case <-js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d async publishes still unacked: %w", js.PublishAsyncPending(), ctx.Err())
	}
}

// rawSync times n sequential PublishMsg calls with a msg id and returns the
// p50 and p99 in milliseconds.
func rawSync(ctx context.Context, js jetstream.JetStream, n int) (p50, p99 float64, err error) {
	data := payload()
	lat := make([]time.Duration, n)
	for i := range n {
		msg := &nats.Msg{Subject: rawSubject(i), Data: data}
		t := time.Now()
		if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID("sync-"+strconv.Itoa(i))); err != nil {
			return 0, 0, fmt.Errorf("raw sync publish: %w", err)
		}
		lat[i] = time.Since(t)
	}
	return ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), nil
}

// rawCASSync appends n messages from workers goroutines with synchronous
// PublishMsg, expected-last-subject-sequence and a msg id; each goroutine
// owns aggs subjects. It is what bus.Appender does, without the product, so
// append_events_per_s has a raw counterpart.
func rawCASSync(ctx context.Context, js jetstream.JetStream, n, workers, aggs int) (float64, error) {
	data := payload()
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := make([]uint64, aggs)
			subjects := make([]string, aggs)
			for k := range subjects {
				subjects[k] = fmt.Sprintf("bench.cas.%d.%d", w, k)
			}
			for i := range share(n, workers, w) {
				k := i % aggs
				ack, err := js.PublishMsg(ctx, &nats.Msg{Subject: subjects[k], Data: data},
					jetstream.WithExpectLastSequencePerSubject(last[k]), jetstream.WithMsgID(fmt.Sprintf("cas-%d-%d", w, i)))
				if err != nil {
					errc <- fmt.Errorf("raw expected-sequence append: %w", err)
					return
				}
				last[k] = ack.Sequence
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	select {
	case err := <-errc:
		return 0, err
	default:
	}
	return float64(n) / elapsed.Seconds(), nil
}

// share is how many of n items worker w of workers takes.
func share(n, workers, w int) int {
	s := n / workers
	if w < n%workers {
		s++
	}
	return s
}

// replay reads the whole stream with an ordered consumer, as a projection
// rebuild does, doing nothing with the messages, and returns their number
// and msgs/s.
func replay(ctx context.Context, js jetstream.JetStream, stream string) (int, float64, error) {
	state, err := bus.State(ctx, js, stream)
	if err != nil {
		return 0, 0, err
	}
	total := state.Msgs
	if total == 0 {
		return 0, 0, fmt.Errorf("replay: stream %s is empty", stream)
	}
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, 0, err
	}
	var got atomic.Uint64
	done := make(chan struct{})
	start := time.Now()
	cc, err := cons.Consume(func(jetstream.Msg) {
		if got.Add(1) == total {
			close(done)
		}
	}, jetstream.PullMaxMessages(pullBatch))
	if err != nil {
		return 0, 0, err
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("replay of %s: %d of %d messages: %w", stream, got.Load(), total, ctx.Err())
	}
	return int(total), float64(total) / time.Since(start).Seconds(), nil
}

// bytesPerMsg is what the store holds per message of stream: subject,
// headers, data and the store's own record.
func bytesPerMsg(ctx context.Context, js jetstream.JetStream, stream string) (float64, error) {
	state, err := bus.State(ctx, js, stream)
	if err != nil {
		return 0, err
	}
	if state.Msgs == 0 {
		return 0, nil
	}
	return float64(state.Bytes) / float64(state.Msgs), nil
}
