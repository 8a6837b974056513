package eval

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	seed := uint64(3)
	r := &Report{
		Suite: "s", Path: "s.yaml", Target: "in-process", Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DurationMS: 1234.5,
		Results: []*Result{
			{ID: "a", Case: "a", Tags: []string{"smoke"}, Task: TaskCaption, Model: "m", Images: []string{"x.jpg"}, Prompt: "p",
				Output: "a <cat> & \"dog\"", TokenIDs: []int32{1, 2}, FinishReason: "eos", Verdict: VerdictPass, Repeat: 1,
				Checks: []Check{{Name: "contains \"cat\"", Pass: true}}, LatencyMS: 12.5, Seed: &seed},
			{ID: "b", Case: "b", Task: TaskMatch, Images: []string{"y.jpg"}, Texts: []string{"t1", "t2"}, Output: "t2", Label: "two",
				Scores:  []Score{{Text: "t1", Cosine: f32(0.1), Logit: f32(1)}, {Text: "t2", Label: "two", Cosine: f32(0.2), Logit: f32(2)}},
				Verdict: VerdictFail, Repeat: 1, Checks: []Check{{Name: "top \"t1\"", Detail: "best is \"t2\""}}, LatencyMS: 3},
			{ID: "c", Case: "c", Task: TaskEmbed, Images: []string{"z.jpg"}, Verdict: VerdictError, Error: "boom (Internal)", Repeat: 1, Checks: []Check{}},
		},
	}
	r.Summarize()
	return r
}

func TestReportJSONRoundTrip(t *testing.T) {
	r := sampleReport()
	equal(t, Summary{Total: 3, Passed: 1, Failed: 1, Errors: 1}, r.Summary)
	isTrue(t, !r.Summary.OK())
	p := filepath.Join(t.TempDir(), "r.json")
	f, err := os.Create(p)
	must(t, err)
	must(t, r.WriteJSON(f))
	must(t, f.Close())
	back, err := ReadReport(p)
	must(t, err)
	if !reflect.DeepEqual(r, back) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, r)
	}
	// Not a report.
	must(t, os.WriteFile(p, []byte(`{"hello": 1}`), 0o644))
	_, err = ReadReport(p)
	isTrue(t, err != nil, "a JSON file that is no report")
	must(t, os.WriteFile(p, []byte(`not json`), 0o644))
	_, err = ReadReport(p)
	isTrue(t, err != nil, "not JSON")
}

func TestReportJUnit(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	must(t, r.WriteJUnit(&buf))
	isTrue(t, strings.HasPrefix(buf.String(), "<?xml"), "XML header")
	// Well-formed: the whole document decodes token by token.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("not well-formed XML: %v\n%s", err, buf.String())
			}
			break
		}
	}
	var j junitSuites
	must(t, xml.Unmarshal(buf.Bytes(), &j))
	equal(t, 3, j.Tests)
	equal(t, 1, j.Failures)
	equal(t, 1, j.Errors)
	equal(t, 1, len(j.Suites))
	s := j.Suites[0]
	equal(t, "s", s.Name)
	equal(t, "1.234", s.Time)
	equal(t, 3, len(s.Cases))
	equal(t, "s.a", s.Cases[0].Classname)
	equal(t, "a <cat> & \"dog\"", s.Cases[0].SystemOut, "special characters are escaped and come back")
	isTrue(t, s.Cases[0].Failure == nil && s.Cases[0].Error == nil)
	isTrue(t, s.Cases[1].Failure != nil && s.Cases[1].Error == nil)
	hasSub(t, s.Cases[1].Failure.Message, "best is")
	isTrue(t, s.Cases[2].Error != nil && s.Cases[2].Failure == nil)
	equal(t, "boom (Internal)", s.Cases[2].Error.Message)
}

func TestReportTable(t *testing.T) {
	var buf bytes.Buffer
	must(t, sampleReport().WriteTable(&buf))
	out := buf.String()
	lines := strings.Split(out, "\n")
	equal(t, []string{"CASE", "VERDICT", "TIME", "OUTPUT"}, strings.Fields(lines[0]))
	hasSub(t, lines[1], "a  ")
	hasSub(t, lines[1], "PASS")
	hasSub(t, lines[2], `"two (t2)"`, "match rows show the label")
	hasSub(t, lines[3], "ERROR")
	hasSub(t, out, "Failures:\n  b\n    top \"t1\": best is \"t2\"\n  c\n    error: boom (Internal)\n")
	hasSub(t, out, "FAIL: 3 runs, 1 passed, 1 failed, 1 errors")
	// Long outputs are shortened in the table.
	r := &Report{Results: []*Result{{ID: "x", Verdict: VerdictPass, Output: strings.Repeat("word ", 40)}}}
	r.Summarize()
	buf.Reset()
	must(t, r.WriteTable(&buf))
	hasSub(t, buf.String(), "…")
	hasSub(t, buf.String(), "PASS: 1 runs")
}

func TestCompare(t *testing.T) {
	mk := func(rs ...*Result) *Report { return &Report{Results: rs} }
	res := func(id, verdict, out string, cos float32) *Result {
		return &Result{ID: id, Verdict: verdict, Output: out, Scores: []Score{{Text: "t", Cosine: f32(cos)}}}
	}
	old := mk(
		res("same", VerdictPass, "x", 0.5),
		res("breaks", VerdictPass, "x", 0.5),
		res("fixed", VerdictFail, "x", 0.5),
		res("still", VerdictError, "", 0.5),
		res("text", VerdictPass, "x", 0.5),
		res("score", VerdictPass, "x", 0.5),
		res("tiny", VerdictPass, "x", 0.5),
		res("removed", VerdictPass, "x", 0.5),
	)
	cur := mk(
		res("same", VerdictPass, "x", 0.5),
		res("breaks", VerdictFail, "y", 0.5),
		res("fixed", VerdictPass, "x", 0.5),
		res("still", VerdictFail, "z", 0.5),
		res("text", VerdictPass, "changed", 0.5),
		res("score", VerdictPass, "x", 0.6),
		res("tiny", VerdictPass, "x", 0.50001),
		res("added", VerdictPass, "x", 0.5),
	)
	c := Compare(old, cur)
	ids := func(chs []Change) []string {
		var out []string
		for _, ch := range chs {
			out = append(out, ch.ID)
		}
		return out
	}
	equal(t, []string{"breaks"}, ids(c.NewFailures))
	equal(t, []string{"fixed"}, ids(c.Fixed))
	equal(t, []string{"still"}, ids(c.StillFailing))
	equal(t, []string{"text", "score"}, ids(c.Changed))
	equal(t, []string{"added"}, c.Added)
	equal(t, []string{"removed"}, c.Removed)
	equal(t, 2, c.Same, "same and tiny (a score change below 1e-4)")
	equal(t, Change{ID: "breaks", OldVerdict: "pass", NewVerdict: "fail", OldOutput: "x", NewOutput: "y"}, c.NewFailures[0])
	var buf bytes.Buffer
	must(t, c.Write(&buf, "old.json"))
	out := buf.String()
	hasSub(t, out, "Compared with old.json: 1 new failures, 1 fixed, 1 still failing, 2 changed outputs, 1 added, 1 removed, 2 unchanged")
	hasSub(t, out, "breaks  PASS -> FAIL")
	hasSub(t, out, "fixed  FAIL -> PASS")
	hasSub(t, out, "was: \"x\"\n      now: \"changed\"")
	hasSub(t, out, "added: added")
	hasSub(t, out, "removed: removed")
}
