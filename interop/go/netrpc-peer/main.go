// Command netrpc-peer is a real Go net/rpc endpoint (default gob codec, standard library only)
// that speaks protocol 1's RPC methods over its stdin (reads) and stdout (writes), so that the
// Rust codec can be tested against Go itself (codec/tests/go_interop.rs). Logs go to stderr.
//
//	netrpc-peer serve --config FILE
//	    Serves LocalHooks and LocalAPI on one connection until EOF on stdin, then exits 0
//	    (2 if the connection ended on anything but a clean EOF, e.g. bytes gob rejected).
//	    OnActivate(n) succeeds when n is odd and positive, else fails with errorText(n);
//	    OnDeactivate succeeds; LoadPluginConfiguration returns the bytes of FILE, read anew on
//	    every call.
//
//	netrpc-peer call --script FILE --results FILE [--max-in-flight N]
//	    Issues the calls of the script (JSON lines) from one goroutine, so that call i of the
//	    expanded script gets Seq i, with at most N calls in flight (replies may come back in any
//	    order), then writes one JSON line per call to the results file, in script order.
//	    Exits 0 when every call completed (with or without an RPC error), 1 on a transport
//	    failure, 2 on bad usage or input.
//
// Build without a module: GO111MODULE=off go build -o netrpc-peer main.go
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"log"
	"net/rpc"
	"os"
	"sync"
)

// errorText is the (deliberately non-ASCII) error of a refused OnActivate; the Rust side
// predicts it byte for byte.
func errorText(n int64) string {
	return fmt.Sprintf("ungültige API-Stream-ID %d — 拒否 ✗", n)
}

// LocalHooks is the plugin's service.
type LocalHooks struct{}

// OnActivate accepts odd positive stream ids only.
func (LocalHooks) OnActivate(args int64, reply *struct{}) error {
	if args > 0 && args%2 == 1 {
		return nil
	}
	return errors.New(errorText(args))
}

// OnDeactivate always succeeds.
func (LocalHooks) OnDeactivate(args struct{}, reply *struct{}) error { return nil }

// LocalAPI is the host's service.
type LocalAPI struct{ config string }

// LoadPluginConfiguration returns the config file's bytes as they are at the time of the call.
func (a *LocalAPI) LoadPluginConfiguration(args struct{}, reply *[]byte) error {
	b, err := os.ReadFile(a.config)
	if err != nil {
		return err
	}
	*reply = b
	return nil
}

// stdio is the connection: stdin for reading, stdout for writing. It remembers whether reading
// ended on a clean EOF.
type stdio struct {
	mu     sync.Mutex
	sawEOF bool
}

func (s *stdio) Read(p []byte) (int, error) {
	n, err := os.Stdin.Read(p)
	if err == io.EOF {
		s.mu.Lock()
		s.sawEOF = true
		s.mu.Unlock()
	}
	return n, err
}

func (s *stdio) Write(p []byte) (int, error) { return os.Stdout.Write(p) }

func (s *stdio) Close() error {
	os.Stdin.Close()
	return os.Stdout.Close()
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	config := fs.String("config", "", "file whose bytes LoadPluginConfiguration returns")
	fs.Parse(args)
	if *config == "" {
		log.Fatal("serve: --config is required")
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("LocalHooks", LocalHooks{}); err != nil {
		log.Fatal(err)
	}
	if err := srv.RegisterName("LocalAPI", &LocalAPI{config: *config}); err != nil {
		log.Fatal(err)
	}
	conn := &stdio{}
	srv.ServeConn(conn) // returns after the last in-flight call has been answered
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if !conn.sawEOF {
		log.Print("serve: the connection ended without EOF on stdin (see the rpc: line above)")
		os.Exit(2)
	}
}

// scriptLine is one line of a call script. Int, when present, is the int64 argument (else the
// argument is struct{}{}); with Repeat > 1 the line stands for Repeat calls whose arguments
// are Int, Int+Step, Int+2*Step, ... (wrapping like int64).
type scriptLine struct {
	Method string `json:"method"`
	Int    *int64 `json:"int"`
	Step   int64  `json:"step"`
	Repeat int    `json:"repeat"`
}

// result is one line of the results file. ReplyFNV is the FNV-1a 64 hash of the reply bytes
// (of the []byte reply of LoadPluginConfiguration; empty for the struct{} replies).
type result struct {
	I        int    `json:"i"`
	Method   string `json:"method"`
	Int      *int64 `json:"int,omitempty"`
	OK       bool   `json:"ok"`
	Error    string `json:"error"`
	ReplyLen int    `json:"reply_len"`
	ReplyFNV string `json:"reply_fnv1a64"`
}

type call struct {
	method string
	arg    *int64
}

func readScript(path string) []call {
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	var calls []call
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var l scriptLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			log.Printf("call: bad script line %q: %v", sc.Text(), err)
			os.Exit(2)
		}
		n := l.Repeat
		if n < 1 {
			n = 1
		}
		for k := 0; k < n; k++ {
			c := call{method: l.Method}
			if l.Int != nil {
				v := *l.Int + int64(k)*l.Step
				c.arg = &v
			}
			calls = append(calls, c)
		}
	}
	if err := sc.Err(); err != nil {
		log.Fatal(err)
	}
	return calls
}

func callMode(args []string) {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	script := fs.String("script", "", "JSON-lines call script")
	results := fs.String("results", "", "where to write the JSON-lines results")
	maxInFlight := fs.Int("max-in-flight", 256, "most calls outstanding at once")
	fs.Parse(args)
	if *script == "" || *results == "" || *maxInFlight < 1 {
		log.Print("call: --script and --results are required")
		os.Exit(2)
	}
	calls := readScript(*script)
	client := rpc.NewClient(&stdio{})
	out := make([]result, len(calls))
	var transportFailure error
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, *maxInFlight)
	for i, c := range calls {
		var arg interface{} = struct{}{}
		if c.arg != nil {
			arg = *c.arg
		}
		// The reply type follows the method: []byte for LoadPluginConfiguration, else struct{}.
		var reply interface{} = new(struct{})
		bytes := new([]byte)
		if c.method == "LocalAPI.LoadPluginConfiguration" {
			reply = bytes
		}
		sem <- struct{}{}
		wg.Add(1)
		// Calls are issued from this goroutine only, so call i gets Seq i.
		pending := client.Go(c.method, arg, reply, make(chan *rpc.Call, 1))
		go func(i int, c call) {
			defer wg.Done()
			done := <-pending.Done
			<-sem
			h := fnv.New64a()
			h.Write(*bytes)
			r := result{I: i, Method: c.method, Int: c.arg, OK: done.Error == nil,
				ReplyLen: len(*bytes), ReplyFNV: fmt.Sprintf("%016x", h.Sum64())}
			if done.Error != nil {
				r.Error = done.Error.Error()
				if _, isServerError := done.Error.(rpc.ServerError); !isServerError {
					mu.Lock()
					if transportFailure == nil {
						transportFailure = done.Error
					}
					mu.Unlock()
				}
			}
			out[i] = r
		}(i, c)
	}
	wg.Wait()
	f, err := os.Create(*results)
	if err != nil {
		log.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range out {
		if err := enc.Encode(r); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
	client.Close()
	if transportFailure != nil {
		log.Printf("call: transport failure: %v", transportFailure)
		os.Exit(1)
	}
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("netrpc-peer: ")
	if len(os.Args) < 2 {
		log.Print("usage: netrpc-peer serve --config FILE | call --script FILE --results FILE")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "call":
		callMode(os.Args[2:])
	default:
		log.Printf("unknown mode %q", os.Args[1])
		os.Exit(2)
	}
}
