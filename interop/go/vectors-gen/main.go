// Command vectors-gen writes the Go-generated parts of spec/vectors as JSON on standard output:
// the net/rpc sessions of rpc-go-sessions.json and the go:net/rpc tests of streams.json (tcId 12,
// 13, 14 and 20). Standard library only, no module:
//
//	GO111MODULE=off go run interop/go/vectors-gen/main.go > out.json
//
// codec/tests/go_vectors.rs runs it and checks that the stored vectors are still exactly what Go
// produces (UPDATE_VECTORS=1 rewrites them).
//
// Go's gob numbers the types it encodes in the order a process first uses them, so every session
// runs in a fresh process (this program started again with -session N): its ids do not depend on
// what the sessions before it encoded. Each session is a real net/rpc client and server (gob
// codec, Go's defaults) over two in-memory pipes; every Write call is recorded as one chunk, the
// unit the seed's muxer sends as one frame. Calls are made one after the other, so the bytes are
// the same on every run.
package main

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/rpc"
	"os"
	"os/exec"
	"strconv"
	"sync"
)

// LocalHooks is the plugin's hooks service as spec/05-rpc.md section 5.5 defines it.
type LocalHooks struct{}

// OnActivate accepts a positive odd API stream id and answers anything else with an error (RPC-14).
func (LocalHooks) OnActivate(id int64, _ *struct{}) error {
	if id <= 0 || id%2 == 0 {
		return fmt.Errorf("OnActivate: %d is not a positive odd stream id", id)
	}
	return nil
}

// OnDeactivate succeeds.
func (LocalHooks) OnDeactivate(_ struct{}, _ *struct{}) error { return nil }

// LocalAPI is the host's API service.
type LocalAPI struct{}

// Configuration is what LoadPluginConfiguration answers with: a JSON text, served byte for byte
// (RPC-18).
const Configuration = `{"z": 1, "a": "<b>&amp;</b>"}`

// LoadPluginConfiguration answers with Configuration.
func (LocalAPI) LoadPluginConfiguration(_ struct{}, reply *[]byte) error {
	*reply = []byte(Configuration)
	return nil
}

// Call is one call of a session and how it ended.
type Call struct {
	Method string `json:"method"`
	Args   string `json:"args"`
	Result string `json:"result"`
}

// Session is one recorded net/rpc session.
type Session struct {
	Description    string   `json:"description"`
	Service        string   `json:"service"`
	Calls          []Call   `json:"calls"`
	ClientToServer []string `json:"client_to_server_writes_hex"`
	ServerToClient []string `json:"server_to_client_writes_hex"`
}

// chunks records every Write call made through it.
type chunks struct {
	mu     sync.Mutex
	to     io.Writer
	writes [][]byte
}

func (c *chunks) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, append([]byte(nil), p...))
	c.mu.Unlock()
	return c.to.Write(p)
}

func (c *chunks) hex() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, len(c.writes))
	for i, w := range c.writes {
		out[i] = hex.EncodeToString(w)
	}
	return out
}

// conn is one end of the pair of pipes.
type conn struct {
	io.Reader
	io.Writer
	closers []io.Closer
}

func (c *conn) Close() error {
	for _, x := range c.closers {
		x.Close()
	}
	return nil
}

// call is one call to make: its method and its argument (an int64 or struct{}{}).
type call struct {
	method string
	arg    interface{}
}

func argText(a interface{}) string {
	if n, ok := a.(int64); ok {
		return "int64 " + strconv.FormatInt(n, 10)
	}
	return "struct{}{}"
}

func record(description, service string, receiver interface{}, calls []call) Session {
	toServerR, toServerW := io.Pipe()
	toClientR, toClientW := io.Pipe()
	fromClient := &chunks{to: toServerW}
	fromServer := &chunks{to: toClientW}
	server := rpc.NewServer()
	if err := server.RegisterName(service, receiver); err != nil {
		panic(err)
	}
	served := make(chan struct{})
	go func() {
		server.ServeConn(&conn{toServerR, fromServer, []io.Closer{toServerR, toClientW}})
		close(served)
	}()
	client := rpc.NewClient(&conn{toClientR, fromClient, []io.Closer{toClientR, toServerW}})
	s := Session{Description: description, Service: service}
	for _, c := range calls {
		var err error
		result := "ok"
		if c.method == "LocalAPI.LoadPluginConfiguration" {
			var reply []byte
			err = client.Call(c.method, c.arg, &reply)
			result = "ok: " + string(reply)
		} else {
			var reply struct{}
			err = client.Call(c.method, c.arg, &reply)
		}
		if err != nil {
			result = "error: " + err.Error()
		}
		s.Calls = append(s.Calls, Call{c.method, argText(c.arg), result})
	}
	client.Close()
	<-served
	s.ClientToServer = fromClient.hex()
	s.ServerToClient = fromServer.hex()
	return s
}

// The sessions, each recorded in a process of its own.
var sessions = []func() Session{
	func() Session {
		return record("net/rpc gob: the host (client) calls the plugin's hooks (server): an activation with API stream 1, the deactivation, an activation with an id that is not positive and odd (an error response, RPC-14), an unknown method", "LocalHooks", LocalHooks{}, []call{
			{"LocalHooks.OnActivate", int64(1)},
			{"LocalHooks.OnDeactivate", struct{}{}},
			{"LocalHooks.OnActivate", int64(-7)},
			{"LocalHooks.NoSuchMethod", struct{}{}},
		})
	},
	func() Session {
		return record("net/rpc gob: the plugin (client) calls the host's API (server) twice: the second call carries no type definitions", "LocalAPI", LocalAPI{}, []call{
			{"LocalAPI.LoadPluginConfiguration", struct{}{}},
			{"LocalAPI.LoadPluginConfiguration", struct{}{}},
		})
	},
	func() Session {
		return record("net/rpc gob: the host (client) calls the plugin's hooks (server), first with struct{} arguments: Go then numbers struct{} 66 and Response 67, the other order of the first session (GOB-6: a receiver takes ids from the definitions)", "LocalHooks", LocalHooks{}, []call{
			{"LocalHooks.OnDeactivate", struct{}{}},
			{"LocalHooks.OnActivate", int64(3)},
		})
	},
}

// Frame is a frame of a streams.json test.
type Frame struct {
	StreamID   string `json:"stream_id"`
	PayloadHex string `json:"payload_hex"`
}

// StreamTest is a go:net/rpc test of streams.json.
type StreamTest struct {
	TcID         int      `json:"tcId"`
	Comment      string   `json:"comment"`
	Result       string   `json:"result"`
	Requirements []string `json:"requirements"`
	Source       string   `json:"source"`
	Hex          string   `json:"hex"`
	Frames       []Frame  `json:"frames"`
	Error        string   `json:"error,omitempty"`
}

// direction builds one direction of a connection as the seed's muxer sends it: each payload as
// one frame, its header two binary.PutVarint values (the stream id, the length).
type direction struct {
	bytes  []byte
	frames []Frame
}

func (d *direction) frame(stream int64, payload []byte) {
	var b [binary.MaxVarintLen64]byte
	d.bytes = append(d.bytes, b[:binary.PutVarint(b[:], stream)]...)
	d.bytes = append(d.bytes, b[:binary.PutVarint(b[:], int64(len(payload)))]...)
	d.bytes = append(d.bytes, payload...)
	d.frames = append(d.frames, Frame{strconv.FormatInt(stream, 10), hex.EncodeToString(payload)})
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// streamTests lays the first calls of the hooks session (0) and the API session (1) out as a
// conforming session does (spec 04, 05 section 5.5): the plugin announces hooks stream 2; the host
// opens API stream 1 and calls OnActivate(1) on stream 2; the plugin calls LoadPluginConfiguration
// on stream 1 and the host answers; the plugin answers OnActivate; the host calls OnDeactivate;
// the plugin closes the API stream and answers (RPC-15); the host closes stream 1 too (STREAM-11).
// Neither closes the hooks stream; the host then ends the connection, which is the end of both
// inputs.
func streamTests(hooks, api Session) []StreamTest {
	announcement := []byte{0x00, 0x04}
	var toHost, toPlugin direction
	toHost.frame(0, announcement)
	toPlugin.frame(2, unhex(hooks.ClientToServer[0]))
	toHost.frame(1, unhex(api.ClientToServer[0]))
	toPlugin.frame(1, unhex(api.ServerToClient[0]))
	toHost.frame(2, unhex(hooks.ServerToClient[0]))
	toPlugin.frame(2, unhex(hooks.ClientToServer[1]))
	toHost.frame(1, nil)
	toHost.frame(2, unhex(hooks.ServerToClient[1]))
	toPlugin.frame(1, nil)

	first := unhex(hooks.ClientToServer[0])
	var split direction
	split.frame(2, first[:len(first)/2])
	split.frame(2, first[len(first)/2:])
	split.frame(2, nil)

	var cut direction
	cut.frame(0, announcement)
	cut.frame(2, unhex(hooks.ServerToClient[0]))
	next := unhex(hooks.ServerToClient[1])
	var whole direction
	whole.frame(2, next)
	truncated := append(append([]byte(nil), cut.bytes...), whole.bytes[:len(whole.bytes)-len(next)/2]...)

	return []StreamTest{
		{12, "plugin-to-host direction of a conforming session: the announcement of hooks stream 2, then net/rpc (gob) bytes exactly as Go wrote them, one frame per Write: the LoadPluginConfiguration call on API stream 1, the answer to OnActivate(1) on stream 2, the close of stream 1, the answer to OnDeactivate", "valid", []string{"FRAME-1", "FRAME-2", "HS-1", "STREAM-8"}, "go:net/rpc", hex.EncodeToString(toHost.bytes), toHost.frames, ""},
		{13, "host-to-plugin direction of the same session: OnActivate(1) on hooks stream 2, the answer to LoadPluginConfiguration on API stream 1, OnDeactivate on stream 2, the close of stream 1", "valid", []string{"FRAME-1", "FRAME-2", "STREAM-8"}, "go:net/rpc", hex.EncodeToString(toPlugin.bytes), toPlugin.frames, ""},
		{14, "one net/rpc write split over two frames, then the close of the stream: streams are byte streams, the frame boundaries carry no meaning", "valid", []string{"FRAME-1", "FRAME-2"}, "go:net/rpc", hex.EncodeToString(split.bytes), split.frames, ""},
		{20, "the announcement and a net/rpc reply, then the output ends inside the next reply", "invalid", []string{"FRAME-13", "FRAME-14", "HS-1"}, "go:net/rpc", hex.EncodeToString(truncated), cut.frames, "truncated"},
	}
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "-session" {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 0 || n >= len(sessions) {
			fmt.Fprintln(os.Stderr, "vectors-gen: no session", os.Args[2])
			os.Exit(2)
		}
		if err := json.NewEncoder(os.Stdout).Encode(sessions[n]()); err != nil {
			panic(err)
		}
		return
	}
	var all []Session
	for n := range sessions {
		out, err := exec.Command(os.Args[0], "-session", strconv.Itoa(n)).Output()
		if err != nil {
			fmt.Fprintln(os.Stderr, "vectors-gen: session", n, err)
			os.Exit(1)
		}
		var s Session
		if err := json.Unmarshal(out, &s); err != nil {
			panic(errors.New("session " + strconv.Itoa(n) + ": " + err.Error()))
		}
		all = append(all, s)
	}
	out := map[string]interface{}{
		"netrpc_sessions": all,
		"stream_tests":    streamTests(all[0], all[1]),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
