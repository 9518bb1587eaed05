package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// secure puts the bench's server in operator mode as serve does (the keys
// under dir/auth) and writes the service's and an operator's creds files
// into dir.
func secure(dir string, cfg *bus.ServerConfig) (service, operator string, err error) {
	a, service, operator, err := authority(dir)
	if err != nil {
		return "", "", err
	}
	cfg.Configure = a.Configure
	return service, operator, nil
}

// authority creates the keys of a bench's NATS under dir/auth, as serve
// does for its embedded server, and writes the service's and an
// operator's creds files into dir.
func authority(dir string) (a *auth.Authority, service, operator string, err error) {
	if a, _, err = auth.OpenAuthority(filepath.Join(dir, "auth")); err != nil {
		return nil, "", "", err
	}
	service, operator = filepath.Join(dir, "service.creds"), filepath.Join(dir, "bench.creds")
	if err := a.IssueCreds(service, auth.Identity{Name: "service", Role: auth.Service}); err != nil {
		return nil, "", "", err
	}
	if err := a.IssueCreds(operator, auth.Identity{Name: "bench", Role: auth.Operator}); err != nil {
		return nil, "", "", err
	}
	return a, service, operator, nil
}

// connect connects to url as the user of a creds file, if one is given.
func connect(url, creds string) (*nats.Conn, error) {
	opts, err := credsOptions(creds)
	if err != nil {
		return nil, err
	}
	return nats.Connect(url, append(opts, nats.Name("licensebus bench"))...)
}

// credsOptions authenticate a connection as the user of a creds file, with
// the inbox prefix its role may subscribe to; none for "".
func credsOptions(creds string) ([]nats.Option, error) {
	if creds == "" {
		return nil, nil
	}
	c, err := auth.ReadCreds(creds)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", creds, err)
	}
	opts := []nats.Option{nats.UserJWTAndSeed(c.JWT, string(c.Seed))}
	if p := c.InboxPrefix(); p != "" {
		opts = append(opts, nats.CustomInboxPrefix(p))
	}
	return opts, nil
}

// authRounds is how many bursts each side of the comparison gets,
// alternating, so that a slow moment of the machine does not fall on one
// side only.
const authRounds = 2

// authOverhead measures what identities cost an activation: the same burst
// of activations (half the run's) on a fresh server and product with auth,
// as serve runs by default and with commands from an operator, and without
// (serve --no-auth), alternating in the order off, on, on, off; the medians
// give auth_overhead = 1 − on/off.
func authOverhead(ctx context.Context, cfg Config, startServer ServerFunc, start StartFunc, r *Result) error {
	n := max(cfg.Activations/2, 10)
	r.AuthActivations = n
	var on, off, cpuOn, cpuOff []float64
	for round := range authRounds {
		// Off then on, then on then off: a drift of the machine over the
		// rounds falls on both sides alike.
		order := []bool{false, true}
		if round%2 == 1 {
			order = []bool{true, false}
		}
		for _, withAuth := range order {
			rate, cpu, err := burst(ctx, cfg, startServer, start, withAuth, n, round)
			if err != nil {
				return err
			}
			if withAuth {
				on, cpuOn = append(on, rate), append(cpuOn, cpu)
			} else {
				off, cpuOff = append(off, rate), append(cpuOff, cpu)
			}
		}
	}
	r.ActivationsAuthOn, r.ActivationsAuthOff = median(on), median(off)
	if r.ActivationsAuthOff > 0 {
		r.AuthOverhead = 1 - r.ActivationsAuthOn/r.ActivationsAuthOff
	}
	r.AuthCPUOn, r.AuthCPUOff = median(cpuOn), median(cpuOff)
	if r.AuthCPUOff > 0 {
		r.AuthCPUOverhead = r.AuthCPUOn/r.AuthCPUOff - 1
	}
	return nil
}

// burst activates n licenses as fast as possible on a new server and
// product, with or without auth, and returns the rate and the CPU of both
// processes per activation (µs, 0 where not measured), until settled.
func burst(ctx context.Context, cfg Config, startServer ServerFunc, start StartFunc, withAuth bool, n, round int) (rate, cpu float64, err error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "licensebus-bench-auth-*")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ns, err := startServer(cctx, dir, withAuth)
	if err != nil {
		return 0, 0, err
	}
	defer ns.Stop()
	nc, err := connect(ns.URL, ns.Creds)
	if err != nil {
		return 0, 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, 0, err
	}
	p, err := start(cctx, ns.URL, ns.Creds)
	if err != nil {
		return 0, 0, fmt.Errorf("start licensebus: %w", err)
	}
	defer p.Close()
	b := &run{cfg: cfg, r: &Result{}, nc: nc, js: js, p: p, operatorCreds: ns.OperatorCreds, natsPID: ns.PID}
	defer func() {
		for _, c := range b.closers {
			c()
		}
	}()
	if err := b.commander(cctx); err != nil {
		return 0, 0, err
	}
	side := "off"
	if withAuth {
		side = "on"
	}
	b.progress("auth %s, round %d: preparing and activating %d licenses", side, round+1, n)
	ts, err := b.prepare(cctx, fmt.Sprintf("AUTH-%s-%d", side, round), n, 200)
	if err != nil {
		return 0, 0, err
	}
	if err := b.settle(cctx); err != nil {
		return 0, 0, err
	}
	mark, begin := b.cpuNow(), time.Now()
	if err := b.publish(cctx, ts); err != nil {
		return 0, 0, err
	}
	if err := b.waitAll(cctx, ts, b.visible); err != nil {
		return 0, 0, err
	}
	rate = float64(n) / time.Since(begin).Seconds()
	if err := b.settle(cctx); err != nil {
		return 0, 0, err
	}
	self, nats := mark.perUnit(b.cpuNow(), n)
	return rate, self + nats, nil
}
