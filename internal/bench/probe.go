package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The probe measures what raw JetStream gives a client at the moment the
// latency phase runs: publish to ack of small messages with a msg id, open
// loop, from a process of its own whose heap is too small to collect
// often. It tells a latency the product adds from one the server (its
// collector, its disk, the cores the processes share) puts on every
// client: the e2e path waits for four stores in a row, so its tail cannot
// be below the probe's.
const (
	probeStream   = "BENCH_PROBE"
	probeSubjects = 1000 // distinct subjects, each with a msg id, as the product writes
	// ProbeRate is the probe's publishes per second: about 1 % of what
	// the product writes at half load, enough for a p99.9.
	ProbeRate = 100
)

// ProbeFunc starts a probe of the NATS server at url as the user of creds
// ("" for none); stop ends it and returns what it measured.
type ProbeFunc func(ctx context.Context, url, creds string) (stop func() (ProbeResult, error), err error)

// ProbeResult is what a probe measured: publish to ack, in ms.
type ProbeResult struct {
	Samples int     `json:"samples"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	P999MS  float64 `json:"p99_9_ms"`
	MaxMS   float64 `json:"max_ms"`
	Failed  int     `json:"failed"`
}

// ProbeFlag and ProbeCredsFlag are what ChildProbe appends to argv: the
// server's URL and the creds file.
const (
	ProbeFlag      = "--probe-nats"
	ProbeCredsFlag = "--probe-creds"
)

// ChildProbe runs the probe in a process of its own: argv with ProbeFlag
// and ProbeCredsFlag appended, a program that calls RunProbe.
func ChildProbe(argv []string, env []string) ProbeFunc {
	return func(ctx context.Context, url, creds string) (func() (ProbeResult, error), error) {
		p, err := startProc("probe process", append(append([]string{}, argv...), ProbeFlag+"="+url, ProbeCredsFlag+"="+creds), env, os.Stderr)
		if err != nil {
			return nil, err
		}
		p.out = make(chan []byte, 1)
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var ready struct{}
		if err := p.run(rctx, &ready); err != nil {
			return nil, err
		}
		stop := func() (ProbeResult, error) {
			var pr ProbeResult
			_ = p.stdin.Close() // the probe reports and exits when its stdin closes
			select {
			case b, ok := <-p.out:
				p.stop()
				if !ok {
					return pr, errors.New("probe process exited without its figures")
				}
				return pr, json.Unmarshal(b, &pr)
			case <-time.After(30 * time.Second):
				p.kill()
				return pr, errors.New("probe process did not report within 30s")
			}
		}
		return stop, nil
	}
}

// RunProbe is the probe process: it publishes ProbeRate messages a second
// to a stream of its own on the server at url until stdin reaches its end,
// then writes one line of ProbeResult to stdout. A line on stdout says it
// has started.
func RunProbe(ctx context.Context, url, creds string, stdin io.Reader, stdout io.Writer) error {
	nc, err := connect(url, creds)
	if err != nil {
		return err
	}
	defer nc.Close()
	// An ack that never comes is a failed publish, not a probe that never
	// reports.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: probeStream, Subjects: []string{"bench.probe.>"}, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("probe stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, probeStream)
	}()
	if _, err := io.WriteString(stdout, "{}\n"); err != nil {
		return err
	}
	// The probe publishes until its stdin ends (or a signal).
	sending, stopSending := context.WithCancel(ctx)
	defer stopSending()
	go func() { _, _ = io.Copy(io.Discard, stdin); stopSending() }()

	var (
		mu     sync.Mutex
		lat    []time.Duration
		failed int
		wg     sync.WaitGroup
	)
	data := payload()
	interval := time.Second / ProbeRate
	start := time.Now()
	// Open loop: a slow ack does not delay the next publish, so a stall
	// shows in every publish it holds up.
	for i := 0; sleepUntil(sending, start.Add(time.Duration(i)*interval)) == nil; i++ {
		sent := time.Now()
		f, err := js.PublishMsgAsync(&nats.Msg{Subject: "bench.probe." + strconv.Itoa(i%probeSubjects), Data: data},
			jetstream.WithMsgID("probe-"+strconv.Itoa(i)))
		if err != nil {
			mu.Lock()
			failed++
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-f.Ok():
				d := time.Since(sent)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			case <-f.Err():
				mu.Lock()
				failed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	pr := ProbeResult{Samples: len(lat), Failed: failed}
	pr.P50MS, pr.P99MS, pr.P999MS = ms(percentile(lat, 0.50)), ms(percentile(lat, 0.99)), ms(percentile(lat, 0.999))
	if len(lat) > 0 {
		pr.MaxMS = ms(lat[len(lat)-1]) // percentile sorted it
	}
	return json.NewEncoder(stdout).Encode(pr)
}
