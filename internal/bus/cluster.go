package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Election decides which process of a cluster runs a singleton job
// (package elect implements it with a KV lease per job).
type Election interface {
	// Lead runs lead while this process holds job, and campaigns for it
	// while another process does, until ctx ends. lead's context ends
	// when the job is lost or handed over, and the job is given up only
	// once lead has returned; lead returning early gives it up too.
	Lead(ctx context.Context, job string, lead func(ctx context.Context) error) error
}

// ErrFenced means a singleton job's write was refused because another
// process wrote since — it runs the job now (its first act moved the
// revision or sequence the write expected). The job stops.
var ErrFenced = errors.New("fenced: another process runs the job now")

// Elect makes the feed's reactors singletons: each reacts only in the
// process e elects for it ("reactor/<name>"), the others keep their
// queues to what it has not checkpointed yet. Call it before reactors are
// registered.
func (f *Feed) Elect(e Election) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.election = e
}

// Fenced counts the checkpoints of the feed's reactors that were refused
// because another process had taken the reactor over.
func (f *Feed) Fenced() uint64 { return f.fenced.Load() }

// DefaultReplicas is how many replicas serve gives streams and buckets
// when --replicas is not given: 3 when the NATS it joins tells of at least
// three servers in its cluster, else 1. If the servers turn out to lack
// JetStream, creating R3 fails and EnsureStreams falls back to 1.
func DefaultReplicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	seen := map[string]bool{}
	for _, u := range nc.Servers() {
		seen[strings.TrimPrefix(u, "nats://")] = true
	}
	if len(seen) >= 3 {
		return 3
	}
	return 1
}

// Replicas is how many replicas serve wants for its streams and buckets:
// N, and Explicit when --replicas said so. An explicit count scales every
// stream and bucket to it, up or down; a default one only scales up (a
// cluster briefly seen smaller must not shrink an R3 deployment).
type Replicas struct {
	N        int
	Explicit bool
}

// For is the replica count a stream that has have replicas should get.
func (r Replicas) For(have int) int {
	n := max(1, r.N)
	if !r.Explicit {
		n = max(n, have)
	}
	return n
}

// insufficientReplicas says err is the server refusing a replica count it
// cannot place: fewer JetStream servers than replicas, or none clustered.
func insufficientReplicas(err error) bool {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return false
	}
	// 10005 no suitable peers for placement, 10023 insufficient resources,
	// 10074 replicas > 1 not supported in non-clustered mode.
	switch ae.ErrorCode {
	case 10005, 10023, 10074:
		return true
	}
	return false
}

// Scale sets the replicas of an existing stream (a KV bucket's is
// "KV_<bucket>") to what r asks for, and says so at info level: scaling up
// an R1 deployment on a 3-server cluster is how it gets replicated.
func Scale(ctx context.Context, js jetstream.JetStream, stream string, r Replicas, log zerolog.Logger) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	have := max(1, cfg.Replicas)
	want := r.For(have)
	if want == have {
		return nil
	}
	cfg.Replicas = want
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		if !r.Explicit && insufficientReplicas(err) {
			log.Warn().Str("stream", stream).Int("replicas", have).Err(err).Msg("stream not scaled: the cluster cannot place the replicas")
			return nil
		}
		return fmt.Errorf("stream %s: scale from %d to %d replicas: %w", stream, have, want, err)
	}
	log.Info().Str("stream", stream).Int("from", have).Int("to", want).Msg("stream scaled to the replicas asked for")
	return nil
}

// OpenBucket opens a KV bucket, creating it with cfg if it does not exist.
// It never updates an existing bucket (CreateOrUpdateKeyValue would set
// its replicas back to cfg's); serve scales buckets with Scale.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, err
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.KeyValue(ctx, cfg.Bucket) // another process created it first
	}
	return kv, err
}

// LastMsg reads the last message of stream on subject (a wildcard picks
// the newest match) from the stream's leader. jetstream.Stream's
// GetLastMsgForSubject uses a direct get on streams that allow it, which
// on a replicated stream any replica may answer, one that has not got the
// latest write yet among them: a read after a lost race must see the write
// that won. ErrMsgNotFound when nothing matches.
func LastMsg(ctx context.Context, js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	req, _ := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{subject})
	resp, err := js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, fmt.Errorf("get last of %s on %s: %w", subject, stream, err)
	}
	var r struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     uint16 `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Header  []byte    `json:"hdrs"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("get last of %s on %s: %w", subject, stream, err)
	}
	if r.Error != nil {
		if r.Error.Code == 404 && r.Error.ErrCode == uint16(jetstream.JSErrCodeMessageNotFound) {
			return nil, jetstream.ErrMsgNotFound
		}
		if r.Error.ErrCode == uint16(jetstream.JSErrCodeStreamNotFound) {
			return nil, jetstream.ErrStreamNotFound
		}
		return nil, fmt.Errorf("get last of %s on %s: %s (%d)", subject, stream, r.Error.Description, r.Error.ErrCode)
	}
	if r.Message == nil {
		return nil, jetstream.ErrMsgNotFound
	}
	m := &jetstream.RawStreamMsg{Subject: r.Message.Subject, Sequence: r.Message.Seq, Data: r.Message.Data, Time: r.Message.Time}
	if len(r.Message.Header) > 0 {
		if m.Header, err = nats.DecodeHeadersMsg(r.Message.Header); err != nil {
			return nil, fmt.Errorf("get last of %s on %s: headers: %w", subject, stream, err)
		}
	}
	return m, nil
}

type leaderCheckKey struct{}

// WithLeaderCheck returns ctx carrying check, how a job asks whether it
// still holds its election (elect puts it in a term's context).
func WithLeaderCheck(ctx context.Context, check func(context.Context) error) context.Context {
	return context.WithValue(ctx, leaderCheckKey{}, check)
}

// CheckLeader asks the election whose term ctx belongs to whether this
// process still holds the job, reading the lease where it is kept: nil if
// it does (or ctx is no term's), an error wrapping ErrFenced if another
// process holds it. A job that lost a race for a write calls it before it
// tries again, so that a process paused past its lease does not retry its
// way past the fence.
func CheckLeader(ctx context.Context) error {
	if check, ok := ctx.Value(leaderCheckKey{}).(func(context.Context) error); ok {
		return check(ctx)
	}
	return nil
}

// ReadLastPerSubject hands f the last message of every subject of stream
// (a KV bucket's entries) as the stream is when the read starts, headers
// only if asked. A fetch that does not wait can come back empty from a
// replicated stream whose consumer is still being set up, and a read that
// stopped there would miss a whole bucket: the read goes on until the
// message that reaches the stream's last sequence of the start (or after
// which none are pending), not chasing what is written meanwhile.
func ReadLastPerSubject(ctx context.Context, js jetstream.JetStream, stream string, headersOnly bool, f func(jetstream.Msg) error) error {
	state, err := State(ctx, js, stream)
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	if state.Msgs == 0 {
		return nil
	}
	var cons jetstream.Consumer
	// A stream that has just been created or scaled may not answer yet.
	for attempt := 1; ; attempt++ {
		cons, err = js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy, HeadersOnly: headersOnly})
		if err == nil || ctx.Err() != nil || attempt == 20 {
			break
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", stream, err)
	}
	var idle time.Time // since when fetches come back empty or fail
	for {
		b, err := cons.FetchNoWait(4096)
		if err != nil {
			// The ordered consumer sets itself up again on the next fetch
			// (a consumer not there yet answers "no responders").
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case idle.IsZero():
				idle = time.Now()
			case time.Since(idle) > 10*time.Second:
				return fmt.Errorf("read %s: %w", stream, err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		n, pending := 0, uint64(1)
		for msg := range b.Messages() {
			n++
			if md, err := msg.Metadata(); err == nil {
				pending = md.NumPending
				if md.Sequence.Stream >= state.LastSeq {
					pending = 0
				}
			}
			if err := f(msg); err != nil {
				return err
			}
		}
		// The pull of a consumer that is not set up yet on the stream's
		// leader comes back as a 503 status, in the batch: as empty, the
		// next fetch sets the consumer up again.
		if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("read %s: %w", stream, err)
		}
		switch {
		case n > 0 && pending == 0:
			return nil
		case n > 0:
			idle = time.Time{}
		case ctx.Err() != nil:
			return ctx.Err()
		case idle.IsZero():
			idle = time.Now()
		case time.Since(idle) > 10*time.Second:
			return fmt.Errorf("read %s: no messages for 10s", stream)
		default:
			time.Sleep(20 * time.Millisecond)
		}
	}
}
