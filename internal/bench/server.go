package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/licensebus/licensebus/internal/bus"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// NATS is the server a run measures on.
type NATS struct {
	URL          string        `json:"url"`
	Version      string        `json:"version"`
	SyncInterval time.Duration `json:"sync_interval"`
	// PID is the server's process when it has one of its own, else 0.
	PID  int    `json:"-"`
	Stop func() `json:"-"`
	// CPUProfile starts a CPU profile of the server's own process into the
	// file at path, or stops it for path ""; nil when the server runs in
	// this process (whose profile then covers it).
	CPUProfile func(path string) error `json:"-"`
	// HeapProfile writes a heap profile of the server's own process, after
	// a collection, into the file at path; nil when the server runs in
	// this process.
	HeapProfile func(path string) error `json:"-"`
	// GC reads the collector's figures of the server's own process; nil
	// when the server runs in this process (ReadGCStats covers it).
	GC func() (GCStats, error) `json:"-"`
	// Creds and OperatorCreds are the creds files of the service and of an
	// operator when the server runs in operator mode; empty without auth.
	Creds         string `json:"creds,omitempty"`
	OperatorCreds string `json:"operator_creds,omitempty"`
}

// ServerFunc starts the NATS server of a run, storing under dir; with auth
// in operator mode, as serve runs its embedded server by default.
type ServerFunc func(ctx context.Context, dir string, auth bool) (*NATS, error)

// InProcess runs the embedded server in this process, as `serve` without
// --nats does: the memory figures then cover server and product together.
func InProcess(_ context.Context, dir string, auth bool) (*NATS, error) {
	cfg := bus.ServerConfig{StoreDir: dir, Listen: "127.0.0.1:-1", Logger: zerolog.Nop()}
	var creds, operator string
	if auth {
		var err error
		if creds, operator, err = secure(dir, &cfg); err != nil {
			return nil, err
		}
	}
	ns, err := bus.StartServer(cfg)
	if err != nil {
		return nil, err
	}
	n := &NATS{URL: ns.ClientURL(), Version: server.VERSION, Creds: creds, OperatorCreds: operator, Stop: func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}}
	if jc := ns.JetStreamConfig(); jc != nil {
		n.SyncInterval = jc.SyncInterval
	}
	return n, nil
}

// OpenFlag is what ChildProcess appends to argv for a server without auth.
const OpenFlag = "--serve-nats-open"

// ChildProcess runs the embedded server in a process of its own — argv
// with the store directory appended (and OpenFlag without auth), a program
// that calls ServeChild — so
// that the product's memory is told apart from JetStream's, as when
// licensebus joins a NATS cluster with --nats.
func ChildProcess(argv []string, env []string) ServerFunc {
	return func(ctx context.Context, dir string, auth bool) (*NATS, error) {
		args := append(append([]string{}, argv[1:]...), dir)
		if !auth {
			args = append(args, OpenFlag)
		}
		cmd := exec.Command(argv[0], args...)
		cmd.Env = env
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start NATS server process: %w", err)
		}
		stop := func() {
			stdin.Close() // the child stops when its stdin closes
			if ctx.Err() != nil {
				// The run was interrupted: its store is thrown away, so
				// the server's orderly shutdown (seconds of writing its
				// index for a large store) is time the user waits for
				// nothing.
				_ = cmd.Process.Kill()
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		}
		// The first line describes the server; each later one answers a
		// "gcstats" line.
		line, replies := make(chan []byte, 1), make(chan []byte, 1)
		go func() {
			sc := bufio.NewScanner(stdout)
			if sc.Scan() {
				line <- bytes.Clone(sc.Bytes())
			}
			close(line)
			for sc.Scan() {
				select {
				case replies <- bytes.Clone(sc.Bytes()):
				default: // nobody asked: dropped
				}
			}
			_, _ = io.Copy(io.Discard, stdout)
		}()
		var n NATS
		select {
		case b, ok := <-line:
			if !ok {
				stop()
				return nil, errors.New("NATS server process exited before it was ready")
			}
			if err := json.Unmarshal(b, &n); err != nil {
				stop()
				return nil, fmt.Errorf("NATS server process: %w in %q", err, b)
			}
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		}
		n.PID, n.Stop = cmd.Process.Pid, stop
		n.HeapProfile = func(path string) error {
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			// The child handles its lines in order and writes the profile
			// before it reads the next: the file is complete at the latest
			// when the process has stopped.
			_, err = io.WriteString(stdin, "heapprofile "+abs+"\n")
			return err
		}
		var gcmu sync.Mutex // one question at a time, so each gets its answer
		n.GC = func() (GCStats, error) {
			gcmu.Lock()
			defer gcmu.Unlock()
			var g GCStats
			if _, err := io.WriteString(stdin, "gcstats\n"); err != nil {
				return g, err
			}
			select {
			case b := <-replies:
				return g, json.Unmarshal(b, &g)
			case <-time.After(5 * time.Second):
				return g, errors.New("NATS server process did not say its GC figures")
			}
		}
		n.CPUProfile = func(path string) error {
			line := "cpuprofile stop\n"
			if path != "" {
				abs, err := filepath.Abs(path)
				if err != nil {
					return err
				}
				line = "cpuprofile start " + abs + "\n"
			}
			_, err := io.WriteString(stdin, line)
			return err
		}
		return &n, nil
	}
}

// ServeChild is the server process of ChildProcess: it runs the embedded
// server storing under dir, writes one JSON line describing it to stdout,
// and serves until stdin reaches its end (the parent closed it, or died).
// Lines on stdin start and stop a CPU profile of this process:
// "cpuprofile start PATH" and "cpuprofile stop"; "heapprofile PATH"
// writes a heap profile; "gcstats" is answered with a line of GCStats.
func ServeChild(ctx context.Context, dir string, auth bool, stdin io.Reader, stdout io.Writer) error {
	n, err := InProcess(ctx, dir, auth)
	if err != nil {
		return err
	}
	defer n.Stop()
	if err := json.NewEncoder(stdout).Encode(n); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { serveControl(stdin, stdout); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// serveControl carries out the parent's lines until stdin ends, then stops
// a profile still running so that its file is complete.
func serveControl(stdin io.Reader, stdout io.Writer) {
	var prof *os.File
	stopProfile := func() {
		if prof != nil {
			pprof.StopCPUProfile()
			_ = prof.Close()
			prof = nil
		}
	}
	defer stopProfile()
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "cpuprofile start "):
			stopProfile()
			f, err := os.Create(strings.TrimPrefix(line, "cpuprofile start "))
			if err != nil {
				fmt.Fprintf(os.Stderr, "bench NATS server: cpu profile: %v\n", err)
				continue
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintf(os.Stderr, "bench NATS server: cpu profile: %v\n", err)
				_ = f.Close()
				continue
			}
			prof = f
		case line == "cpuprofile stop":
			stopProfile()
		case line == "gcstats":
			_ = json.NewEncoder(stdout).Encode(ReadGCStats())
		case strings.HasPrefix(line, "heapprofile "):
			if err := writeHeapProfile(strings.TrimPrefix(line, "heapprofile ")); err != nil {
				fmt.Fprintf(os.Stderr, "bench NATS server: heap profile: %v\n", err)
			}
		}
	}
}

// writeHeapProfile writes this process's heap, as the last collection
// left it, to a new file at path.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
