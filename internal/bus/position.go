package bus

// Positions of the jobs a Feed drives, for metrics and readiness.

// Reactors returns the reactors registered on the feed, in order.
func (f *Feed) Reactors() []*Reactor {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Reactor(nil), f.reactors...)
}

// Name is the reactor's name (its checkpoint key).
func (r *Reactor) Name() string { return r.cfg.Name }

// Done is the sequence up to which the reactor has handled every
// reaction, as it stands in memory (the checkpoint it would store now).
func (r *Reactor) Done() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	floor := r.offered
	for seq := range r.open {
		floor = min(floor, seq-1)
	}
	return floor
}
