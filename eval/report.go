package eval

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// Verdicts of a run.
const (
	VerdictPass  = "pass"
	VerdictFail  = "fail"  // an assertion failed
	VerdictError = "error" // the request failed
)

// Result is the outcome of one run.
type Result struct {
	ID     string   `json:"id"`
	Case   string   `json:"case"`
	Tags   []string `json:"tags,omitempty"`
	Task   string   `json:"task"`
	Model  string   `json:"model,omitempty"`
	Images []string `json:"images"`
	Prompt string   `json:"prompt,omitempty"`
	Texts  []string `json:"texts,omitempty"`
	Seed   *uint64  `json:"seed,omitempty"`
	Repeat int      `json:"repeat"`
	// Verdict is pass, fail or error.
	Verdict string `json:"verdict"`
	// Output is the generated text, the best-matching text (match) or a
	// summary of the embeddings (embed).
	Output string `json:"output"`
	// Label is the label of the best-matching text (match with labels).
	Label        string  `json:"label,omitempty"`
	TokenIDs     []int32 `json:"token_ids,omitempty"`
	FinishReason string  `json:"finish_reason,omitempty"`
	Scores       []Score `json:"scores,omitempty"`
	Dims         int     `json:"dims,omitempty"`
	// Checks are the assertions' outcomes.
	Checks []Check `json:"checks"`
	// Error is why the request failed (verdict error).
	Error string `json:"error,omitempty"`
	// LatencyMS is the request's wall time in milliseconds.
	LatencyMS float64 `json:"latency_ms"`

	// Embeddings are the vectors of an embed run (not written to JSON).
	Embeddings [][]float32 `json:"-"`
	group      string
}

// Score is one text's match score.
type Score struct {
	Text           string   `json:"text"`
	Label          string   `json:"label,omitempty"`
	ITMProbability *float32 `json:"itm_probability,omitempty"`
	Cosine         *float32 `json:"cosine,omitempty"`
	Logit          *float32 `json:"logit,omitempty"`
}

func (s Score) defaultMetric() string {
	if s.ITMProbability != nil {
		return MetricITM
	}
	return MetricCosine
}

// metric is the score's value by metric ("" = the default metric).
func (s Score) metric(m string) (float64, bool) {
	if m == "" {
		m = s.defaultMetric()
	}
	var p *float32
	switch m {
	case MetricITM:
		p = s.ITMProbability
	case MetricCosine:
		p = s.Cosine
	case MetricLogit:
		p = s.Logit
	}
	if p == nil {
		return 0, false
	}
	return float64(*p), true
}

func (s Score) close(o Score, tol float64) bool {
	if s.Text != o.Text {
		return false
	}
	for _, m := range []string{MetricITM, MetricCosine, MetricLogit} {
		a, okA := s.metric(m)
		b, okB := o.metric(m)
		if okA != okB || (okA && math.Abs(a-b) > tol) {
			return false
		}
	}
	return true
}

// Check is the outcome of one assertion check.
type Check struct {
	Name   string `json:"name"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail,omitempty"`
}

func (res *Result) setVerdict() {
	switch {
	case res.Error != "":
		res.Verdict = VerdictError
	case res.failed() > 0:
		res.Verdict = VerdictFail
	default:
		res.Verdict = VerdictPass
	}
}

func (res *Result) failed() int {
	n := 0
	for _, c := range res.Checks {
		if !c.Pass {
			n++
		}
	}
	return n
}

// failures describes the failed checks (or the error), one per line.
func (res *Result) failures() []string {
	if res.Error != "" {
		return []string{"error: " + res.Error}
	}
	var out []string
	for _, c := range res.Checks {
		if !c.Pass {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return out
}

// Report is a whole run of a suite, as written by --json.
type Report struct {
	Suite      string    `json:"suite"`
	Path       string    `json:"path"`
	Target     string    `json:"target"`
	Started    time.Time `json:"started"`
	DurationMS float64   `json:"duration_ms"`
	Summary    Summary   `json:"summary"`
	Results    []*Result `json:"results"`
}

// Summary counts verdicts.
type Summary struct {
	Total  int `json:"total"`
	Passed int `json:"passed"`
	Failed int `json:"failed"`
	Errors int `json:"errors"`
}

// OK reports whether every run passed.
func (s Summary) OK() bool { return s.Failed == 0 && s.Errors == 0 }

// Summarize recounts the summary from the results.
func (r *Report) Summarize() {
	r.Summary = Summary{Total: len(r.Results)}
	for _, res := range r.Results {
		switch res.Verdict {
		case VerdictPass:
			r.Summary.Passed++
		case VerdictFail:
			r.Summary.Failed++
		default:
			r.Summary.Errors++
		}
	}
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport reads a report written by WriteJSON (--json).
func ReadReport(path string) (*Report, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s is not a glimpse eval JSON report: %w", path, err)
	}
	if r.Results == nil && r.Suite == "" {
		return nil, fmt.Errorf("%s is not a glimpse eval JSON report (no suite, no results)", path)
	}
	return &r, nil
}

// WriteTable writes one row per run (case, verdict, time, output), the
// failed checks under failing rows, and a summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tVERDICT\tTIME\tOUTPUT")
	for _, res := range r.Results {
		out := res.Output
		if res.Task == TaskMatch && res.Label != "" {
			out = res.Label + " (" + res.Output + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res.ID, strings.ToUpper(res.Verdict), fmtMS(res.LatencyMS), quote(truncate(out, 60)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var any bool
	for _, res := range r.Results {
		if f := res.failures(); len(f) > 0 {
			if !any {
				fmt.Fprintln(w, "\nFailures:")
				any = true
			}
			fmt.Fprintf(w, "  %s\n", res.ID)
			for _, line := range f {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	s := r.Summary
	verdict := "PASS"
	if !s.OK() {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "\n%s: %d runs, %d passed, %d failed, %d errors (%s)\n", verdict, s.Total, s.Passed, s.Failed, s.Errors, fmtMS(r.DurationMS))
	return err
}

func fmtMS(ms float64) string {
	d := time.Duration(ms * float64(time.Millisecond))
	switch {
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}

// JUnit XML (the schema Jenkins, GitLab and GitHub reporters read).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Failures  int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Time      string      `xml:"time,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Cases     []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Body    string `xml:",chardata"`
}

func secs(ms float64) string { return fmt.Sprintf("%.3f", ms/1000) }

// WriteJUnit writes the report as JUnit XML: one testsuite, one testcase
// per run (classname suite.case), failures and errors with their details
// and the output as system-out.
func (r *Report) WriteJUnit(w io.Writer) error {
	s := junitSuite{
		Name: r.Suite, Tests: r.Summary.Total, Failures: r.Summary.Failed, Errors: r.Summary.Errors,
		Time: secs(r.DurationMS), Timestamp: r.Started.UTC().Format("2006-01-02T15:04:05"),
	}
	for _, res := range r.Results {
		c := junitCase{Name: res.ID, Classname: r.Suite + "." + res.Case, Time: secs(res.LatencyMS), SystemOut: res.Output}
		switch res.Verdict {
		case VerdictFail:
			f := res.failures()
			c.Failure = &junitProblem{Message: f[0], Type: "assertion", Body: strings.Join(f, "\n")}
		case VerdictError:
			c.Error = &junitProblem{Message: res.Error, Type: "request", Body: res.Error}
		}
		s.Cases = append(s.Cases, c)
	}
	doc := junitSuites{Name: "glimpse eval", Tests: s.Tests, Failures: s.Failures, Errors: s.Errors, Time: s.Time, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// Change is one run that differs between two reports.
type Change struct {
	ID         string `json:"id"`
	OldVerdict string `json:"old_verdict"`
	NewVerdict string `json:"new_verdict"`
	OldOutput  string `json:"old_output"`
	NewOutput  string `json:"new_output"`
}

// Comparison is what changed from an earlier report to a newer one.
type Comparison struct {
	// NewFailures passed before and fail (or error) now.
	NewFailures []Change
	// Fixed failed (or errored) before and pass now.
	Fixed []Change
	// StillFailing failed before and still fail.
	StillFailing []Change
	// Changed have the same verdict but a different output (text, token
	// ids or scores beyond 1e-4).
	Changed []Change
	// Added are runs only in the new report; Removed only in the old.
	Added, Removed []string
	// Same counts runs with the same verdict and output.
	Same int
}

// Compare compares an earlier report old with cur, run by run (by id).
func Compare(old, cur *Report) *Comparison {
	c := &Comparison{}
	prev := map[string]*Result{}
	for _, r := range old.Results {
		prev[r.ID] = r
	}
	seen := map[string]bool{}
	for _, r := range cur.Results {
		seen[r.ID] = true
		o, ok := prev[r.ID]
		if !ok {
			c.Added = append(c.Added, r.ID)
			continue
		}
		ch := Change{ID: r.ID, OldVerdict: o.Verdict, NewVerdict: r.Verdict, OldOutput: o.Output, NewOutput: r.Output}
		wasOK, isOK := o.Verdict == VerdictPass, r.Verdict == VerdictPass
		switch {
		case wasOK && !isOK:
			c.NewFailures = append(c.NewFailures, ch)
		case !wasOK && isOK:
			c.Fixed = append(c.Fixed, ch)
		case !wasOK && !isOK:
			c.StillFailing = append(c.StillFailing, ch)
		case !sameRecorded(o, r):
			c.Changed = append(c.Changed, ch)
		default:
			c.Same++
		}
	}
	for _, r := range old.Results {
		if !seen[r.ID] {
			c.Removed = append(c.Removed, r.ID)
		}
	}
	return c
}

// sameRecorded compares what a JSON report records of two outputs.
func sameRecorded(a, b *Result) bool {
	if a.Output != b.Output || a.Dims != b.Dims || len(a.TokenIDs) != len(b.TokenIDs) || len(a.Scores) != len(b.Scores) {
		return false
	}
	for i := range a.TokenIDs {
		if a.TokenIDs[i] != b.TokenIDs[i] {
			return false
		}
	}
	for i := range a.Scores {
		if !a.Scores[i].close(b.Scores[i], 1e-4) {
			return false
		}
	}
	return true
}

// Write prints the comparison for a terminal.
func (c *Comparison) Write(w io.Writer, oldName string) error {
	fmt.Fprintf(w, "\nCompared with %s: %d new failures, %d fixed, %d still failing, %d changed outputs, %d added, %d removed, %d unchanged\n",
		oldName, len(c.NewFailures), len(c.Fixed), len(c.StillFailing), len(c.Changed), len(c.Added), len(c.Removed), c.Same)
	section := func(title string, chs []Change, outputs bool) {
		if len(chs) == 0 {
			return
		}
		fmt.Fprintf(w, "  %s:\n", title)
		for _, ch := range chs {
			fmt.Fprintf(w, "    %s  %s -> %s\n", ch.ID, strings.ToUpper(ch.OldVerdict), strings.ToUpper(ch.NewVerdict))
			if outputs || ch.OldOutput != ch.NewOutput {
				fmt.Fprintf(w, "      was: %s\n      now: %s\n", quote(truncate(ch.OldOutput, 70)), quote(truncate(ch.NewOutput, 70)))
			}
		}
	}
	section("new failures", c.NewFailures, false)
	section("fixed", c.Fixed, false)
	section("changed outputs", c.Changed, true)
	for _, l := range []struct {
		title string
		ids   []string
	}{{"added", c.Added}, {"removed", c.Removed}} {
		if len(l.ids) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", l.title, strings.Join(l.ids, ", "))
		}
	}
	return nil
}
