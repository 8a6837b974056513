package eval

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runMain runs Main and returns its exit code, stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// mainSuite is a small suite on the e2e checkpoints (loaded in-process
// from defaults.models); expectations come from the captioner's first
// golden case, and ok=false breaks two of them.
func mainSuite(t *testing.T, ok bool) string {
	t.Helper()
	gc := loadGolden(t, "blip-caption")[0]
	img, err := filepath.Abs(filepath.Join(e2eRoot, "blip-caption", gc.Image))
	must(t, err)
	want, top := gc.Expected.Text, ""
	for _, cc := range loadGolden(t, "clip") {
		if cc.Task == "match" && cc.Image == gc.Image {
			best := 0
			for i, s := range cc.Expected.Scores {
				if *s.Cosine > *cc.Expected.Scores[best].Cosine {
					best = i
				}
			}
			top = cc.Expected.Scores[best].Text
		}
	}
	if top == "" {
		t.Fatal("no clip match case on the captioner's image")
	}
	if !ok {
		want += " and more"
		top = "a photo of a teapot"
	}
	maxNew := len(gc.Expected.TokenIDs)
	return writeSuite(t, `
name: main-test
defaults:
  model: cap
  models:
    - {name: cap, dir: $E2E/blip-caption}
    - {name: clip, dir: $E2E/clip}
  options: {num-beams: 1}
cases:
  - id: caption-cat
    tags: [smoke]
    task: caption
    image: `+yq(img)+`
    options: {max-new-tokens: `+strconv.Itoa(maxNew)+`}
    assert:
      - equals: `+yq(want)+`
  - id: caption-repeat
    task: caption
    image: `+yq(img)+`
    options: {max-new-tokens: 3}
    repeat: 2
    assert:
      - consistent: true
  - id: match-cat
    tags: [smoke, match]
    task: match
    model: clip
    image: `+yq(img)+`
    texts: ["a photo of a cat", "a photo of a dog", "a photo of a rocket", "a photo of a teapot"]
    assert:
      - top: `+yq(top)+`
`)
}

func TestMainPassingSuite(t *testing.T) {
	dir := t.TempDir()
	jsonPath, junitPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.xml")
	code, out, errOut := runMain(t, mainSuite(t, true), "--json", jsonPath, "--junit", junitPath, "--parallel", "2")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	hasSub(t, out, "CASE")
	hasSub(t, out, "PASS: 4 runs, 4 passed, 0 failed, 0 errors")
	hasSub(t, errOut, "[4/4]", "progress on stderr")
	rep, err := ReadReport(jsonPath)
	must(t, err)
	equal(t, Summary{Total: 4, Passed: 4}, rep.Summary)
	equal(t, "in-process", rep.Target)
	junit := readJUnit(t, junitPath)
	equal(t, 4, junit.Tests)
	equal(t, 0, junit.Failures)
}

// TestMainFailingSuite: a suite with failing assertions exits 1, and the
// table, JSON and JUnit say which.
func TestMainFailingSuite(t *testing.T) {
	dir := t.TempDir()
	jsonPath, junitPath := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.xml")
	code, out, errOut := runMain(t, "--quiet", "--json", jsonPath, "--junit", junitPath, mainSuite(t, false))
	if code != ExitFailed {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitFailed, out, errOut)
	}
	equal(t, "", errOut, "--quiet")
	hasSub(t, out, "FAIL: 4 runs, 2 passed, 2 failed, 0 errors")
	hasSub(t, out, "Failures:")
	hasSub(t, out, `top "a photo of a teapot": best is`)
	rep, err := ReadReport(jsonPath)
	must(t, err)
	verdicts := map[string]string{}
	for _, r := range rep.Results {
		verdicts[r.ID] = r.Verdict
	}
	equal(t, map[string]string{"caption-cat": "fail", "caption-repeat#1": "pass", "caption-repeat#2": "pass", "match-cat": "fail"}, verdicts)
	junit := readJUnit(t, junitPath)
	equal(t, 4, junit.Tests)
	equal(t, 2, junit.Failures)
	equal(t, 0, junit.Errors)
	failures := 0
	for _, s := range junit.Suites {
		for _, c := range s.Cases {
			if c.Failure != nil {
				failures++
				isTrue(t, c.Failure.Message != "", "failure message of %s", c.Name)
			}
		}
	}
	equal(t, 2, failures)
}

func TestMainFiltersAndList(t *testing.T) {
	suite := mainSuite(t, false)
	code, out, _ := runMain(t, "--list", "--tag", "smoke", suite)
	equal(t, ExitOK, code)
	equal(t, []string{"caption-cat", "match-cat"}, firstFields(out))
	code, out, _ = runMain(t, "--list", "--id", "caption-*", suite)
	equal(t, ExitOK, code)
	equal(t, []string{"caption-cat", "caption-repeat#1", "caption-repeat#2"}, firstFields(out))
	code, out, _ = runMain(t, "--list", "--tag", "smoke,match", "--id", "match-*", suite)
	equal(t, ExitOK, code)
	equal(t, []string{"match-cat"}, firstFields(out))
	// Only the passing runs of a failing suite: exit 0.
	code, out, _ = runMain(t, "--quiet", "--id", "caption-repeat", suite)
	equal(t, ExitOK, code, out)
	hasSub(t, out, "PASS: 2 runs")
	code, _, errOut := runMain(t, "--tag", "nothing", suite)
	equal(t, ExitUsage, code)
	hasSub(t, errOut, "no case")
}

func TestMainUsageErrors(t *testing.T) {
	good := mainSuite(t, true)
	bad := writeSuite(t, "cases:\n  - id: x\n    task: nope\n    image: a.jpg\n    assert: [{min-chars: 1}]\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no suite", nil, "want one SUITE.yaml"},
		{"two suites", []string{good, good}, "want one SUITE.yaml"},
		{"unknown flag", []string{"--frobnicate", good}, "frobnicate"},
		{"bad parallel", []string{"--parallel", "-1", good}, "--parallel"},
		{"addr and in-process", []string{"--addr", "127.0.0.1:1", "--in-process", good}, "exclude"},
		{"addr and model dirs", []string{"--addr", "127.0.0.1:1", "--model", "a=b", good}, "cannot be combined"},
		{"missing file", []string{filepath.Join(t.TempDir(), "none.yaml")}, "reading suite"},
		{"invalid suite", []string{bad}, "suite.yaml:3: case x: unknown task"},
		{"bad compare", []string{"--compare", good, good}, "not a glimpse eval JSON report"},
		{"unknown model", []string{"--model", "other=" + filepath.Join(e2eRoot, "clip"), good}, "does not serve"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runMain(t, tc.args...)
			equal(t, ExitUsage, code, errOut)
			hasSub(t, errOut, tc.want)
		})
	}
	code, out, _ := runMain(t, "--help")
	equal(t, ExitOK, code)
	hasSub(t, out, "Usage: glimpse eval")
}

func TestMainUnreachableServer(t *testing.T) {
	code, _, errOut := runMain(t, "--addr", "127.0.0.1:1", mainSuite(t, true))
	equal(t, ExitFailed, code)
	hasSub(t, errOut, "no Glimpse server at 127.0.0.1:1")
}

// TestMainCompare: a run compared with an earlier one lists the new
// failures, the fixes and the changed outputs.
func TestMainCompare(t *testing.T) {
	dir := t.TempDir()
	oldJSON := filepath.Join(dir, "old.json")
	code, out, _ := runMain(t, "--quiet", "--json", oldJSON, mainSuite(t, true))
	equal(t, ExitOK, code, out)
	// Same suite again: nothing changed.
	code, out, _ = runMain(t, "--quiet", "--compare", oldJSON, mainSuite(t, true))
	equal(t, ExitOK, code)
	hasSub(t, out, "0 new failures, 0 fixed, 0 still failing, 0 changed outputs, 0 added, 0 removed, 4 unchanged")
	// The failing variant: two new failures.
	newJSON := filepath.Join(dir, "new.json")
	code, out, _ = runMain(t, "--quiet", "--json", newJSON, "--compare", oldJSON, mainSuite(t, false))
	equal(t, ExitFailed, code)
	hasSub(t, out, "2 new failures, 0 fixed")
	hasSub(t, out, "caption-cat  PASS -> FAIL")
	hasSub(t, out, "match-cat  PASS -> FAIL")
	// And back: two fixes.
	code, out, _ = runMain(t, "--quiet", "--compare", newJSON, mainSuite(t, true))
	equal(t, ExitOK, code)
	hasSub(t, out, "0 new failures, 2 fixed")
	// A changed output with the same verdict, an added and a removed run.
	old, err := ReadReport(oldJSON)
	must(t, err)
	old.Results[0].Output = "something else"
	old.Results[0].TokenIDs = []int32{1}
	old.Results[3].ID = "gone"
	f, err := os.Create(oldJSON)
	must(t, err)
	must(t, old.WriteJSON(f))
	must(t, f.Close())
	code, out, _ = runMain(t, "--quiet", "--compare", oldJSON, mainSuite(t, true))
	equal(t, ExitOK, code)
	hasSub(t, out, "1 changed outputs, 1 added, 1 removed")
	hasSub(t, out, `was: "something else"`)
}

func firstFields(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f[0])
		}
	}
	return out
}

func readJUnit(t *testing.T, path string) junitSuites {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	var j junitSuites
	must(t, xml.Unmarshal(data, &j))
	return j
}

// TestExampleSuite runs examples/suite.yaml in-process on the built-in
// default models: it must pass (CI also runs it against a real server).
func TestExampleSuite(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	code, out, errOut := runMain(t, "--quiet", "../examples/suite.yaml")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	hasSub(t, out, "PASS:")
}
