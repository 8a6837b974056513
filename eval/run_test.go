package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/glimpse-vlm/glimpse/client"
	"github.com/glimpse-vlm/glimpse/server"
)

// goldenCase is an entry of testdata/golden/e2e/*/cases.json: what HF
// transformers produced with these checkpoints.
type goldenCase struct {
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
	Expected struct {
		Text     string  `json:"text"`
		TokenIDs []int32 `json:"token_ids"`
		Scores   []struct {
			Text   string   `json:"text"`
			ITM    *float64 `json:"itm_probability"`
			Cosine *float64 `json:"cosine"`
			Logit  *float64 `json:"logit"`
		} `json:"scores"`
		Images [][]float64 `json:"images"`
	} `json:"expected"`
}

var e2eModels = []string{"blip-caption", "blip-vqa", "blip-itm", "vit-gpt2", "clip"}

func loadGolden(t *testing.T, model string) []goldenCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(e2eRoot, model, "cases.json"))
	must(t, err)
	var cs []goldenCase
	must(t, json.Unmarshal(raw, &cs))
	if len(cs) == 0 {
		t.Fatalf("no golden cases for %s", model)
	}
	return cs
}

var (
	serverOnce sync.Once
	sharedCl   *client.Client
	serverErr  error
)

// testClient is a client of one in-process server on the e2e checkpoints,
// shared by the tests of this package.
func testClient(t *testing.T) *client.Client {
	t.Helper()
	serverOnce.Do(func() {
		var specs []server.ModelSpec
		for _, m := range e2eModels {
			specs = append(specs, server.ModelSpec{Name: m, Dir: filepath.Join(e2eRoot, m)})
		}
		sharedCl, _, serverErr = StartInProcess(context.Background(), specs, "", 2)
	})
	if serverErr != nil {
		t.Fatal(serverErr)
	}
	return sharedCl
}

func yq(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// goldenSuite builds a suite whose assertions are HF's outputs for the
// e2e cases; mutate (if set) may change each expected value to one that
// must fail.
func goldenSuite(t *testing.T, mutate bool) string {
	t.Helper()
	e2e, err := filepath.Abs(e2eRoot)
	must(t, err)
	var b strings.Builder
	b.WriteString("name: golden\ndefaults:\n  match-model: clip\ncases:\n")
	wrong := func(s string) string {
		if mutate {
			return s + " (not this)"
		}
		return s
	}
	for _, model := range e2eModels {
		for _, gc := range loadGolden(t, model) {
			img := filepath.Join(e2e, model, gc.Image)
			fmt.Fprintf(&b, "  - id: %s/%s\n    model: %s\n    image: %s\n    tags: [%s]\n", model, gc.ID, model, yq(img), gc.Task)
			opts := ""
			if gc.Options.MaxNewTokens != nil {
				opts += fmt.Sprintf("max-new-tokens: %d, ", *gc.Options.MaxNewTokens)
			}
			if gc.Options.NumBeams != nil {
				opts += fmt.Sprintf("num-beams: %d, ", *gc.Options.NumBeams)
			}
			switch gc.Task {
			case "caption", "ask":
				fmt.Fprintf(&b, "    task: %s\n", gc.Task)
				if gc.Prompt != nil {
					fmt.Fprintf(&b, "    prompt: %s\n", yq(strings.NewReplacer("{", "{{", "}", "}}").Replace(*gc.Prompt)))
				}
				if gc.Task == "ask" {
					fmt.Fprintf(&b, "    prompt: %s\n", yq(gc.Question))
				}
				if opts != "" {
					fmt.Fprintf(&b, "    options: {%s}\n", strings.TrimSuffix(opts, ", "))
				}
				n := len(gc.Expected.TokenIDs)
				if mutate {
					n++
				}
				fmt.Fprintf(&b, "    assert:\n      - equals: %s\n      - min-tokens: %d\n", yq(wrong(gc.Expected.Text)), n)
				if model == "blip-caption" && gc.Image == "cat_chelsea.jpg" {
					// Score a fixed text with the CLIP checkpoint through
					// Match: its golden cosine for the same image.
					for _, cc := range loadGolden(t, "clip") {
						if cc.Image == gc.Image && cc.Task == "match" {
							v := *cc.Expected.Scores[0].Cosine
							lo := v - 1e-3
							if mutate {
								lo = v + 0.01
							}
							fmt.Fprintf(&b, "      - match-score: {text: %s, metric: cosine, min: %g, max: %g}\n", yq(cc.Texts[0]), lo, v+1e-3)
						}
					}
				}
			case "match":
				b.WriteString("    task: match\n    texts:\n")
				for _, tx := range gc.Texts {
					fmt.Fprintf(&b, "      - %s\n", yq(tx))
				}
				best, bestV := "", math.Inf(-1)
				b.WriteString("    assert:\n")
				for _, s := range gc.Expected.Scores {
					metric, v := MetricCosine, *s.Cosine
					if s.ITM != nil {
						metric, v = MetricITM, *s.ITM
					}
					if v > bestV {
						best, bestV = s.Text, v
					}
					lo := v - 1e-3
					if mutate {
						lo = v + 0.01
					}
					fmt.Fprintf(&b, "      - match-score: {text: %s, metric: %s, min: %g, max: %g}\n", yq(s.Text), metric, lo, v+1e-3)
				}
				fmt.Fprintf(&b, "      - top: %s\n", yq(wrong(best)))
			case "embed":
				b.WriteString("    task: embed\n    repeat: 2\n    texts:\n")
				for _, tx := range gc.Texts {
					fmt.Fprintf(&b, "      - %s\n", yq(strings.NewReplacer("{", "{{", "}", "}}").Replace(tx)))
				}
				dims := len(gc.Expected.Images[0])
				if mutate {
					dims++
				}
				fmt.Fprintf(&b, "    assert:\n      - dims: %d\n      - consistent: true\n", dims)
			}
		}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "golden.yaml")
	must(t, os.WriteFile(p, []byte(b.String()), 0o644))
	return p
}

// TestRunGolden runs every e2e case through the runner (in-process server,
// client SDK) with HF's outputs as assertions: all pass; with every
// expectation changed, every run fails.
func TestRunGolden(t *testing.T) {
	cl := testClient(t)
	for _, mutate := range []bool{false, true} {
		t.Run(fmt.Sprintf("mutated=%v", mutate), func(t *testing.T) {
			s, err := LoadSuite(goldenSuite(t, mutate))
			must(t, err)
			runs := s.Expand(Filter{})
			var mu sync.Mutex
			var progress []int
			rn := &Runner{Client: cl, Parallel: 3, MatchModel: s.Defaults.MatchModel, Progress: func(done, total int, r *Result) {
				mu.Lock()
				defer mu.Unlock()
				progress = append(progress, done)
				if total != len(runs) {
					t.Errorf("progress total %d, want %d", total, len(runs))
				}
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			results := rn.Run(ctx, runs)
			equal(t, len(runs), len(results))
			equal(t, len(runs), len(progress), "one progress call per run")
			for i, res := range results {
				equal(t, runs[i].ID, res.ID, "results keep the order of the runs")
				want := VerdictPass
				if mutate {
					want = VerdictFail
				}
				if res.Verdict != want {
					t.Errorf("%s: verdict %s, want %s: output %q error %q failures %v", res.ID, res.Verdict, want, res.Output, res.Error, res.failures())
				}
				if mutate {
					// Every check of a mutated case fails except the
					// repeat check of embed and token bounds that still hold.
					failed := res.failed()
					isTrue(t, failed >= 1, "%s: %d failed checks", res.ID, failed)
				}
				if res.LatencyMS <= 0 {
					t.Errorf("%s: latency %v", res.ID, res.LatencyMS)
				}
			}
		})
	}
}

// TestRunTasks covers generate (streaming) against caption, an RPC error
// and a cancelled context.
func TestRunTasks(t *testing.T) {
	cl := testClient(t)
	var capt goldenCase
	for _, gc := range loadGolden(t, "blip-caption") {
		if gc.Prompt != nil && gc.Options.NumBeams != nil && *gc.Options.NumBeams == 1 {
			capt = gc
		}
	}
	if capt.ID == "" {
		t.Fatal("no greedy caption case with a prompt in the golden data")
	}
	img, err := filepath.Abs(filepath.Join(e2eRoot, "blip-caption", capt.Image))
	must(t, err)
	p := writeSuite(t, fmt.Sprintf(`
cases:
  - id: gen
    task: generate
    model: blip-caption
    image: %s
    prompt: %s
    options: {max-new-tokens: %d, num-beams: 1}
    assert:
      - equals: %s
  - id: cap
    task: caption
    model: blip-caption
    image: %s
    prompt: %s
    options: {max-new-tokens: %d, num-beams: 1}
    assert:
      - equals: %s
  - id: refused
    task: caption
    model: clip
    image: %s
    assert:
      - min-chars: 0
`, yq(img), yq(*capt.Prompt), *capt.Options.MaxNewTokens, yq(capt.Expected.Text),
		yq(img), yq(*capt.Prompt), *capt.Options.MaxNewTokens, yq(capt.Expected.Text), yq(img)))
	s, err := LoadSuite(p)
	must(t, err)
	rn := &Runner{Client: cl, Parallel: 2}
	res := rn.Run(context.Background(), s.Expand(Filter{}))
	equal(t, 3, len(res))
	equal(t, VerdictPass, res[0].Verdict, "generate: %v %s", res[0].failures(), res[0].Output)
	equal(t, VerdictPass, res[1].Verdict, "caption: %v", res[1].failures())
	equal(t, res[1].TokenIDs, res[0].TokenIDs, "generate streams what caption returns")
	equal(t, VerdictError, res[2].Verdict)
	hasSub(t, res[2].Error, "FailedPrecondition")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res = rn.Run(ctx, s.Expand(Filter{}))
	for _, r := range res {
		equal(t, VerdictError, r.Verdict, "%s after cancel", r.ID)
	}
}
