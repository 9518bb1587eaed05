package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/licensebus/licensebus/internal/auth"
	"github.com/nats-io/nats-server/v2/server"
)

// proc is a process the failover and crash-loop benches start and kill:
// a NATS server of a cluster, or a licensebus node.
type proc struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{}
	// out, if set before run, receives the lines the process writes to
	// stdout after its ready line (one it has no room for is dropped); it
	// is closed when stdout ends.
	out chan []byte
}

// startProc starts argv with env; its stderr goes to logw.
func startProc(name string, argv, env []string, logw io.Writer) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stderr = logw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	return p, nil
}

// run starts the process and, if ready is set, waits for the JSON line it
// writes on stdout when it is ready, decoded into ready.
func (p *proc) run(ctx context.Context, ready any) error {
	var out *os.File
	if ready != nil {
		// A pipe of our own rather than StdoutPipe, which Wait closes as
		// the process exits: a last line written just before exiting
		// would be lost.
		r, w, err := os.Pipe()
		if err != nil {
			return err
		}
		defer w.Close() // the child has its copy
		p.cmd.Stdout, out = w, r
	}
	if err := p.cmd.Start(); err != nil {
		if out != nil {
			out.Close()
		}
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	if ready == nil {
		return nil
	}
	line := make(chan []byte, 1)
	go func() {
		defer out.Close()
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- append([]byte(nil), sc.Bytes()...)
		}
		close(line)
		if p.out == nil {
			_, _ = io.Copy(io.Discard, out)
			return
		}
		for sc.Scan() {
			select {
			case p.out <- append([]byte(nil), sc.Bytes()...):
			default:
			}
		}
		close(p.out)
	}()
	select {
	case b, ok := <-line:
		if !ok {
			return fmt.Errorf("%s exited before it was ready", p.name)
		}
		return json.Unmarshal(b, ready)
	case <-ctx.Done():
		p.kill()
		return ctx.Err()
	}
}

// kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// stop ends the process cleanly: SIGTERM (and its stdin closed), then
// SIGKILL after 30 seconds.
func (p *proc) stop() {
	if p.cmd.Process == nil {
		return
	}
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.kill()
	}
}

// childEnv is the environment of a child: this one's, without NATS_URL
// (an explicit flag names the NATS) and without GOGC and GOMEMLIMIT, plus
// extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_URL=") && !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// freePort is a loopback port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ClusterNode is one server of the failover bench's NATS cluster, as its
// process is told to run it.
type ClusterNode struct {
	Name        string   `json:"name"`
	Dir         string   `json:"dir"`
	Port        int      `json:"port"`
	ClusterPort int      `json:"cluster_port"`
	Routes      []string `json:"routes"`
	// Auth is the directory of the operator's and accounts' keys the
	// server trusts (operator mode, as serve's embedded server runs); ""
	// for a server without auth.
	Auth string `json:"auth,omitempty"`
}

// ServeClusterNode runs one server of a JetStream cluster — the process of
// a cluster node the failover bench starts (this program again, with a
// hidden flag) — writes one JSON line when it takes connections, and
// serves until stdin reaches its end, ctx ends or it is killed.
func ServeClusterNode(ctx context.Context, spec ClusterNode, stdin io.Reader, stdout io.Writer) error {
	opts := &server.Options{
		ServerName:   spec.Name,
		Host:         "127.0.0.1",
		Port:         spec.Port,
		JetStream:    true,
		StoreDir:     spec.Dir,
		NoSigs:       true,
		NoLog:        true,
		SyncInterval: time.Second,
		MaxPayload:   8 << 20,
		Cluster:      server.ClusterOpts{Name: "licensebus-bench", Host: "127.0.0.1", Port: spec.ClusterPort},
		Routes:       server.RoutesFromStr(strings.Join(spec.Routes, ",")),
	}
	if spec.Auth != "" {
		a, created, err := auth.OpenAuthority(spec.Auth)
		if err != nil {
			return err
		}
		if created {
			return fmt.Errorf("no keys in %s: the bench creates them before it starts a server", spec.Auth)
		}
		a.Configure(opts)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return err
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(30 * time.Second) {
		return errors.New("cluster node not ready after 30s")
	}
	if err := json.NewEncoder(stdout).Encode(map[string]string{"name": spec.Name, "url": ns.ClientURL()}); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, stdin); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}
