package auth_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/licensebus/licensebus/internal/auth"
	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// BenchmarkCommandPublish measures what identities cost a command: a
// JetStream publish (stored, acknowledged) on the command stream, on a
// server without auth and in operator mode as each identity that sends
// commands. The difference is the server's permission check of the
// publish (the operator's is the longest list; each of 10,000 subjects is
// new to the server's cache of results) and nothing else on the path: the
// service carries no permissions.
func BenchmarkCommandPublish(b *testing.B) {
	for _, tt := range []struct {
		name string
		id   *auth.Identity
	}{
		{"no-auth", nil},
		{"service", &auth.Identity{Name: "service", Role: auth.Service}},
		{"operator", &auth.Identity{Name: "alice", Role: auth.Operator}},
		{"smartserver", &auth.Identity{Name: "IC-0001", Role: auth.SmartServer}},
	} {
		b.Run(tt.name, func(b *testing.B) {
			cfg := bus.ServerConfig{StoreDir: b.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()}
			var opts []nats.Option
			var svc []nats.Option
			if tt.id != nil {
				a, _, err := auth.OpenAuthority(filepath.Join(b.TempDir(), "auth"))
				if err != nil {
					b.Fatal(err)
				}
				cfg.Configure = a.Configure
				user := func(id auth.Identity) []nats.Option {
					token, seed, err := a.Signer(id.Role).NewUser(id, time.Time{})
					if err != nil {
						b.Fatal(err)
					}
					o := []nats.Option{nats.UserJWTAndSeed(token, string(seed))}
					if id.Role != auth.Service {
						o = append(o, nats.CustomInboxPrefix(auth.InboxPrefix(id.Name)))
					}
					return o
				}
				opts, svc = user(*tt.id), user(auth.Identity{Name: "service", Role: auth.Service})
			}
			ns, err := bus.StartServer(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
			ctx := context.Background()
			admin, err := nats.Connect(ns.ClientURL(), svc...)
			if err != nil {
				b.Fatal(err)
			}
			defer admin.Close()
			ajs, _ := jetstream.New(admin)
			if err := bus.EnsureStreams(ctx, ajs); err != nil {
				b.Fatal(err)
			}
			nc, err := nats.Connect(ns.ClientURL(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			// A fleet's commands: a subject per SmartServer, more than the
			// server's cache of permission results holds (a SmartServer
			// has its own only).
			subjects := make([]string, 10_000)
			for i := range subjects {
				subjects[i] = fmt.Sprintf("lb.cmd.device.IC-%05d.activate_license", i)
				if tt.id != nil && tt.id.Role == auth.SmartServer {
					subjects[i] = "lb.cmd.device.IC-0001.activate_license"
				}
			}
			data := make([]byte, 600)
			i := 0
			for b.Loop() {
				if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subjects[i%len(subjects)], Data: data}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
