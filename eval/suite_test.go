package eval

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	e2eRoot  = "../testdata/golden/e2e"
	imageDir = "../testdata/images"
)

// writeSuite writes a suite into a temporary folder next to a copy-free
// reference to the test images (absolute paths) and returns its path.
func writeSuite(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	imgs, err := filepath.Abs(imageDir)
	must(t, err)
	e2e, err := filepath.Abs(e2eRoot)
	must(t, err)
	body = strings.ReplaceAll(body, "$IMAGES", imgs)
	body = strings.ReplaceAll(body, "$E2E", e2e)
	p := filepath.Join(dir, "suite.yaml")
	must(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestParseSuiteErrors(t *testing.T) {
	head := "cases:\n"
	okCase := "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - min-chars: 1\n"
	tests := []struct {
		name string
		yaml string
		want string // substring of the error
		line int    // line the error names (0: not checked)
	}{
		{"unknown field", head + okCase + "    colour: red\n", `unknown field "colour"`, 7},
		{"unknown assertion", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - containz: x\n", `unknown field "containz"`, 6},
		{"bad type", head + okCase + "    options: {max-new-tokens: lots}\n", `max-new-tokens: "lots" is not a whole number`, 7},
		{"syntax", "cases: [\n", "", 0},
		{"no cases", "name: x\n", "no cases", 0},
		{"bad task", head + "  - id: a\n    task: summarise\n    image: $IMAGES/cat_chelsea.jpg\n    assert: [{min-chars: 1}]\n", `unknown task "summarise"`, 3},
		{"no task", head + "  - id: a\n    image: $IMAGES/cat_chelsea.jpg\n    assert: [{min-chars: 1}]\n", "no task", 2},
		{"missing image", head + "  - id: a\n    task: caption\n    image: nope.jpg\n    assert: [{min-chars: 1}]\n", "image nope.jpg not found", 4},
		{"no image", head + "  - id: a\n    task: caption\n    assert: [{min-chars: 1}]\n", "no image", 2},
		{"duplicate id", head + okCase + okCase, `case id "a" is used twice`, 7},
		{"bad id", head + "  - id: 'a b'\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert: [{min-chars: 1}]\n", "case id", 2},
		{"unknown variable", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    prompt: 'a {thing}'\n    assert: [{min-chars: 1}]\n", "unknown variable {thing}", 5},
		{"bad regex", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - regex: 'a('\n", "bad regex", 6},
		{"no assertions", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n", "no assertions", 2},
		{"empty assertion", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - {}\n", "empty assertion", 0},
		{"ask without question", head + "  - id: a\n    task: ask\n    image: $IMAGES/cat_chelsea.jpg\n    assert: [{min-chars: 1}]\n", "needs a prompt", 2},
		{"match without texts", head + "  - id: a\n    task: match\n    image: $IMAGES/cat_chelsea.jpg\n    assert: [{top: x}]\n", "needs texts", 2},
		{"tokens on match", head + "  - id: a\n    task: match\n    image: $IMAGES/cat_chelsea.jpg\n    texts: [x]\n    assert:\n      - max-tokens: 3\n", "min-tokens/max-tokens", 7},
		{"top on caption", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - top: x\n", "top applies to match", 6},
		{"text check on embed", head + "  - id: a\n    task: embed\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - contains: x\n", "no text output", 6},
		{"consistent without repeats", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - consistent: true\n", "add repeat", 6},
		{"repeat and seeds", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    repeat: 2\n    seeds: [1, 2]\n    assert: [{consistent: true}]\n", "not both", 5},
		{"match-score without model", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - match-score: {min: 0.1}\n", "needs a model", 0},
		{"match-score without bounds", head + "  - id: a\n    task: match\n    image: $IMAGES/cat_chelsea.jpg\n    texts: [x]\n    assert:\n      - match-score: {text: x}\n", "needs min or max", 0},
		{"bad metric", head + "  - id: a\n    task: match\n    image: $IMAGES/cat_chelsea.jpg\n    texts: [x]\n    assert:\n      - match-score: {text: x, min: 0, metric: f1}\n", `unknown metric "f1"`, 0},
		{"labels unused", head + "  - id: a\n    task: match\n    image: $IMAGES/cat_chelsea.jpg\n    texts: [x]\n    labels: [a, b]\n    assert: [{top: x}]\n", "no text uses {label}", 6},
		{"options on match", head + "  - id: a\n    task: match\n    image: $IMAGES/cat_chelsea.jpg\n    texts: [x]\n    options: {num-beams: 2}\n    assert: [{top: x}]\n", "decoding options", 6},
		{"bad option value", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    options: {top-p: 2}\n    assert: [{min-chars: 1}]\n", "top-p must be in (0, 1]", 0},
		{"reserved var", "vars: {label: x}\n" + head + okCase, `bad variable name "label"`, 1},
		{"missing model dir", "defaults:\n  models:\n    - {name: m, dir: nowhere}\n" + head + okCase, "model folder nowhere", 0},
		{"bad duration", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - max-latency: soon\n", "max-latency", 6},
		{"negative latency", head + "  - id: a\n    task: caption\n    image: $IMAGES/cat_chelsea.jpg\n    assert:\n      - max-latency: -1s\n", "max-latency must be positive", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeSuite(t, tc.yaml)
			_, err := LoadSuite(p)
			if err == nil {
				t.Fatal("no error")
			}
			hasSub(t, err.Error(), tc.want)
			var se *SuiteError
			isTrue(t, errors.As(err, &se), "error %v is not a SuiteError", err)
			equal(t, p, se.Path)
			if tc.line > 0 {
				found := false
				for _, e := range flatten(err) {
					if errors.As(e, &se) && strings.Contains(se.Msg, tc.want) {
						equal(t, tc.line, se.Line, "line of %q", se.Msg)
						found = true
					}
				}
				isTrue(t, found, "no error containing %q in %v", tc.want, err)
			}
		})
	}
}

func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestParseSuiteCollectsAllErrors(t *testing.T) {
	p := writeSuite(t, "cases:\n  - id: a\n    task: bad\n    image: x.jpg\n    assert: [{min-chars: 1}]\n  - id: b\n    task: caption\n    image: y.jpg\n    assert: [{min-chars: 1}]\n")
	_, err := LoadSuite(p)
	if err == nil {
		t.Fatal("no error")
	}
	errs := flatten(err)
	equal(t, 2, len(errs), "%v", err)
	hasSub(t, err.Error(), "suite.yaml:3:")
	hasSub(t, err.Error(), "suite.yaml:8:")
}

func TestExpand(t *testing.T) {
	p := writeSuite(t, `
name: expand
defaults:
  model: blip-caption
  options: {max-new-tokens: 5, num-beams: 2}
vars:
  prefix: "a picture of"
  colour: [red, blue]
cases:
  - id: grid
    task: ask
    model: blip-vqa
    images: [$IMAGES/cat_chelsea.jpg, $IMAGES/rocket.jpg]
    prompt: "{prefix} {{what}} is {thing}?"
    vars:
      thing: [it, this]
    options: {max-new-tokens: 7}
    assert:
      - contains: "{thing}"
  - id: zero-shot
    task: match
    image: $IMAGES/cat_chelsea.jpg
    texts: ["a photo of a {label}", "something {colour}"]
    labels: [cat, dog]
    assert:
      - top: cat
  - id: seeded
    tags: [s]
    task: caption
    image: $IMAGES/cat_chelsea.jpg
    seeds: [7, 9]
    assert: [{consistent: true}]
  - id: repeated
    tags: [r, s]
    task: caption
    image: $IMAGES/cat_chelsea.jpg
    repeat: 3
    assert: [{consistent: true}]
  - id: embed-all
    task: embed
    images: [$IMAGES/cat_chelsea.jpg, $IMAGES/rocket.jpg]
    assert: [{dims: 16}]
`)
	s, err := LoadSuite(p)
	must(t, err)
	equal(t, "expand", s.Name)
	runs := s.Expand(Filter{})
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	// grid: thing × image (colour is unused by the case, so no axis);
	// zero-shot: colour (used in texts) × 1 image.
	equal(t, []string{
		"grid[thing=it]@cat_chelsea.jpg", "grid[thing=it]@rocket.jpg",
		"grid[thing=this]@cat_chelsea.jpg", "grid[thing=this]@rocket.jpg",
		"zero-shot[colour=red]", "zero-shot[colour=blue]",
		"seeded#seed=7", "seeded#seed=9",
		"repeated#1", "repeated#2", "repeated#3",
		"embed-all",
	}, ids)

	g := runs[2]
	equal(t, "a picture of {what} is this?", g.Prompt, "constants, list values and {{ escapes")
	equal(t, "blip-vqa", g.Model)
	equal(t, "cat_chelsea.jpg", filepath.Base(g.Images[0]))
	equal(t, map[string]string{"prefix": "a picture of", "thing": "this", "colour": "red"}, g.Vars)
	isTrue(t, g.Options.MaxNewTokens != nil)
	equal(t, 7, *g.Options.MaxNewTokens, "case options override the defaults")
	equal(t, 2, *g.Options.NumBeams, "defaults still apply")
	equal(t, "this", *g.Assert[0].Contains, "assertions are templated")
	equal(t, "{thing}", *s.Cases[0].Assert[0].Contains, "the case itself is not modified")

	z := runs[5]
	equal(t, []string{"a photo of a cat", "a photo of a dog", "something blue"}, z.Texts)
	equal(t, []string{"cat", "dog", ""}, z.Labels)
	equal(t, "blip-caption", z.Model, "defaults.model")

	s7, s9 := runs[6], runs[7]
	isTrue(t, s7.Seed != nil)
	equal(t, uint64(7), *s7.Seed)
	equal(t, uint64(9), *s9.protoOptions().Seed)
	equal(t, s7.Group, s9.Group)
	isTrue(t, runs[0].Group != runs[1].Group, "different images are different groups")
	equal(t, []int{1, 2, 3}, []int{runs[8].Repeat, runs[9].Repeat, runs[10].Repeat})

	e := runs[11]
	equal(t, 2, len(e.Files), "embed sends every image in one request")
	for _, f := range e.Files {
		_, err := os.Stat(f)
		must(t, err)
	}

	filtered := func(f Filter) []string {
		var out []string
		for _, r := range s.Expand(f) {
			out = append(out, r.ID)
		}
		return out
	}
	equal(t, []string{"seeded#seed=7", "seeded#seed=9", "repeated#1", "repeated#2", "repeated#3"}, filtered(Filter{Tags: []string{"s"}}))
	equal(t, []string{"repeated#1", "repeated#2", "repeated#3"}, filtered(Filter{Tags: []string{"r"}}))
	equal(t, []string{"repeated#1", "repeated#2", "repeated#3"}, filtered(Filter{Tags: []string{"s"}, IDs: []string{"rep*"}}))
	equal(t, []string{"zero-shot[colour=blue]"}, filtered(Filter{IDs: []string{"*blue*"}}))
	equal(t, []string{"embed-all"}, filtered(Filter{IDs: []string{"embed-all", "nothing"}}))
	equal(t, []string{"zero-shot[colour=red]"}, filtered(Filter{IDs: []string{"zero-shot[colour=red]"}}), "ids with brackets match literally")
	equal(t, []string{"grid[thing=it]@rocket.jpg"}, filtered(Filter{IDs: []string{"grid*it]@rocket*"}}))
	equal(t, []string(nil), filtered(Filter{Tags: []string{"missing"}}))
}

func TestTemplates(t *testing.T) {
	vars := map[string]string{"a": "x", "b_2": "y"}
	tests := []struct{ in, want string }{
		{"{a} and {b_2}", "x and y"},
		{"{{a}} stays", "{a} stays"},
		{"{unknown} kept", "{unknown} kept"},
		{"no vars", "no vars"},
		{"{ a }", "{ a }"},
	}
	for _, tc := range tests {
		equal(t, tc.want, expandTemplate(tc.in, vars), tc.in)
	}
	equal(t, []string{"a", "b_2"}, placeholders("{a}{b_2}{a}{{c}}"))
}
