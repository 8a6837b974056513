package eval

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"github.com/glimpse-vlm/glimpse/client"
	_ "github.com/glimpse-vlm/glimpse/fusion/families" // every model family, for in-process runs
	"github.com/glimpse-vlm/glimpse/internal/defaultmodels"
	"github.com/glimpse-vlm/glimpse/server"
)

// Exit codes of Main.
const (
	ExitOK     = 0 // every run passed
	ExitFailed = 1 // a run failed or errored, or the server could not be reached
	ExitUsage  = 2 // bad flags or an invalid suite
)

// Usage is the help of `glimpse eval`.
const Usage = `Usage: glimpse eval [flags] SUITE.yaml

Runs a suite of image + prompt test cases (YAML; see examples/README.md)
and checks the model's answers against the cases' assertions. Runs go
concurrently; progress goes to stderr, a table (case, verdict, time,
output) to stdout. Exit codes: 0 every run passed, 1 a run failed or
errored, 2 bad usage or an invalid suite.

Where it runs:
  --addr HOST:PORT     a Glimpse server (default: the suite's defaults.addr;
                       without one, a server started in-process on the suite's
                       defaults.models, or the built-in default models)
  --in-process         run in-process even if the suite names an address
  --model NAME=DIR     serve this checkpoint folder in-process (repeatable;
                       replaces the suite's defaults.models)

Flags:
  --parallel N         runs at once (default: defaults.parallel, else min(4, CPUs))
  --tag TAG            only cases with this tag (repeatable or comma-separated)
  --id GLOB            only cases or runs whose id matches (e.g. 'caption-*';
                       repeatable or comma-separated)
  --json FILE          write the results as JSON (input of --compare)
  --junit FILE         write the results as JUnit XML
  --compare OLD.json   show what changed since an earlier --json report
                       (new failures, fixes, changed outputs)
  --timeout D          give up on the whole suite after D (e.g. 10m)
  --list               list the runs the suite expands to, without running
  --quiet              no progress on stderr

Examples:
  glimpse eval examples/suite.yaml
  glimpse eval --addr 127.0.0.1:50051 --tag smoke --junit report.xml examples/suite.yaml
  glimpse eval --json new.json --compare old.json examples/suite.yaml
`

type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

type options struct {
	addr, jsonOut, junitOut, compare string
	inProcess, list, quiet           bool
	parallel                         int
	timeout                          time.Duration
	tags, ids                        listFlag
	models                           []server.ModelSpec
}

type modelsFlag struct{ o *options }

func (m modelsFlag) String() string { return "" }
func (m modelsFlag) Set(v string) error {
	spec, err := server.ParseModelSpec(v)
	if err != nil {
		return err
	}
	m.o.models = append(m.o.models, spec)
	return nil
}

// parseArgs parses flags placed before or after the suite path.
func parseArgs(args []string) (*options, string, error) {
	o := &options{}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", "", "")
	fs.BoolVar(&o.inProcess, "in-process", false, "")
	fs.Var(modelsFlag{o}, "model", "")
	fs.IntVar(&o.parallel, "parallel", 0, "")
	fs.Var(&o.tags, "tag", "")
	fs.Var(&o.ids, "id", "")
	fs.StringVar(&o.jsonOut, "json", "", "")
	fs.StringVar(&o.junitOut, "junit", "", "")
	fs.StringVar(&o.compare, "compare", "", "")
	fs.DurationVar(&o.timeout, "timeout", 0, "")
	fs.BoolVar(&o.list, "list", false, "")
	fs.BoolVar(&o.quiet, "quiet", false, "")
	var pos []string
	rest := args
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, "", err
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			pos = append(pos, rest[1:]...)
			break
		}
		pos = append(pos, rest[0])
		rest = rest[1:]
	}
	if len(pos) != 1 {
		return nil, "", fmt.Errorf("want one SUITE.yaml, got %d arguments %q", len(pos), pos)
	}
	if o.parallel < 0 {
		return nil, "", fmt.Errorf("--parallel must be at least 1")
	}
	if o.addr != "" && o.inProcess {
		return nil, "", fmt.Errorf("--addr and --in-process exclude each other")
	}
	if o.addr != "" && len(o.models) > 0 {
		return nil, "", fmt.Errorf("--model NAME=DIR loads folders in-process; it cannot be combined with --addr")
	}
	return o, pos[0], nil
}

// Main runs `glimpse eval` with args (without the command name) and
// returns the exit code: ExitOK, ExitFailed or ExitUsage.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, path, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, Usage)
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "glimpse eval: %v\nRun \"glimpse eval --help\" for usage.\n", err)
		return ExitUsage
	}
	suite, err := LoadSuite(path)
	if err != nil {
		fmt.Fprintf(stderr, "glimpse eval: invalid suite:\n%v\n", err)
		return ExitUsage
	}
	runs := suite.Expand(Filter{Tags: o.tags, IDs: o.ids})
	if len(runs) == 0 {
		fmt.Fprintf(stderr, "glimpse eval: no case of %s matches the filters (--tag %s --id %s)\n", path, o.tags.String(), o.ids.String())
		return ExitUsage
	}
	if o.list {
		for _, r := range runs {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", r.ID, r.Task, strings.Join(r.Images, ","))
		}
		return ExitOK
	}
	var old *Report
	if o.compare != "" {
		if old, err = ReadReport(o.compare); err != nil {
			fmt.Fprintf(stderr, "glimpse eval: --compare: %v\n", err)
			return ExitUsage
		}
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	par := o.parallel
	if par == 0 {
		par = suite.Defaults.Parallel
	}
	if par == 0 {
		par = min(4, runtime.NumCPU())
	}

	addr := o.addr
	if addr == "" && !o.inProcess && len(o.models) == 0 {
		addr = suite.Defaults.Addr
	}
	var cl *client.Client
	target := addr
	if addr != "" {
		cl, err = client.New(addr)
		if err != nil {
			fmt.Fprintf(stderr, "glimpse eval: %v\n", err)
			return ExitUsage
		}
		defer cl.Close()
		if _, err := cl.ListModels(ctx); err != nil {
			fmt.Fprintf(stderr, "glimpse eval: no Glimpse server at %s: %s\n  start one with `glimpse serve`, or drop --addr to run in-process\n", addr, describeError(err))
			return ExitFailed
		}
	} else {
		specs, err := inProcessModels(suite, o.models)
		if err != nil {
			fmt.Fprintf(stderr, "glimpse eval: %v\n", err)
			return ExitFailed
		}
		if !o.quiet {
			fmt.Fprintf(stderr, "loading %d model(s) in-process...\n", len(specs))
		}
		var stop func()
		cl, stop, err = StartInProcess(ctx, specs, suite.Defaults.Model, par)
		if err != nil {
			fmt.Fprintf(stderr, "glimpse eval: %v\n", err)
			return ExitFailed
		}
		defer stop()
		target = "in-process"
	}

	if err := checkModels(ctx, cl, suite, runs); err != nil {
		fmt.Fprintf(stderr, "glimpse eval: %v\n", err)
		return ExitUsage
	}
	rn := &Runner{Client: cl, Parallel: par, MatchModel: suite.Defaults.MatchModel}
	if !o.quiet {
		rn.Progress = func(done, total int, r *Result) {
			status := "ok"
			if r.Error != "" {
				status = "ERROR"
			} else if r.failed() > 0 {
				status = "FAIL"
			}
			fmt.Fprintf(stderr, "[%*d/%d] %-5s %s (%s)\n", len(fmt.Sprint(total)), done, total, status, r.ID, fmtMS(r.LatencyMS))
		}
	}
	rep := &Report{Suite: suite.Name, Path: path, Target: target, Started: time.Now().UTC()}
	start := time.Now()
	rep.Results = rn.Run(ctx, runs)
	rep.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	rep.Summarize()

	code := ExitOK
	if !rep.Summary.OK() {
		code = ExitFailed
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "glimpse eval: %v\n", err)
		code = ExitFailed
	}
	if old != nil {
		Compare(old, rep).Write(stdout, o.compare)
	}
	write := func(file string, fn func(io.Writer) error) {
		if file == "" {
			return
		}
		if err := writeFile(file, fn); err != nil {
			fmt.Fprintf(stderr, "glimpse eval: writing %s: %v\n", file, err)
			code = ExitFailed
		}
	}
	write(o.jsonOut, rep.WriteJSON)
	write(o.junitOut, rep.WriteJUnit)
	return code
}

// checkModels makes sure every model the runs name is served.
func checkModels(ctx context.Context, cl *client.Client, s *Suite, runs []*Run) error {
	resp, err := cl.ListModels(ctx)
	if err != nil {
		return fmt.Errorf("listing the server's models: %s", describeError(err))
	}
	served := map[string]bool{}
	var names []string
	for _, m := range resp.GetModels() {
		served[m.GetName()] = true
		names = append(names, m.GetName())
	}
	var missing []string
	need := func(m string) {
		if m != "" && !served[m] && !contains(missing, m) {
			missing = append(missing, m)
		}
	}
	need(s.Defaults.MatchModel)
	for _, r := range runs {
		need(r.Model)
		for _, a := range r.Assert {
			if a.MatchScore != nil {
				need(a.MatchScore.Model)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the suite uses model(s) %s that the server does not serve (it serves %s)",
			strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	return nil
}

func writeFile(path string, fn func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// inProcessModels are the folders to load: the command line's, else the
// suite's defaults.models, else the built-in default models.
func inProcessModels(s *Suite, flagModels []server.ModelSpec) ([]server.ModelSpec, error) {
	if len(flagModels) > 0 {
		return flagModels, nil
	}
	if len(s.Defaults.Models) > 0 {
		var out []server.ModelSpec
		for _, m := range s.Defaults.Models {
			out = append(out, server.ModelSpec{Name: m.Name, Dir: s.resolve(m.Dir)})
		}
		return out, nil
	}
	ms, err := defaultmodels.Extract("")
	if err != nil {
		return nil, err
	}
	out := make([]server.ModelSpec, len(ms))
	for i, m := range ms {
		out[i] = server.ModelSpec{Name: m.Name, Dir: m.Dir}
	}
	return out, nil
}

// StartInProcess loads the model folders into a Glimpse server running in
// this process, serving over an in-memory connection, and returns a client
// for it (the same server and SDK code as over the network) and a function
// that stops both. defaultModel may be empty (the first model). A folder
// that fails to load is an error.
func StartInProcess(ctx context.Context, specs []server.ModelSpec, defaultModel string, concurrent int) (*client.Client, func(), error) {
	if len(specs) == 0 {
		return nil, nil, errors.New("no models to load")
	}
	cfg := server.DefaultConfig()
	cfg.Models = specs
	cfg.Reflection = false
	cfg.MaxConcurrent = max(1, concurrent)
	found := defaultModel == ""
	for _, s := range specs {
		found = found || s.Name == defaultModel
	}
	if found {
		cfg.DefaultModel = defaultModel
	}
	srv, err := server.New(cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := srv.Load(ctx, nil); err != nil {
		srv.Stop()
		return nil, nil, fmt.Errorf("loading models in-process: %w", err)
	}
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	cl, err := client.New("passthrough:///in-process",
		client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })),
		client.WithRetry(1, 0, 0))
	if err != nil {
		srv.Stop()
		return nil, nil, err
	}
	return cl, func() { cl.Close(); srv.Stop() }, nil
}
