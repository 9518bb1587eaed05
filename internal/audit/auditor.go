package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/licensebus/licensebus/events"
	trail "github.com/licensebus/licensebus/events/audit"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Config holds an Auditor's dependencies and tuning.
type Config struct {
	JS     jetstream.JetStream // required
	Logger zerolog.Logger
	// Settle is how long after a stream-info snapshot a message must have
	// been stored to be placed against the other stream (it covers the
	// moment between the server stamping a message and storing it).
	// Default 25ms; it is also the idle latency of the trail.
	Settle time.Duration
	// InFlight bounds appends awaiting their ack. Default 256.
	InFlight int
	// Standby is how often an auditor that lost the race to another one
	// checks whether the other is still writing. Default 1s.
	Standby time.Duration
	// Tap, if set, is a tap on the process's feed: the auditor reads the
	// event stream from it once caught up, instead of a second time.
	Tap *bus.Tap
}

// Auditor writes the audit trail. Run one per licensebus process; several
// on one NATS are safe (one writes, the others stand by).
type Auditor struct {
	cfg Config
	log zerolog.Logger
}

// New returns an Auditor; Run starts it.
func New(cfg Config) *Auditor {
	if cfg.Settle <= 0 {
		cfg.Settle = 25 * time.Millisecond
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 256
	}
	if cfg.Standby <= 0 {
		cfg.Standby = time.Second
	}
	return &Auditor{cfg: cfg, log: cfg.Logger.With().Str("component", "audit").Logger()}
}

// errConflict means the audit stream moved under the auditor: another
// auditor or a stranger wrote to it.
var errConflict = errors.New("audit stream changed by another writer")

// errFailClosed means the auditor cannot find a genuine entry to continue
// from; it stops rather than start a second chain.
var errFailClosed = errors.New("audit trail head is not genuine")

// tip is the end of the chain the auditor continues.
type tip struct {
	seq        uint64
	hash       string
	cursor     trail.Cursor
	streamLast uint64 // last sequence of the audit stream: the expectation of the next append
}

// Run creates the audit stream if needed and appends an entry for every
// source message after the trail's cursor, until ctx ends.
func (a *Auditor) Run(ctx context.Context) error {
	if a.cfg.JS == nil {
		return errors.New("audit: JS is required")
	}
	str, err := EnsureStream(ctx, a.cfg.JS)
	if err != nil {
		return err
	}
	var srcs [2]jetstream.Stream
	for i, name := range []string{events.CommandsStream, events.EventsStream} {
		if srcs[i], err = a.cfg.JS.Stream(ctx, name); err != nil {
			return fmt.Errorf("audit: source %s: %w", name, err)
		}
	}
	// lastOwn is the last entry this auditor stored; conflicted says its
	// last append found the stream moved.
	var lastOwn uint64
	conflicted, checked := false, false
	for {
		t, err := a.findTip(ctx, str)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errFailClosed):
			return err
		case err != nil:
			a.log.Warn().Err(err).Msg("reading the trail head; retrying")
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		if conflicted && t.seq > lastOwn {
			// Someone else extended the chain: another auditor is writing.
			if err := a.standby(ctx, str, srcs); err != nil {
				return nil
			}
			conflicted = false
			continue
		}
		conflicted = false
		if !checked {
			a.checkStreams(ctx, t.cursor)
			checked = true
		}
		a.log.Info().Uint64("seq", t.seq).Uint64("commands", t.cursor.Commands).Uint64("events", t.cursor.Events).Msg("audit trail resumes")
		lastOwn, err = a.follow(ctx, str, srcs, t)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errConflict) {
			a.log.Info().Err(err).Msg("re-reading the trail head")
			conflicted = true
			continue
		}
		a.log.Warn().Err(err).Msg("audit interrupted; resuming")
		if !sleep(ctx, time.Second) {
			return nil
		}
	}
}

// checkStreams logs, at error level, every way the streams differ from
// what the trail expects of them (CheckStreams): the trail cannot record
// what a source lost, nor the messages of a source created again until it
// passes the cursor, and only an operator can say why it happened.
func (a *Auditor) checkStreams(ctx context.Context, cursor trail.Cursor) {
	probs, err := CheckStreams(ctx, a.cfg.JS, cursor)
	if err != nil {
		a.log.Warn().Err(err).Msg("cannot check the streams against the trail")
		return
	}
	for _, p := range probs {
		a.log.Error().Str("where", p.Where).Str("problem", p.Detail).Msg("a stream changed under the audit trail")
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// maxStrangers bounds how far back the auditor looks for a genuine entry
// past messages it did not write.
const maxStrangers = 1000

// findTip returns the last genuine entry of the audit stream: its hash
// matches its content, it records its source message faithfully, and it
// continues the entry before it. Messages after it are strangers: logged,
// never chained to.
func (a *Auditor) findTip(ctx context.Context, str jetstream.Stream) (tip, error) {
	info, err := str.Info(ctx)
	if err != nil {
		return tip{}, fmt.Errorf("audit stream info: %w", err)
	}
	last := info.State.LastSeq
	for s := last; s >= 1; s-- {
		if last-s >= maxStrangers {
			return tip{}, fmt.Errorf("%w: no genuine entry in the last %d messages of %s; run `licensebus audit verify`", errFailClosed, maxStrangers, trail.Stream)
		}
		raw, err := str.GetMsg(ctx, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return tip{}, fmt.Errorf("audit stream seq %d: %w", s, err)
		}
		e, why, err := a.genuine(ctx, str, raw.Data, s)
		if err != nil {
			return tip{}, err
		}
		if why == "" {
			return tip{seq: e.Seq, hash: e.Hash, cursor: e.Cursor, streamLast: last}, nil
		}
		a.log.Error().Uint64("stream_seq", s).Str("problem", why).
			Msg("audit stream holds a message that is not a genuine entry (tampering?); it is not chained to")
	}
	return tip{hash: trail.GenesisHash, streamLast: last}, nil
}

// genuine checks the message at audit stream sequence s. why is empty when
// it is a genuine entry; err is for failures to read.
func (a *Auditor) genuine(ctx context.Context, str jetstream.Stream, raw []byte, s uint64) (*trail.Entry, string, error) {
	e, ok, err := trail.Open(raw)
	if err != nil {
		return nil, err.Error(), nil
	}
	if !ok {
		return nil, "its hash does not match its content", nil
	}
	why, err := a.faithful(ctx, e, raw)
	if err != nil || why != "" {
		return nil, why, err
	}
	pred := &trail.Entry{Hash: trail.GenesisHash}
	if e.Seq > 1 {
		pred = nil
		for p := s - 1; p >= 1 && s-p <= maxStrangers; p-- {
			praw, err := str.GetMsg(ctx, p)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				return nil, "", fmt.Errorf("audit stream seq %d: %w", p, err)
			}
			if pe, ok, _ := trail.Open(praw.Data); ok && pe.Hash == e.PrevHash {
				pred = pe
				break
			}
		}
	}
	if why := continues(pred, e); why != "" {
		return nil, why, nil
	}
	return e, "", nil
}

// continues says why e is not the next entry after pred ("" if it is).
func continues(pred, e *trail.Entry) string {
	switch {
	case pred == nil:
		return "the entry its prev_hash names is not in the audit stream"
	case e.PrevHash != pred.Hash:
		return "its prev_hash is not the hash of the entry before it"
	case e.Seq != pred.Seq+1:
		return fmt.Sprintf("seq %d does not follow seq %d", e.Seq, pred.Seq)
	case e.StreamSeq <= pred.Cursor.Of(e.Stream) || pred.Cursor.Advance(e.Stream, e.StreamSeq) != e.Cursor:
		return fmt.Sprintf("its cursor %+v is not the cursor %+v advanced to %s seq %d", e.Cursor, pred.Cursor, e.Stream, e.StreamSeq)
	}
	return ""
}

// faithful says why e does not record its source message ("" if it does,
// or if the source message is gone and cannot be compared).
func (a *Auditor) faithful(ctx context.Context, e *trail.Entry, raw []byte) (string, error) {
	if e.Stream != events.CommandsStream && e.Stream != events.EventsStream {
		return fmt.Sprintf("unknown source stream %q", e.Stream), nil
	}
	src, err := a.cfg.JS.Stream(ctx, e.Stream)
	if err != nil {
		return "", err
	}
	m, err := src.GetMsg(ctx, e.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		info, err := src.Info(ctx)
		if err != nil {
			return "", err
		}
		if e.StreamSeq > info.State.LastSeq {
			return fmt.Sprintf("it records %s seq %d, which the stream has never held", e.Stream, e.StreamSeq), nil
		}
		a.log.Warn().Str("stream", e.Stream).Uint64("stream_seq", e.StreamSeq).Msg("source message of the trail head is gone; cannot compare")
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("source %s seq %d: %w", e.Stream, e.StreamSeq, err)
	}
	return mismatch(e, raw, SourceMsg{Stream: e.Stream, Seq: m.Sequence, Subject: m.Subject, Time: m.Time, Header: m.Header, Data: m.Data}), nil
}

// mismatch says how raw (entry e) differs from the entry src yields at e's
// place in the chain ("" if it does not).
func mismatch(e *trail.Entry, raw []byte, src SourceMsg) string {
	want := Derive(src)
	want.Seq, want.Cursor = e.Seq, e.Cursor
	wraw, err := trail.Seal(&want, e.PrevHash)
	if err != nil {
		return err.Error()
	}
	if string(wraw) != string(raw) {
		return fmt.Sprintf("it does not record %s seq %d as it is", src.Stream, src.Seq)
	}
	return ""
}

// standby waits while another auditor keeps the trail current, and returns
// when the trail stops moving while the sources have messages it lacks.
func (a *Auditor) standby(ctx context.Context, str jetstream.Stream, srcs [2]jetstream.Stream) error {
	a.log.Info().Msg("another auditor is writing the trail; standing by")
	prev := ^uint64(0)
	tick := time.NewTicker(a.cfg.Standby)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		info, err := str.Info(ctx)
		if err != nil {
			continue
		}
		last := info.State.LastSeq
		if last != prev {
			prev = last
			continue
		}
		var cur trail.Cursor
		if last > 0 {
			raw, err := str.GetMsg(ctx, last)
			if err != nil {
				continue
			}
			if e, _, err := trail.Open(raw.Data); err == nil {
				cur = e.Cursor
			}
		}
		for i, s := range srcs {
			si, err := s.Info(ctx)
			if err != nil {
				break
			}
			if si.State.LastSeq > [2]uint64{cur.Commands, cur.Events}[i] {
				a.log.Info().Msg("the other auditor stopped writing; taking over")
				return nil
			}
		}
	}
}

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
	w := &writer{js: a.cfg.JS, max: a.cfg.InFlight, tip: t, acked: t.seq}
	defer func() {
		// Let what is in flight land, so the next start finds a clean head.
		dctx, c := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer c()
		_ = w.drain(dctx)
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
			}
			start, n = time.Now(), 0
			if snap, err = a.snapshot(ctx, srcs); err != nil {
				return w.acked, err
			}
		}
	}
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

// writer appends sealed entries with pipelined expected-last-sequence
// publishes: each append expects the audit stream to end where the one
// before it left it, so no other writer can slip in between.
type writer struct {
	js      jetstream.JetStream
	max     int
	tip     tip    // after the last append sent
	acked   uint64 // seq of the last entry known stored
	chained bool   // the last message of the stream is (to be) this writer's
	pending []sent
}

type sent struct {
	seq, streamSeq uint64
	f              jetstream.PubAckFuture
}

func (w *writer) append(ctx context.Context, m *SourceMsg) error {
	e := Derive(*m)
	e.Seq = w.tip.seq + 1
	e.Cursor = w.tip.cursor.Advance(m.Stream, m.Seq)
	raw, err := trail.Seal(&e, w.tip.hash)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: trail.Subject, Data: raw, Header: nats.Header{nats.MsgIdHdr: []string{e.Hash}}}
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequence(w.tip.streamLast)}
	if w.chained {
		// Pipelined appends: each also expects the one before it to be the
		// last message, so once one fails every later one fails too — a
		// stranger's message must not let the rest of the pipeline land
		// after a gap.
		opts = append(opts, jetstream.WithExpectLastMsgID(w.tip.hash))
	}
	f, err := w.js.PublishMsgAsync(msg, opts...)
	if err != nil {
		return fmt.Errorf("append audit entry %d: %w", e.Seq, err)
	}
	w.tip = tip{seq: e.Seq, hash: e.Hash, cursor: e.Cursor, streamLast: w.tip.streamLast + 1}
	w.chained = true
	w.pending = append(w.pending, sent{seq: e.Seq, streamSeq: w.tip.streamLast, f: f})
	if len(w.pending) >= w.max {
		return w.settle(ctx, len(w.pending)/2)
	}
	return nil
}

// drain waits for every append in flight.
func (w *writer) drain(ctx context.Context) error { return w.settle(ctx, len(w.pending)) }

// settle waits for the oldest n appends. On the first failure it still
// waits for the rest (they fail too, as each expected the one before).
func (w *writer) settle(ctx context.Context, n int) error {
	var first error
	for range n {
		p := w.pending[0]
		w.pending = w.pending[1:]
		err := waitAck(ctx, p)
		if err == nil && first == nil {
			w.acked = p.seq
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

// errCodeWrongLastMsgID is JetStream's "wrong last msg ID" (nats.go has
// no constant for it).
const errCodeWrongLastMsgID jetstream.ErrorCode = 10070

func waitAck(ctx context.Context, p sent) error {
	t := time.NewTimer(10 * time.Second)
	defer t.Stop()
	select {
	case ack := <-p.f.Ok():
		if ack.Duplicate || ack.Sequence != p.streamSeq {
			return fmt.Errorf("%w: entry %d stored at %d, expected %d", errConflict, p.seq, ack.Sequence, p.streamSeq)
		}
		return nil
	case err := <-p.f.Err():
		var ae *jetstream.APIError
		if errors.As(err, &ae) && (ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
			ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant || ae.ErrorCode == errCodeWrongLastMsgID) {
			return fmt.Errorf("%w: entry %d: %v", errConflict, p.seq, err)
		}
		return fmt.Errorf("append audit entry %d: %w", p.seq, err)
	case <-t.C:
		return fmt.Errorf("append audit entry %d: no ack", p.seq)
	case <-ctx.Done():
		return ctx.Err()
	}
}
