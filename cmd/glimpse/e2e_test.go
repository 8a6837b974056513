package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binary is the glimpse binary TestMain builds once.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "glimpse-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "glimpse")
	if runtime.GOOS == "windows" {
		binary += ".exe"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	out, err := exec.CommandContext(ctx, "go", "build", "-o", binary, ".").CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building glimpse: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const e2eRoot = "../../testdata/golden/e2e"

// e2eCase is one entry of a cases.json (see testdata/golden/e2e/README.md).
type e2eCase struct {
	ID       string   `json:"id"`
	Task     string   `json:"task"`
	Image    string   `json:"image"`
	Prompt   *string  `json:"prompt"`
	Question string   `json:"question"`
	Texts    []string `json:"texts"`
	Options  struct {
		MaxNewTokens *int `json:"max_new_tokens"`
		NumBeams     *int `json:"num_beams"`
	} `json:"options"`
	Expected json.RawMessage `json:"expected"`

	folder string // model folder name, e.g. "blip-caption"
}

func loadCases(t *testing.T) []e2eCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(e2eRoot, "*", "cases.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases under %s: %v", e2eRoot, err)
	}
	var all []e2eCase
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var cs []e2eCase
		if err := json.Unmarshal(raw, &cs); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for i := range cs {
			cs[i].folder = filepath.Base(filepath.Dir(p))
		}
		all = append(all, cs...)
	}
	return all
}

// args is the command line of a case; target is "--model DIR" or
// "--addr A --model NAME".
func (c *e2eCase) args(target []string) []string {
	dir := filepath.Join(e2eRoot, c.folder)
	img := filepath.Join(dir, c.Image)
	a := []string{c.Task}
	a = append(a, target...)
	a = append(a, "--json")
	if c.Options.MaxNewTokens != nil {
		a = append(a, "--max-new-tokens", strconv.Itoa(*c.Options.MaxNewTokens))
	}
	if c.Options.NumBeams != nil {
		a = append(a, "--num-beams", strconv.Itoa(*c.Options.NumBeams))
	}
	switch c.Task {
	case "caption":
		if c.Prompt != nil {
			a = append(a, "--prompt", *c.Prompt)
		}
		a = append(a, img)
	case "ask":
		a = append(a, img, c.Question)
	case "match":
		a = append(a, img)
		a = append(a, c.Texts...)
	case "embed":
		a = append(a, "--image", img)
		for _, t := range c.Texts {
			a = append(a, "--text", t)
		}
	}
	return a
}

func runBinary(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running glimpse %q: %v", args, err)
	}
	return o.String(), e.String(), 0
}

type genResult struct {
	Text     *string `json:"text"`
	TokenIDs []int   `json:"token_ids"`
}

type score struct {
	Text           string   `json:"text"`
	ITMProbability *float64 `json:"itm_probability"`
	Cosine         *float64 `json:"cosine"`
	Logit          *float64 `json:"logit"`
}

type matchResult struct {
	Scores []score `json:"scores"`
}

type embedResult struct {
	Images [][]float64 `json:"images"`
	Texts  [][]float64 `json:"texts"`
}

// check compares a case's CLI output with HF's expected result: exact
// text and token ids; 1e-4 absolute on probabilities, cosines and
// embeddings; 1e-4 relative or 1e-3 absolute on logits.
func (c *e2eCase) check(t *testing.T, out string) {
	t.Helper()
	switch c.Task {
	case "caption", "ask":
		var got, want genResult
		mustJSON(t, out, &got)
		mustJSON(t, string(c.Expected), &want)
		if got.Text == nil || got.TokenIDs == nil {
			t.Fatalf("output lacks text or token_ids: %s", out)
		}
		if *got.Text != *want.Text {
			t.Errorf("text %q, want %q", *got.Text, *want.Text)
		}
		if fmt.Sprint(got.TokenIDs) != fmt.Sprint(want.TokenIDs) {
			t.Errorf("token_ids %v, want %v", got.TokenIDs, want.TokenIDs)
		}
	case "match":
		var got, want matchResult
		mustJSON(t, out, &got)
		mustJSON(t, string(c.Expected), &want)
		if len(got.Scores) != len(want.Scores) {
			t.Fatalf("%d scores, want %d: %s", len(got.Scores), len(want.Scores), out)
		}
		for i, w := range want.Scores {
			g := got.Scores[i]
			if g.Text != w.Text {
				t.Errorf("scores[%d].text %q, want %q", i, g.Text, w.Text)
			}
			near(t, fmt.Sprintf("scores[%d].itm_probability", i), g.ITMProbability, w.ITMProbability, 1e-4, 0)
			near(t, fmt.Sprintf("scores[%d].cosine", i), g.Cosine, w.Cosine, 1e-4, 0)
			near(t, fmt.Sprintf("scores[%d].logit", i), g.Logit, w.Logit, 1e-3, 1e-4)
		}
	case "embed":
		var got, want embedResult
		mustJSON(t, out, &got)
		mustJSON(t, string(c.Expected), &want)
		vecs := func(name string, g, w [][]float64) {
			if len(g) != len(w) {
				t.Fatalf("%s: %d vectors, want %d", name, len(g), len(w))
			}
			for i := range w {
				if len(g[i]) != len(w[i]) {
					t.Fatalf("%s[%d]: %d values, want %d", name, i, len(g[i]), len(w[i]))
				}
				worst := 0.0
				for j := range w[i] {
					worst = math.Max(worst, math.Abs(g[i][j]-w[i][j]))
				}
				if worst > 1e-4 {
					t.Errorf("%s[%d]: max |Δ| %.3g > 1e-4", name, i, worst)
				}
			}
		}
		vecs("images", got.Images, want.Images)
		vecs("texts", got.Texts, want.Texts)
	default:
		t.Fatalf("unknown task %q", c.Task)
	}
}

func near(t *testing.T, name string, got, want *float64, abs, rel float64) {
	t.Helper()
	switch {
	case want == nil && got == nil:
	case want == nil:
		// Extra fields are allowed.
	case got == nil:
		t.Errorf("%s missing (want %v)", name, *want)
	default:
		d := math.Abs(*got - *want)
		if d > abs && (rel == 0 || d > rel*math.Abs(*want)) {
			t.Errorf("%s = %v, want %v (|Δ| %.3g)", name, *got, *want, d)
		}
	}
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("bad JSON %q: %v", s, err)
	}
}

// TestE2ECases runs every case of testdata/golden/e2e through the real
// binary, in-process (--model DIR): the acceptance contract.
func TestE2ECases(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(c.folder+"/"+c.ID, func(t *testing.T) {
			out, errOut, code := runBinary(t, c.args([]string{"--model", filepath.Join(e2eRoot, c.folder)})...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			c.check(t, out)
			if c.Task == "caption" || c.Task == "ask" {
				// The streamed Generate gives the same result.
				out, errOut, code := runBinary(t, c.generateArgs([]string{"--model", filepath.Join(e2eRoot, c.folder)})...)
				if code != 0 {
					t.Fatalf("generate: exit %d: %s", code, errOut)
				}
				c.check(t, out)
			}
		})
	}
}

// generateArgs is the `glimpse generate --json` command line of a caption
// or ask case.
func (c *e2eCase) generateArgs(target []string) []string {
	dir := filepath.Join(e2eRoot, c.folder)
	a := append([]string{"generate"}, target...)
	a = append(a, "--json")
	if c.Options.MaxNewTokens != nil {
		a = append(a, "--max-new-tokens", strconv.Itoa(*c.Options.MaxNewTokens))
	}
	if c.Options.NumBeams != nil {
		a = append(a, "--num-beams", strconv.Itoa(*c.Options.NumBeams))
	}
	a = append(a, filepath.Join(dir, c.Image))
	switch {
	case c.Task == "ask":
		a = append(a, "--task", "answer", "--", c.Question)
	case c.Prompt != nil:
		a = append(a, "--task", "caption", "--", *c.Prompt)
	}
	return a
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// startServe starts `glimpse serve` with args and waits until it is ready.
func startServe(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if !sent && strings.Contains(sc.Text(), "glimpse: ready on") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("glimpse serve exited before it was ready:\n%s", log.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("glimpse serve not ready after a minute:\n%s", log.String())
	}
	return cmd, &log
}

// TestGRPCEqualsInProcess: every case over a real server on loopback gives
// byte-identical output to the in-process run; SIGTERM then exits 0.
func TestGRPCEqualsInProcess(t *testing.T) {
	cases := loadCases(t)
	addr := freeAddr(t)
	args := []string{"--addr", addr}
	seen := map[string]bool{}
	for _, c := range cases {
		if !seen[c.folder] {
			seen[c.folder] = true
			args = append(args, "--model", c.folder+"="+filepath.Join(e2eRoot, c.folder))
		}
	}
	cmd, log := startServe(t, args...)
	for _, c := range cases {
		t.Run(c.folder+"/"+c.ID, func(t *testing.T) {
			local, errOut, code := runBinary(t, c.args([]string{"--model", filepath.Join(e2eRoot, c.folder)})...)
			if code != 0 {
				t.Fatalf("in-process exit %d: %s", code, errOut)
			}
			remote, errOut, code := runBinary(t, c.args([]string{"--addr", addr, "--model", c.folder})...)
			if code != 0 {
				t.Fatalf("over gRPC exit %d: %s", code, errOut)
			}
			if local != remote {
				t.Errorf("over gRPC:\n%s\nin-process:\n%s", remote, local)
			}
		})
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
}
